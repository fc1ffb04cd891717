"""The generic npz format (``ingest npz DIR``, DATA_FORMATS.md): one ``NAME.npz`` per sequence.

Motion is either global ``positions`` (T, J, 3) + ``joint_names`` or local axis-angle ``poses``
(T, 52, 3) SMPL-X / (T, 24, 3) SMPL + ``trans``; ``fps`` is required; ``audio`` is a path relative to
the npz; ``metadata`` a JSON object string. ``DIR/captions.jsonl`` is read automatically. Files are
opened with ``allow_pickle=False``: an npz can never run code.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from encoders.errors import InputError

from . import SequenceItem, SourceAdapter, SourceFailure, check_finite, labels_from_metadata
from ..captions import CaptionEntry, parse_captions_file

CAPTIONS_FILE = "captions.jsonl"


def _scalar_str(z: np.lib.npyio.NpzFile, key: str, path: Path) -> str:
    arr = z[key]
    if arr.ndim != 0 and arr.size != 1:
        raise InputError(path, "expected one string", field=key, got=f"array of shape {arr.shape}")
    value = arr.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise InputError(path, "expected a string", field=key, got=type(value).__name__)
    return value


def motion_from_npz(z: np.lib.npyio.NpzFile, path: Path):
    """The MotionRecord of an opened npz (validated field by field)."""
    from encoders.motion import convert

    if "fps" not in z.files:
        raise InputError(path, "missing required array", field="fps", expected="scalar frame rate", got="absent")
    try:
        fps = float(np.asarray(z["fps"]).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise InputError(path, "fps is not a number", field="fps") from None
    if not (np.isfinite(fps) and 1.0 <= fps <= 1000.0):
        raise InputError(path, "implausible frame rate", field="fps", expected="1..1000", got=str(fps))
    trans = None
    if "trans" in z.files:
        trans = np.asarray(z["trans"])
        check_finite(trans, path, "trans")
    if "positions" in z.files:
        pos = np.asarray(z["positions"])
        if pos.ndim != 3 or pos.shape[2] != 3 or pos.shape[0] < 2:
            raise InputError(path, "wrong array shape", field="positions", expected="(T, J, 3) with T >= 2",
                             got=str(pos.shape))
        check_finite(pos, path, "positions")
        if "joint_names" not in z.files:
            raise InputError(path, "positions need joint names", field="joint_names", expected=f"({pos.shape[1]},) str",
                             got="absent")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(z["joint_names"]).reshape(-1)]
        if len(names) != pos.shape[1]:
            raise InputError(path, "joint names and positions disagree", field="joint_names",
                             expected=f"{pos.shape[1]} names", got=f"{len(names)}")
        if trans is not None and trans.shape != (pos.shape[0], 3):
            raise InputError(path, "wrong array shape", field="trans", expected=f"({pos.shape[0]}, 3)", got=str(trans.shape))
        return convert.from_positions(pos.astype(np.float32), names, fps,
                                      trans=None if trans is None else trans.astype(np.float32))
    if "poses" in z.files:
        poses = np.asarray(z["poses"])
        if poses.ndim == 2 and poses.shape[1] in (156, 72):
            poses = poses.reshape(len(poses), -1, 3)
        if poses.ndim != 3 or poses.shape[1:] not in ((52, 3), (24, 3)) or poses.shape[0] < 2:
            raise InputError(path, "wrong array shape", field="poses", expected="(T, 52, 3) or (T, 24, 3) with T >= 2",
                             got=str(poses.shape))
        check_finite(poses, path, "poses")
        if trans is None:
            raise InputError(path, "poses need a root translation", field="trans", expected=f"({len(poses)}, 3)",
                             got="absent")
        if trans.shape != (len(poses), 3):
            raise InputError(path, "wrong array shape", field="trans", expected=f"({len(poses)}, 3)", got=str(trans.shape))
        if poses.shape[1] == 52:
            return convert.from_smplx_axis_angle(trans.astype(np.float32), poses.astype(np.float32), fps)
        return convert.from_smpl_axis_angle(poses.reshape(len(poses), 72).astype(np.float32),
                                            trans.astype(np.float32), 1.0, fps)
    raise InputError(path, "no motion", field="positions", expected="'positions' + 'joint_names' or 'poses' + 'trans'",
                     got=f"arrays {sorted(z.files)}")


class NpzAdapter(SourceAdapter):
    kind = "npz"
    requires_audio = False

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.folder = self.root.parent if self.root.is_file() else self.root
        self._captions: list[CaptionEntry] = []
        cap = self.folder / CAPTIONS_FILE
        if cap.is_file():
            try:
                self._captions = parse_captions_file(cap)
            except InputError as exc:
                self.failures.append(SourceFailure(str(cap), exc.reason))

    def candidates(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        return sorted(self.root.glob("*.npz"))

    def extra_captions(self) -> list[CaptionEntry]:
        """The folder's ``captions.jsonl``; for a single file, only its lines for that file's sequence.

        Why: the folder's captions file describes every sequence of the folder, so ingesting one file
        would otherwise report every other sequence's lines as matching no ingested clip.
        """
        if self.root.is_file():
            name = self.root.stem
            return [e for e in self._captions if e.sequence == name or e.sequence.rsplit("/", 1)[-1] == name]
        return list(self._captions)

    def load(self, candidate: Path) -> SequenceItem:
        try:
            with np.load(candidate, allow_pickle=False) as z:
                motion = motion_from_npz(z, candidate)
                audio_rel = _scalar_str(z, "audio", candidate) if "audio" in z.files else None
                meta_text = _scalar_str(z, "metadata", candidate) if "metadata" in z.files else None
        except InputError as exc:
            raise InputError(exc.path or candidate, exc.reason, field=exc.field, expected=exc.expected,
                             got=exc.got) from None
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise InputError(candidate, "holds Python-object arrays; store strings as numpy str arrays") from None
            raise InputError(candidate, f"cannot read npz: {exc}") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise InputError(candidate, f"cannot read npz: {exc}") from None
        labels: dict = {}
        if meta_text:
            try:
                meta_obj = json.loads(meta_text)
            except json.JSONDecodeError as exc:
                raise InputError(candidate, f"invalid JSON: {exc.msg}", field="metadata") from None
            if not isinstance(meta_obj, dict):
                raise InputError(candidate, "metadata must be a JSON object", field="metadata",
                                 got=type(meta_obj).__name__)
            labels = labels_from_metadata(meta_obj, candidate)
        files = [candidate]
        audio = None
        if audio_rel:
            audio = (candidate.parent / audio_rel).resolve()
            if not audio.is_file():
                raise InputError(candidate, "audio file not found", field="audio", expected="an existing file",
                                 got=str(audio))
            files.append(audio)
        meta = {"format": "npz", **{k: v for k, v in motion.meta.items() if isinstance(v, (str, int, float, type(None)))}}
        return SequenceItem(name=candidate.stem, path=candidate, motion=motion, audio=audio,
                            genre=labels.get("genre", "unknown"), dancer=labels.get("dancer"),
                            split=labels.get("split"), bpm=labels.get("bpm"), captions=labels.get("captions", []),
                            tags=labels.get("tags", {}), meta=meta, split_group=labels.get("split_group"),
                            files=files)
