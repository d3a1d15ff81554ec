"""pytest-reliability: reliability modules for SaaS backends and a pytest plugin that proves them.

Subpackages hold the modules (``audit``, ``db``, ``idempotency``, ``ops``); the plugin is loaded
with ``pytest -p reliability``. Importing this package imports nothing heavy.
"""

from __future__ import annotations

from pytest_reliability._version import __version__

__all__ = ["__version__"]
