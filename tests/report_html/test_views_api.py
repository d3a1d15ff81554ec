"""The public names of the report's views (schema 1.2) are pinned: renaming one breaks users."""

from __future__ import annotations

import inspect

import pytest_reliability.report as report

VIEWS = {
    "Annotation": "_annotations",
    "annotations_of": "_annotations",
    "annotations_text": "_annotations",
    "render_html": "_html",
    "metrics_text": "_metrics",
    "Trend": "_trend",
    "TrendPoint": "_trend",
    "build_trend": "_trend",
    "trend_text": "_trend",
}


def test_the_views_are_exported_lazily_from_their_homes() -> None:
    assert set(VIEWS) <= set(report.__all__)
    for name, home in VIEWS.items():
        value = getattr(report, name)
        assert value.__module__ == f"pytest_reliability.report.{home}"
        assert inspect.getdoc(value), name


def test_the_schema_version_is_1_2() -> None:
    assert report.SCHEMA_VERSION == "1.2"
    assert report.load_schema()["properties"]["schema_version"]["pattern"] == "^1\\.[0-9]+$"
