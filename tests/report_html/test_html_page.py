"""The HTML page: self-contained, escaped, complete, labelled when its input is doubtful."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_reliability.cli import main
from pytest_reliability.report import render_html
from tests.plugin._helpers import RunInner
from tests.report_html._reports import make_report, make_test, rich_report, write


class _Page(HTMLParser):
    """Collects what a page would load or run: tags with src/href, scripts, headings, text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.references: list[str] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._heading = False
        self.event_attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag in ("h1", "h2"):
            self._heading = True
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                self.references.append(value or "")
            if name.startswith("on") and name != "onsubmit":
                self.event_attributes.append(f"{tag}.{name}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2"):
            self._heading = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading:
            self.headings.append(data.strip())


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def _offline(parsed: _Page) -> None:
    assert parsed.scripts == 1  # ours, inline
    assert all(ref.startswith(("#", "data:")) for ref in parsed.references), parsed.references
    assert parsed.event_attributes == []


def test_the_page_is_self_contained_escaped_and_complete() -> None:
    page = render_html([rich_report()])
    parsed = _parse(page)
    _offline(parsed)
    assert "default-src 'none'" in page
    text = "".join(parsed.text)
    # Hostile names and failure texts are text, never markup.
    assert "<script>alert(1)</script>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    # Status and gates first, with why a gate failed; the replay command; every section.
    assert page.index("FAILED") < page.index('id="h-gates"') < page.index('id="h-replay"')
    assert "tests/test_pay.py::test_refund failed" in text
    assert "pytest -p reliability --reliability-seed 1234 --reliability-deterministic-ids" in text
    for heading in (
        "Gates",
        "Seed and replay",
        "Outcomes",
        "Durations",
        "Categories",
        "Reliability facts",
        "Flaky tests",
        "All tests",
    ):
        assert heading in parsed.headings, heading
    # Categories against the required ones: audit required and unproven.
    assert re.search(r"audit</th><td class='n'>0</td><td class='n'>0</td><td>.*not proven", page)
    # Facts: faults by kind, fired; switches; idempotency; audit actions.
    assert "latency</th><td class='n'>1</td><td class='n'>3</td>" in page
    assert "BILLING" in text
    assert "duplicates suppressed" in text
    assert "billing.charge" in text
    # Every test is a row, with outcome words (not colour alone) and its details.
    assert page.count('<div role="row" class="r"') == 6
    assert 'class="o o-passed">passed<' in page
    assert 'class="o o-failed">failed<' in page
    assert '.r .o-failed::before{content:"✗ " / ""}' in page
    assert "raised at <code>pay/refund.py:41</code>" in page
    assert "OPS-1" in text
    assert "payments" in text
    assert "<svg" in page
    assert 'role="img"' in page


def test_a_report_without_tests_gets_a_page_that_says_so() -> None:
    report = make_report(
        [],
        gates=[
            {
                "name": "tests-ran",
                "status": "failed",
                "reasons": ["no tests ran"],
                "source": "builtin",
            }
        ],
    )
    parsed = _parse(render_html([report]))
    text = "".join(parsed.text)
    assert "no tests ran" in text
    assert "No test declared a reliability category" in text
    assert "0 tests" in text


def test_several_reports_add_a_trend_with_new_failures_and_flakiness() -> None:
    old = make_report(
        [make_test("t.py::a"), make_test("t.py::b"), make_test("t.py::c", categories=["chaos"])],
        run_id="run-old",
        started_at="2026-11-01T10:00:00Z",
        duration=10.0,
    )
    new = make_report(
        [
            make_test("t.py::a", "failed"),
            make_test("t.py::b", "flaky"),
            make_test("t.py::c", categories=["chaos"]),
        ],
        run_id="run-new",
        started_at="2026-11-02T10:00:00Z",
        duration=20.0,
    )
    page = render_html([new, old])  # any order: sorted by start time
    parsed = _parse(page)
    _offline(parsed)
    assert "Trend across 2 runs" in parsed.headings
    assert "1 newly failing" in page
    assert "1 newly flaky" in page
    assert "Pass rate per run" in page
    assert "<polyline" in page
    assert "Category reliability over time" in page
    assert 'role="alert"' not in page  # same project, shared tests: nothing to warn about
    # The newest run is the one shown in full.
    assert "run-new" in "".join(parsed.text).split("Seed and replay")[0]


def test_a_long_history_shows_its_newest_runs() -> None:
    runs = [
        make_report(
            [make_test("t.py::a", "failed" if day % 2 else "passed")],
            run_id=f"run-{day:03d}",
            started_at=f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T00:00:00Z",
        )
        for day in range(70)
    ]
    page = render_html(runs)
    assert "Trend across 60 runs" in page
    assert "10 older runs are not shown." in page
    assert "run-069" in page
    assert "run-009" not in page


