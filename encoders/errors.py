"""Error types shared by every layer.

A user never sees a traceback for bad input: commands catch :class:`DanceSearchError`
and print its message, which names the file, the field, what was expected and what was got.
"""
from __future__ import annotations

from pathlib import Path


class DanceSearchError(Exception):
    """Base class of every error DanceSearch reports to a user (exit code 1)."""


class InputError(DanceSearchError):
    """Bad input data: a file that cannot be read, or a field with the wrong shape or values."""

    def __init__(self, path: str | Path | None, reason: str, *, field: str | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.field = field
        self.expected = expected
        self.got = got
        parts = []
        if self.path:
            parts.append(self.path)
        if field:
            parts.append(f"field '{field}'")
        msg = ": ".join(parts + [reason]) if parts else reason
        if expected is not None or got is not None:
            msg += f" (expected {expected}, got {got})"
        super().__init__(msg)


class ModelMismatchError(DanceSearchError):
    """An artefact (index, cache) was built with another model than the one in use."""
