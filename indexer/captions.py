"""The captions JSON Lines file (DATA_FORMATS.md): parsing with line-numbered errors, and assignment to clips.

Each line names its clip(s) either by key (``"<sequence>#<index>"``; a ``"<source>/"`` prefix is accepted)
or by a time span of a sequence; a span caption goes to every clip overlapping it by at least half the
clip. Blank lines and lines starting with ``//`` are ignored, so files can be commented.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from encoders.errors import InputError

from .clipping import ClipSpan

_CLIP_RE = re.compile(r"^(?P<seq>.+)#(?P<idx>\d+)$")


@dataclass(frozen=True)
class CaptionEntry:
    """One line of a captions file, normalised."""

    line: int
    sequence: str                     # sequence name (may carry a "<source>/" prefix, see matches())
    clip_index: int | None            # set for "clip" lines
    start: float | None               # set for span lines (seconds)
    end: float | None
    captions: tuple[str, ...]
    tags: dict = field(default_factory=dict)
    source_file: str = ""

    def matches_sequence(self, source: str, name: str) -> bool:
        return self.sequence == name or self.sequence == f"{source}/{name}"


@dataclass
class ClipAnnotations:
    """What the captions file(s) add to one clip."""

    captions: list[str] = field(default_factory=list)
    tags: dict = field(default_factory=dict)


def _fail(path: str, line: int, reason: str) -> InputError:
    return InputError(path, f"line {line}: {reason}")


def _parse_object(obj: object, path: str, line: int) -> CaptionEntry:
    if not isinstance(obj, dict):
        raise _fail(path, line, f"expected a JSON object, got {type(obj).__name__}")
    caps = obj.get("captions", obj.get("caption"))
    if isinstance(caps, str):
        caps = [caps]
    if caps is None:
        caps = []
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise _fail(path, line, "'captions' must be a list of strings")
    caps = [c.strip() for c in caps if c.strip()]
    tags = obj.get("tags", {})
    if tags is None:
        tags = {}
    if not isinstance(tags, dict):
        raise _fail(path, line, "'tags' must be an object")
    if not caps and not tags:
        raise _fail(path, line, "no 'captions' and no 'tags': the line says nothing")
    if "clip" in obj:
        clip = obj["clip"]
        m = _CLIP_RE.match(clip) if isinstance(clip, str) else None
        if m is None:
            raise _fail(path, line, f"'clip' must look like \"<sequence>#<index>\", got {clip!r}")
        return CaptionEntry(line, m.group("seq"), int(m.group("idx")), None, None, tuple(caps), dict(tags), path)
    if "sequence" in obj:
        seq = obj["sequence"]
        if not isinstance(seq, str) or not seq:
            raise _fail(path, line, "'sequence' must be a non-empty string")
        try:
            start = float(obj["start"])
            end = float(obj["end"])
        except KeyError as exc:
            raise _fail(path, line, f"a 'sequence' line needs 'start' and 'end' (seconds), missing {exc}") from None
        except (TypeError, ValueError):
            raise _fail(path, line, "'start' and 'end' must be numbers (seconds)") from None
        if not (start >= 0 and end > start):
            raise _fail(path, line, f"need 0 <= start < end, got start={start}, end={end}")
        return CaptionEntry(line, seq, None, start, end, tuple(caps), dict(tags), path)
    raise _fail(path, line, "each line needs 'clip' or 'sequence' + 'start' + 'end'")


def parse_captions_lines(lines: Iterable[str], path: str | Path = "<captions>") -> list[CaptionEntry]:
    """Parse JSONL text lines; raises :class:`InputError` naming the file and the 1-based line."""
    path = str(path)
    entries = []
    for no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("//"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(path, no, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        entries.append(_parse_object(obj, path, no))
    return entries


def parse_captions_file(path: str | Path) -> list[CaptionEntry]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read captions file: {exc}") from exc
    return parse_captions_lines(text.splitlines(), path)


def assign_captions(entries: Sequence[CaptionEntry], source: str, sequence: str,
                    spans: Sequence[ClipSpan]) -> tuple[dict[int, ClipAnnotations], list[CaptionEntry]]:
    """Annotations per clip index for one sequence, and the entries of this sequence matching no clip."""
    out: dict[int, ClipAnnotations] = {}
    unmatched: list[CaptionEntry] = []
    by_index = {s.index: s for s in spans}
    for e in entries:
        if not e.matches_sequence(source, sequence):
            continue
        if e.clip_index is not None:
            targets = [e.clip_index] if e.clip_index in by_index else []
        else:
            targets = [s.index for s in spans
                       if min(s.end_s, e.end) - max(s.start_s, e.start) >= 0.5 * s.duration_s - 1e-6]
        if not targets:
            unmatched.append(e)
        for idx in targets:
            ann = out.setdefault(idx, ClipAnnotations())
            for c in e.captions:
                if c not in ann.captions:
                    ann.captions.append(c)
            ann.tags.update(e.tags)
    return out, unmatched


def entries_for_unknown_sequences(entries: Sequence[CaptionEntry], known: set[tuple[str, str]]) -> list[CaptionEntry]:
    """Entries naming a sequence not in ``known`` ((source, name) pairs): reported as warnings."""
    return [e for e in entries if not any(e.matches_sequence(src, name) for src, name in known)]
