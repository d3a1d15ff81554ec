"""Plugin overhead: wall time of 5,000 trivial tests, bare vs reliability vs pytest-json-report.

Run: ``python3 benchmarks/plugin_overhead.py [--tests 5000] [--repeat 7]``

The three variants run alternately (shuffled each round), each as a fresh ``python -m pytest``
process, with plugin autoload off so nothing else loaded skews the comparison:

* bare:        ``-p no:reliability``
* reliability: ``-p reliability`` writing its report (validated against the schema, atomic)
* json-report: ``-p no:reliability -p pytest_jsonreport.plugin --json-report`` writing its report
* installed:   the plugin loaded the way autoload loads it (``PYTEST_PLUGINS``, no ``-p``), not
  opted in: fixtures and markers only, no report (what every run in an environment with the
  package installed pays)

``--suite hypothesis`` generates Hypothesis tests instead (``--tests`` of them, 20 examples
each), the shape of a Hypothesis-heavy suite such as cattrs, where every test carries statistics.

Every variant imports pytest-reliability from this checkout, installed as its wheel installs it
(:func:`install_checkout`: the package with its schemas and the ``pytest11`` entry point, in a
``site-packages`` directory first on ``PYTHONPATH``), whatever copy is installed. Where the code
lies matters to Hypothesis: it harvests constants from the source of every module it takes for
the user's own (anything outside ``site-packages``), so a checkout on ``PYTHONPATH`` would be
parsed in every run of a Hypothesis suite, which no installed plugin is. Bytecode is cached for
every variant alike, in a ``PYTHONPYCACHEPREFIX`` inside the benchmark's temporary directory
that the untimed first round fills: an inherited ``PYTHONDONTWRITEBYTECODE`` would otherwise make
every timed run recompile the plugin's modules (and rewrite the test modules) while pytest and
pytest-json-report load the bytecode their installation wrote.

Prints the median wall time (and CPU time, steadier on a busy machine) of each and the ratios
to the bare run, and the *paired* ratios: the median over the rounds of each round's ratio to
that round's bare run, which a slow spell of the machine moves less.

``--instructions`` runs each variant once under ``valgrind --tool=callgrind`` instead and
compares the instructions executed: a count that does not depend on what else the machine is
doing (timings on a shared 2-core machine swing by 2x between runs), so small overheads can be
told apart from noise. It is about 50x slower than a plain run: use ``--tests 1000``.
Hash randomisation is pinned (``PYTHONHASHSEED=0``) so repeated counts agree.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_FILE = 100


HYPOTHESIS_HEADER = (
    "from hypothesis import HealthCheck, given, settings, strategies as st\n\n"
    # Health checks off: under callgrind (--instructions) every draw is 50x slower and the
    # too_slow check would fail the suite; they measure nothing this benchmark is about.
    "SETTINGS = settings(max_examples=20, database=None, derandomize=True,\n"
    "                    suppress_health_check=list(HealthCheck), deadline=None)\n\n\n"
)


def generate(directory: Path, tests: int, suite: str = "trivial") -> None:
    """Write ``tests`` tests, ``PER_FILE`` to a module: trivial ones, or Hypothesis ones."""
    for start in range(0, tests, PER_FILE):
        count = min(PER_FILE, tests - start)
        if suite == "hypothesis":
            body = HYPOTHESIS_HEADER + "".join(
                f"@SETTINGS\n@given(st.lists(st.integers()))\ndef test_{start + i}(xs):\n"
                "    assert sorted(sorted(xs)) == sorted(xs)\n\n\n"
                for i in range(count)
            )
        else:
            body = "".join(f"def test_{start + i}():\n    assert True\n\n\n" for i in range(count))
        (directory / f"test_gen_{start // PER_FILE:03d}.py").write_text(body)
    (directory / "pytest.ini").write_text("[pytest]\n")


def variants(directory: Path) -> dict[str, list[str]]:
    """Return the pytest arguments of each variant."""
    common = ["-q", "-p", "no:cacheprovider"]
    return {
        "bare": [*common, "-p", "no:reliability"],
        "reliability": [
            *common,
            "-p",
            "reliability",
            f"--reliability-report={directory / 'out' / 'reliability.json'}",
            "--reliability-seed=1",
        ],
        "json-report": [
            *common,
            "-p",
            "no:reliability",
            "-p",
            "pytest_jsonreport.plugin",
            "--json-report",
            f"--json-report-file={directory / 'out' / 'json-report.json'}",
        ],
        "installed": [*common],
    }


EXTRA_ENV = {"installed": {"PYTEST_PLUGINS": "pytest_reliability.plugin"}}
"""Environment a variant adds (autoload is off for all: this loads the plugin as it would)."""


ROOT = Path(__file__).resolve().parent.parent
"""The checkout whose plugin is measured."""


def install_checkout(target: Path) -> Path:
    """Lay this checkout out in ``target/site-packages`` as its wheel installs; return that.

    The package, its schemas where the wheel puts them (``pytest_reliability/schemas``), and a
    ``dist-info`` with the ``pytest11`` entry point, so ``-p reliability`` finds it by name.
    """
    site = target / "site-packages"
    shutil.copytree(
        ROOT / "pytest_reliability",
        site / "pytest_reliability",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(ROOT / "schemas", site / "pytest_reliability" / "schemas")
    found = re.search(
        r'__version__ = "([^"]+)"', (ROOT / "pytest_reliability" / "_version.py").read_text()
    )
    version = found.group(1) if found else "0"
    info = site / f"pytest_reliability-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: pytest-reliability\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text("[pytest11]\nreliability = pytest_reliability.plugin\n")
    return site


def environment(directory: Path) -> dict[str, str]:
    """Return the environment of every timed run: the staged plugin first, bytecode cached."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Beside the suite, not in it: pytest would walk it while collecting.
    env["PYTHONPYCACHEPREFIX"] = str(directory.parent / "pycache")
    site = str(directory.parent / "site-packages")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
    return env


