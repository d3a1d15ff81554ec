"""The pytest plugin, loaded with ``pytest -p reliability``."""

from __future__ import annotations
