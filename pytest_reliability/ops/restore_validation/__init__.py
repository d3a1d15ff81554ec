"""Restore validation, safe by construction: it never connects to any database.

:func:`validate` checks a backup's archive, checksum file and manifest and names the first
failure with a :class:`FailureReason`. The restore itself is
:mod:`~pytest_reliability.ops.restore_drill`.
"""

from __future__ import annotations

from pytest_reliability.ops.restore_validation._checksum import FailureReason
from pytest_reliability.ops.restore_validation._validate import ValidationResult, validate

__all__ = ["FailureReason", "ValidationResult", "validate"]
