"""HTML report: page weight and render time in headless Chromium, against pytest-html.

Run: ``python3 benchmarks/html_report_bench.py [--tests 10000] [--loads 7]``

One pytest run of ``--tests`` generated tests (1 in 97 failing, 1 in 41 skipped, a tenth marked
``chaos``) writes both pages: ours (``-p reliability --reliability-html``) and the anchor's,
pytest-html's self-contained page (``-p html --html --self-contained-html``), the single HTML file
per run that teams already open. Then, in one headless Chromium (Debian's ``chromium``, driven by
Playwright for Python), each page is loaded ``--loads`` times, alternating, and measured as the
browser measures it:

* **load**: navigation start to the end of the load event (parsing, styles, scripts);
* **ready**: navigation start until the page shows every test's row in its results table and a
  frame has been drawn (pytest-html builds its rows with script after load; ours are in the
  HTML), read from ``performance.now()`` in the page.

Also timed: building our page from the JSON report in Python (``render_html``, median of 5).
Prints medians, the file sizes and the ratios ours / pytest-html, with the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_FILE = 100


def generate(directory: Path, tests: int) -> None:
    """Write ``tests`` tests, ``PER_FILE`` to a module, a few failing, skipped or marked."""
    for start in range(0, tests, PER_FILE):
        lines = ["import pytest\n\n"]
        for i in range(start, min(start + PER_FILE, tests)):
            if i % 97 == 0:
                body = f"    assert {i} == -1, 'upstream timed out after 2.0s'\n"
            elif i % 41 == 0:
                body = "    pytest.skip('not on this platform')\n"
            else:
                body = "    assert True\n"
            mark = "@pytest.mark.chaos\n" if i % 10 == 0 else ""
            lines.append(f"{mark}def test_case_{i:05d}():\n{body}\n\n")
        (directory / f"test_bench_{start // PER_FILE:04d}.py").write_text("".join(lines))


def run_suite(directory: Path) -> tuple[Path, Path, Path]:
    """Run the suite once, writing our JSON and HTML and pytest-html's page."""
    ours, theirs, report = directory / "ours.html", directory / "theirs.html", directory / "r.json"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "reliability",
        "-p",
        "pytest_html.plugin",
        "-p",
        "pytest_metadata.plugin",
        f"--reliability-report={report}",
        f"--reliability-html={ours}",
        f"--html={theirs}",
        "--self-contained-html",
        str(directory),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if not (ours.exists() and theirs.exists() and report.exists()):
        raise SystemExit(f"the suite wrote no pages:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return report, ours, theirs


READY = """
async (selector) => {
  // Wait (bounded) until the results table has every row, then for one drawn frame.
  const want = %d;
  const deadline = performance.now() + 60000;
  while (document.querySelectorAll(selector).length < want && performance.now() < deadline) {
    await new Promise(r => setTimeout(r, 5));
  }
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return [performance.getEntriesByType('navigation')[0].loadEventEnd, performance.now(),
          document.querySelectorAll(selector).length];
}
"""


def measure(pages: dict[str, tuple[Path, str]], loads: int, rows: int) -> dict[str, list[float]]:
    """Load each page ``loads`` times, alternating; return load and ready times in ms."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("RELIABILITY_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    found: dict[str, list[float]] = {f"{n} {k}": [] for n in pages for k in ("load", "ready")}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for _ in range(loads):
                for name, (path, selector) in pages.items():
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(path.as_uri(), wait_until="load", timeout=120_000)
                    load, ready, count = page.evaluate(READY % rows, selector)
                    if count < rows:
                        raise SystemExit(f"{name}: {count} of {rows} rows after 60 s")
                    found[f"{name} load"].append(load)
                    found[f"{name} ready"].append(ready)
                    page.close()
        finally:
            browser.close()
    return found


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pytest_reliability.report import read_report, render_html

    with tempfile.TemporaryDirectory(prefix="html-bench-") as tmp:
        directory = Path(tmp)
        generate(directory, args.tests)
        started = time.perf_counter()
        report_path, ours, theirs = run_suite(directory)
        print(f"suite of {args.tests} tests ran in {time.perf_counter() - started:.1f} s")
        report = read_report(report_path)
        builds = []
        for _ in range(5):
            started = time.perf_counter()
            render_html([report])
            builds.append(time.perf_counter() - started)
        pages = {
            "ours": (ours, "#tests .r"),
            "pytest-html": (theirs, "#results-table tbody.results-table-row"),
        }
        figures = measure(pages, args.loads, args.tests)
        sizes = {name: path.stat().st_size for name, (path, _) in pages.items()}
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"render_html in Python: median {statistics.median(builds) * 1000:.0f} ms")
    print("| page | file size | load (median) | ready (median) | ready (best) |")
    print("|---|---:|---:|---:|---:|")
    for name in pages:
        load, ready = figures[f"{name} load"], figures[f"{name} ready"]
        print(
            f"| {name} | {sizes[name] / 1e6:.2f} MB | {statistics.median(load):.0f} ms | "
            f"{statistics.median(ready):.0f} ms | {min(ready):.0f} ms |"
        )
    ratio_size = sizes["ours"] / sizes["pytest-html"]
    ratio_ready = statistics.median(figures["ours ready"]) / statistics.median(
        figures["pytest-html ready"]
    )
    print(f"ours / pytest-html: size {ratio_size:.2f}x, ready {ratio_ready:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
