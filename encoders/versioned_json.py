"""Reading the small versioned JSON files of a run directory (``config.json``, ``fast_text/card.json``).

One reader, so every such file fails the same way: a file that cannot be read or parsed, or one
written in another format version, is an :class:`~encoders.errors.InputError` naming the file (and
the ``format`` field), never a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputError


def read_versioned_json(path: str | Path, expected_format: int, what: str, kind: str) -> dict[str, Any]:
    """The JSON object at ``path``, whose ``format`` must be ``expected_format``.

    ``what`` names the file in the read error ("run config"), ``kind`` the format in the version
    error ("run").
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != expected_format:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(path, f"unsupported {kind} format", field="format", expected=str(expected_format),
                         got=str(got))
    return data
