"""``python -m pytest_reliability`` runs the command line."""

from __future__ import annotations

from pytest_reliability.cli import main

raise SystemExit(main())
