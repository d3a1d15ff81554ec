"""The strict reading of a ``sha256sum`` checksum file: one line, ``<64 hex>  <name>\\n``."""

from __future__ import annotations

import re
from enum import StrEnum

_HEX64_LOWER = re.compile(r"[0-9a-f]{64}")
_HEX_ANY = re.compile(r"[0-9a-fA-F]+")
MAX_CHECKSUM_BYTES = 4096


class FailureReason(StrEnum):
    """Why a backup failed validation: each kind of damage has its own name."""

    MISSING = "missing"
    SYMLINK = "symlink"
    NOT_REGULAR_FILE = "not_regular_file"
    EMPTY = "empty"
    CHECKSUM_MISSING = "checksum_missing"
    CHECKSUM_NOT_REGULAR_FILE = "checksum_not_regular_file"
    CHECKSUM_EMPTY = "checksum_empty"
    CHECKSUM_NOT_TEXT = "checksum_not_text"
    CHECKSUM_NO_NEWLINE = "checksum_no_newline"
    CHECKSUM_LINE_COUNT = "checksum_line_count"
    CHECKSUM_TRAILING_BYTES = "checksum_trailing_bytes"
    CHECKSUM_SEPARATOR = "checksum_separator"
    CHECKSUM_UPPERCASE_HEX = "checksum_uppercase_hex"
    CHECKSUM_NOT_HEX = "checksum_not_hex"
    CHECKSUM_DIGEST_LENGTH = "checksum_digest_length"
    CHECKSUM_FILE_NAME = "checksum_file_name"
    MANIFEST_MISSING = "manifest_missing"
    MANIFEST_INVALID = "manifest_invalid"
    MANIFEST_OTHER_BACKUP = "manifest_other_backup"
    TRUNCATED = "truncated"
    SIZE_MISMATCH = "size_mismatch"
    DIGEST_MISMATCH = "digest_mismatch"
    TOOL_UNAVAILABLE = "tool_unavailable"
    ARCHIVE_UNREADABLE = "archive_unreadable"
    INTEGRITY_CHECK_FAILED = "integrity_check_failed"


class ChecksumFileError(Exception):
    """A checksum file is malformed; ``reason`` names how."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_checksum(data: bytes, expected_name: str) -> str:
    """Return the digest of a well-formed checksum file for ``expected_name``.

    Raises :class:`ChecksumFileError` naming the first defect found.
    """
    fail = ChecksumFileError
    if not data:
        raise fail(FailureReason.CHECKSUM_EMPTY, "the checksum file is empty")
    if len(data) > MAX_CHECKSUM_BYTES:
        raise fail(
            FailureReason.CHECKSUM_TRAILING_BYTES,
            f"the checksum file is {len(data)} bytes; one line is at most {MAX_CHECKSUM_BYTES}",
        )
    if b"\n" not in data:
        raise fail(FailureReason.CHECKSUM_NO_NEWLINE, "the checksum line does not end in \\n")
    raw_line, _, rest = data.partition(b"\n")
    if rest:
        if rest.endswith(b"\n") and b"\r" not in rest and rest.strip():
            count = data.count(b"\n")
            raise fail(FailureReason.CHECKSUM_LINE_COUNT, f"the checksum file has {count} lines")
        raise fail(
            FailureReason.CHECKSUM_TRAILING_BYTES,
            f"{len(rest)} stray byte(s) after the checksum line",
        )
    try:
        line = raw_line.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(FailureReason.CHECKSUM_NOT_TEXT, "the checksum line is not UTF-8") from None
    if "\r" in line or any(ord(c) < 0x20 for c in line):
        raise fail(FailureReason.CHECKSUM_TRAILING_BYTES, "control characters in the checksum line")
    digest, sep, name = line.partition("  ")
    if not sep or " " in digest or name.startswith(("*", " ")):
        raise fail(
            FailureReason.CHECKSUM_SEPARATOR,
            "the digest and the file name must be separated by exactly two spaces",
        )
    if _HEX_ANY.fullmatch(digest) is None:
        raise fail(FailureReason.CHECKSUM_NOT_HEX, f"digest {digest[:70]!r} is not hexadecimal")
    if len(digest) != 64:
        raise fail(
            FailureReason.CHECKSUM_DIGEST_LENGTH,
            f"digest has {len(digest)} hex digits; SHA-256 has 64",
        )
    if _HEX64_LOWER.fullmatch(digest) is None:
        raise fail(FailureReason.CHECKSUM_UPPERCASE_HEX, "digest uses upper-case hex digits")
    if name != expected_name:
        if name.startswith(expected_name) and not name[len(expected_name) :].strip():
            raise fail(
                FailureReason.CHECKSUM_TRAILING_BYTES, "trailing whitespace after the file name"
            )
        raise fail(
            FailureReason.CHECKSUM_FILE_NAME,
            f"the checksum file names {name[:200]!r}, not {expected_name!r}",
        )
    return digest