def test_runs_of_different_projects_get_a_labelled_page() -> None:
    one = make_report([make_test("a.py::x")], run_id="r1", project="billing")
    two = make_report(
        [make_test("b.py::y")], run_id="r2", project="search", started_at="2026-11-03T00:00:00Z"
    )
    page = render_html([one, two])
    assert 'role="alert"' in page
    assert "different projects (billing, search)" in page
    assert "no test in common" in page


def test_cli_writes_the_page_and_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_abcdef123")
    report = rich_report()
    report["tests"][0]["failure"] = "called with sk_live_abcdef123"
    good = write(tmp_path / "good.json", report)
    out = tmp_path / "page.html"
    assert main(["report", "html", str(good), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "sk_live_abcdef123" not in page
    assert "called with ***" in page
    assert str(good) in page

    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema_version": "1.2", "status": ')
    other_major = write(tmp_path / "v2.json", {**report, "schema_version": "2.0"})
    not_report = tmp_path / "list.json"
    not_report.write_text("[1, 2]")
    for path, needle in (
        (corrupt, "corrupt.json is not JSON"),
        (other_major, "schema version '2.0' is not supported"),
        (not_report, "is not a reliability report"),
        (tmp_path, "is not a regular file"),
    ):
        capsys.readouterr()
        before = out.read_bytes()
        assert main(["report", "html", str(good), str(path), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert needle in err, err
        assert len(err.strip().splitlines()) == 1
        assert out.read_bytes() == before  # never a half-written or blank page


def test_the_plugin_writes_the_page_at_the_end_of_a_run(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.parametrize("name", ["<script>alert(1)</script>", "ok"])
        def test_named(name):
            assert name != "ok", "no <i>ok</i>"
        """
    )
    result, report = run_inner("--reliability-html=out/page.html")
    page = (pytester.path / "out" / "page.html").read_text(encoding="utf-8")
    assert "reliability HTML report:" in result.stdout.str()
    parsed = _parse(page)
    _offline(parsed)
    assert "<script>alert(1)</script>" in "".join(parsed.text)
    assert "no &lt;i&gt;ok&lt;/i&gt;" in page
    assert report["status"] == "failed"
    assert page.count('<div role="row" class="r"') == 2


def test_the_ini_twin_writes_the_page(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    pytester.makeini("[pytest]\nreliability_html = pages/r.html\n")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result, _ = run_inner()
    assert result.ret == 0
    assert "PASSED" in (pytester.path / "pages" / "r.html").read_text(encoding="utf-8")


_NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s.strip()
)


@settings(max_examples=60, deadline=None)
@given(name=_NAMES, failure=st.text(max_size=80), gate_reason=st.text(max_size=40))
def test_no_report_text_becomes_markup(name: str, failure: str, gate_reason: str) -> None:
    report = make_report(
        [make_test(f"t.py::{name}", "failed", failure=failure or "x")],
        gates=[
            {"name": name, "status": "failed", "reasons": [gate_reason], "source": "hook"},
        ],
    )
    report["sections"] = {name: {"value": failure}}
    page = render_html([report])
    parsed = _parse(page)
    _offline(parsed)
    # Nothing from the report opened a tag: the texts are there, character for character.
    text = "".join(parsed.text)
    assert f"t.py::{name}" in text
    assert failure in text
    assert gate_reason in text


def test_an_output_that_is_an_input_is_refused(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path / "r.json", rich_report())
    before = path.read_bytes()
    for command in (["html"], ["metrics"], ["annotations", "--format", "github"]):
        assert main(["report", *command, str(path), "-o", str(path)]) == 1
        assert "is one of the reports read" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_trend_of_one_run_twice_is_refused(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path / "r.json", rich_report())
    assert main(["report", "html", str(path), str(path), "-o", str(tmp_path / "o.html")]) == 1
    assert "given twice" in capsys.readouterr().err


def test_the_reliability_gate_writes_the_html_report_even_when_it_fails(
    pytester: pytest.Pytester,
) -> None:
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    pytester.makepyfile(
        test_suite="""
        import pytest
        @pytest.mark.chaos
        def test_chaos():
            pass
        def test_broken():
            assert False, "<em>broken</em>"
        """
    )
    env = {
        **os.environ,
        "RELIABILITY_SUITE_DIR": str(pytester.path),
        "RELIABILITY_PYTEST_ARGS": "-p no:cacheprovider -p no:benchmark test_suite.py",
        "RELIABILITY_REPORT": str(pytester.path / "out" / "report.json"),
        "RELIABILITY_REQUIRED_CATEGORIES": "chaos",
    }
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    done = subprocess.run(
        ["bash", str(root / "ci" / "reliability-validation.sh")],
        env=env,
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"reliability-validation: HTML report {pytester.path / 'out' / 'report.html'}" in (
        done.stdout
    )
    assert "&lt;em&gt;broken&lt;/em&gt;" in page
    assert "test_suite.py::test_broken failed" in page


def test_reports_of_schema_1_0_render_measure_and_annotate() -> None:
    from pytest_reliability.report import annotations_text, metrics_text
    from tests.plugin.test_schema_check import VALID

    old = copy.deepcopy(VALID)
    page = render_html([old])
    parsed = _parse(page)
    _offline(parsed)
    text = "".join(parsed.text)
    assert "not recorded (report before schema 1.2)" in text
    assert "Interrupted (worker_crash)" in text
    assert 'class="o o-failed">failed<' in page
    assert 'reliability_tests{outcome="failed"} 1.0' in metrics_text(old)
    assert annotations_text(old, "github").startswith("::error file=t.py,title=failed%3A t.py")


def test_restore_drills_and_custom_sections_are_shown_escaped() -> None:
    report = rich_report()
    report["backups"] = {
        "passed": 1,
        "failed": 1,
        "drills": [
            {
                "backup": "db-2026-11-01.dump",
                "backend": "postgresql",
                "status": "passed",
                "reason": None,
                "rto_s": 42.5,
                "tables_checked": 12,
                "rows_checked": 1000,
                "audit_events_verified": 50,
            },
            {
                "backup": "<b>bad</b>.dump",
                "backend": "sqlite",
                "status": "failed",
                "reason": "checksum mismatch <i>",
                "rto_s": 1.0,
                "tables_checked": 0,
                "rows_checked": 0,
                "audit_events_verified": 0,
            },
        ],
    }
    report["sections"] = {"slo": {"budget_left": 0.42, "note": "<script>x()</script>"}}
    page = render_html([report])
    parsed = _parse(page)
    _offline(parsed)
    assert "Restore drills: 1 passed, 1 failed" in page
    assert "&lt;b&gt;bad&lt;/b&gt;.dump" in page
    assert "checksum mismatch &lt;i&gt;" in page
    assert "Section slo" in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page


def test_abuse_property_chaos_and_outage_drills_are_shown_escaped() -> None:
    abuse = {
        "signals": 40,
        "escalations": 3,
        "denied": 12,
        "decisions_by_tier": {"NORMAL": 25, "THROTTLE": 9, "BLOCK": 6},
    }
    prop = {
        "examples": 78,
        "distinct_schedules": 74,
        "fired_by_kind": {"timeout": 26, "exception": 51},
        "unfired_by_kind": {"timeout": 20},
        "shrunk": {
            "json": {"schedule_version": 1, "faults": [{}]},
            "python": "FaultSchedule([timeout('pay<script>', call=2)])",
            "unfired": [],
        },
    }
    report = make_report(
        [
            make_test("t.py::test_abuse", categories=["abuse"], facts={"abuse": abuse}),
            make_test("t.py::test_prop", "failed", facts={"chaos": {"property": prop}}),
        ]
    )
    report["chaos_drills"] = {
        "passed": 1,
        "failed": 1,
        "violations": 1,
        "drills": [
            {
                "module": "abuse",
                "store": "redis",
                "fault": "pause",
                "status": "failed",
                "time_to_fail_closed_s": None,
                "time_to_recover_s": 0.02,
                "fail_closed_bound_s": 1.0,
                "recover_bound_s": 30.0,
                "histories_checked": 30,
                "violations": ["bad <b>: allowed while its store was unavailable"],
            },
            {
                "module": "audit",
                "store": "postgres",
                "fault": "kill",
                "status": "passed",
                "time_to_fail_closed_s": 0.01,
                "time_to_recover_s": 0.7,
                "fail_closed_bound_s": 1.0,
                "recover_bound_s": 30.0,
                "histories_checked": 400,
                "violations": [],
            },
        ],
    }
    page = render_html([report])
    text = " ".join(" ".join(_parse(page).text).split())
    assert "Abuse protection" in text
    assert "signals 40" in text
    assert "escalations 3" in text
    assert "THROTTLE" in text
    assert "Property-based chaos: 78 examples, 74 distinct schedules" in text
    assert "timeout 26 20" in text
    assert "FaultSchedule([timeout('pay<script>', call=2)])" in text  # as text
    assert "Outage drills: 1 passed, 1 failed, 1 violations" in text
    assert "bad <b>: allowed while its store was unavailable" in text
    assert "<script>'" not in page
    assert "bad <b>" not in page
