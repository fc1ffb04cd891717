"""BVH folders (``ingest bvh DIR``): every ``.bvh`` / ``.bvh.gz`` below DIR, recursively.

Optional sidecars with the same stem beside each file: audio (``<stem>.wav|.ogg|.flac|.mp3``) and
``<stem>.json`` with ``genre``, ``dancer``, ``bpm``, ``split``, ``group``, ``captions``, ``tags``. Without
a sidecar the genre is ``unknown`` (motion-capture archives such as CMU rarely label genre per file).
The sequence name is the file stem; stems that occur twice in the tree get their folder path in front
(``a-b-stem``) so names stay unique.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from encoders.errors import InputError

from . import SequenceItem, SourceAdapter, find_sidecar_audio, labels_from_metadata, read_json_object


def bvh_stem(path: Path) -> str:
    name = path.name
    for suffix in (".bvh.gz", ".bvh"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class BvhAdapter(SourceAdapter):
    kind = "bvh"
    requires_audio = False

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._names: dict[Path, str] = {}

    def candidates(self) -> list[Path]:
        if self.root.is_file():
            files = [self.root]
            base = self.root.parent
        else:
            files = sorted(p for p in self.root.rglob("*")
                           if p.is_file() and p.name.lower().endswith((".bvh", ".bvh.gz")))
            base = self.root
        counts = Counter(bvh_stem(p) for p in files)
        for p in files:
            stem = bvh_stem(p)
            if counts[stem] > 1:
                parts = list(p.parent.relative_to(base).parts) + [stem]
                stem = "-".join(parts)
            self._names[p] = stem
        return files

    def load(self, candidate: Path) -> SequenceItem:
        from encoders.motion.bvh import read_bvh

        name = self._names.get(candidate) or bvh_stem(candidate)
        stem_base = candidate.with_name(bvh_stem(candidate))
        sidecar = stem_base.with_name(stem_base.name + ".json")
        labels: dict = {}
        files = [candidate]
        if sidecar.is_file():
            labels = labels_from_metadata(read_json_object(sidecar), sidecar, field_prefix="sidecar")
            files.append(sidecar)
        audio = find_sidecar_audio(stem_base)
        if audio is not None:
            files.append(audio)
        try:
            motion = read_bvh(candidate).to_record()
        except InputError as exc:
            raise InputError(exc.path or candidate, exc.reason, field=exc.field, expected=exc.expected,
                             got=exc.got) from None
        meta = {"format": "bvh", **{k: v for k, v in motion.meta.items() if isinstance(v, (str, int, float, type(None)))}}
        return SequenceItem(name=name, path=candidate, motion=motion, audio=audio,
                            genre=labels.get("genre", "unknown"), dancer=labels.get("dancer"),
                            split=labels.get("split"), bpm=labels.get("bpm"), captions=labels.get("captions", []),
                            tags=labels.get("tags", {}), meta=meta, split_group=labels.get("split_group"),
                            files=files)