def time_run(
    directory: Path, args: list[str], extra: dict[str, str] | None = None
) -> tuple[float, float]:
    """Return wall and CPU seconds of one pytest process; fail loudly if the run did not pass."""
    env = {**environment(directory), **(extra or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed ({args}):\n{done.stdout[-2000:]}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def count_instructions(
    directory: Path, args: list[str], extra: dict[str, str] | None = None
) -> int:
    """Return the instructions one pytest process executes, counted by callgrind."""
    env = {**environment(directory), **(extra or {}), "PYTHONHASHSEED": "0"}
    out = directory.parent / "callgrind.out"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=no",
            f"--callgrind-out-file={out}",
            sys.executable,  # the interpreter itself: a wrapper script would hide it from valgrind
            "-m",
            "pytest",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"benchmark run failed ({args}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return int(found.group(1))


def main() -> int:
    """Run the benchmark and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--suite", choices=("trivial", "hypothesis"), default="trivial")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under callgrind (one run each) instead of timing",
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    with tempfile.TemporaryDirectory(prefix="reliability-bench-") as tmp:
        directory = Path(tmp) / "suite"
        directory.mkdir()
        install_checkout(Path(tmp))
        generate(directory, args.tests, args.suite)
        runs = variants(directory)
        for name, argv in runs.items():  # warm the bytecode caches once, untimed
            time_run(directory, argv, EXTRA_ENV.get(name))
        if args.instructions:
            counts = {
                name: count_instructions(directory, argv, EXTRA_ENV.get(name))
                for name, argv in runs.items()
            }
            print(f"{args.tests} {args.suite} tests, instructions executed (callgrind)")
            for name, count in counts.items():
                print(f"  {name:<12} {count:>15,}  {count / counts['bare']:5.3f}x bare")
            ratio = counts["reliability"] / counts["json-report"]
            print(f"  reliability / json-report: {ratio:.3f}x")
            return 0
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        shuffle = random.Random(2024).shuffle
        for _ in range(args.repeat):
            shuffle(order)  # no variant always runs right after the same other one
            for name in order:
                argv = runs[name]
                seconds, cpu_seconds = time_run(directory, argv, EXTRA_ENV.get(name))
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
    print(f"{args.tests} {args.suite} tests, median of {args.repeat} alternating runs each")
    for label, table in (("wall", wall), ("cpu", cpu)):
        medians = {name: statistics.median(values) for name, values in table.items()}
        bare = medians["bare"]
        for name, median in medians.items():
            spread = f"min {min(table[name]):.3f}s max {max(table[name]):.3f}s"
            print(f"  {label} {name:<12} {median:7.3f}s  {median / bare:5.3f}x bare  ({spread})")
        ratio = medians["reliability"] / medians["json-report"]
        print(f"  {label} reliability / json-report: {ratio:.3f}x")
    print("  paired: median over the rounds of each round's ratio to that round's bare run")
    for name in runs:
        if name != "bare":
            print(f"  paired wall {name:<12} {paired(wall, name):5.3f}x bare")
    return 0


def paired(table: dict[str, list[float]], name: str, base: str = "bare") -> float:
    """Return the median over the rounds of ``name``'s time divided by ``base``'s, same round.

    Every round runs each variant once, close together in time: a slow spell of the machine
    that lasts a round weighs on both sides of its ratio, where it moves one median of all
    rounds but not the other's.
    """
    return statistics.median(a / b for a, b in zip(table[name], table[base], strict=True))


if __name__ == "__main__":
    raise SystemExit(main())
