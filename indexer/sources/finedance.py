"""FineDance (``ingest finedance DIR``): ``motion/NNN.npy`` + ``music_wav/NNN.wav`` (+ the label JSON).

Motion rows are root translation (3) + 52 SMPL-X joints x 6D rotation (312) = 315 values at 30 fps;
some releases put 4 foot-contact values in front (319). Genre is the fine style (``style2``) of the
label file (``dance_lable_data.json``, upstream's spelling, beside ``motion/``); the split is the official
cross-genre split shipped in ``indexer/assets/finedance_splits.json``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from encoders.errors import InputError

from . import SequenceItem, SourceAdapter, SourceFailure, check_finite, normalize_genre, read_json

FPS = 30.0
LABEL_FILES: tuple[str, ...] = ("dance_lable_data.json", "dance_label_data.json", "labels.json")
AUDIO_EXTS: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")


@lru_cache(maxsize=1)
def official_splits() -> dict[str, str]:
    """Sequence stem -> split of the official cross-genre split (names absent from it are train)."""
    data = json.loads(resources.files("indexer").joinpath("assets/finedance_splits.json").read_text("utf-8"))
    table = {name: "val" for name in data["val"]}
    table.update({name: "test" for name in data["test"]})
    return table


def finedance_split(name: str) -> str:
    return official_splits().get(name, "train")


def read_labels(path: Path) -> dict[str, dict]:
    """``filename`` -> label record (name, style1, style2, frames) from a FineDance label file."""
    data = read_json(path, "label file")
    if isinstance(data, dict):  # tolerate {"001": {...}} as well as upstream's list
        data = [dict(v, filename=v.get("filename", k)) for k, v in data.items() if isinstance(v, dict)]
    if not isinstance(data, list):
        raise InputError(path, "label file must be a list of objects", got=type(data).__name__)
    out: dict[str, dict] = {}
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "filename" not in rec:
            raise InputError(path, f"entry {i} has no 'filename'", field="filename")
        out[str(rec["filename"])] = rec
    return out


def motion_from_array(arr: np.ndarray, path: Path):
    """(T, 315) or (T, 319) FineDance rows -> MotionRecord at 30 fps (the contacts are recomputed later)."""
    from encoders.motion.convert import from_smplx_rot6d

    if arr.ndim != 2 or arr.shape[1] not in (315, 319):
        raise InputError(path, "wrong motion array shape", field="motion",
                         expected="(T, 315) = trans 3 + 52 x 6D, or (T, 319) with 4 foot contacts first",
                         got=str(arr.shape))
    if arr.shape[0] < 2:
        raise InputError(path, "motion has fewer than 2 frames", field="motion", got=str(arr.shape))
    check_finite(arr, path, "motion")
    if arr.shape[1] == 319:
        arr = arr[:, 4:]
    arr = arr.astype(np.float32)
    trans = arr[:, :3]
    rot6d = arr[:, 3:].reshape(len(arr), 52, 6)
    try:
        return from_smplx_rot6d(trans, rot6d, FPS)
    except InputError as exc:
        raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from None


class FineDanceAdapter(SourceAdapter):
    kind = "finedance"
    requires_audio = True

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.motion_dir = self.root / "motion"
        self.music_dir = self.root / "music_wav"
        if not self.motion_dir.is_dir():
            raise InputError(self.root, "not a FineDance folder: no 'motion/' sub-folder")
        self.labels: dict[str, dict] = {}
        for name in LABEL_FILES:
            label_path = self.root / name
            if label_path.is_file():
                try:
                    self.labels = read_labels(label_path)
                except InputError as exc:
                    self.failures.append(SourceFailure(str(label_path), exc.reason))
                break

    def candidates(self) -> list[Path]:
        return sorted(self.motion_dir.glob("*.npy"))

    def load(self, candidate: Path) -> SequenceItem:
        name = candidate.stem
        audio = next((self.music_dir / f"{name}{ext}" for ext in AUDIO_EXTS
                      if (self.music_dir / f"{name}{ext}").is_file()), None)
        if audio is None:
            raise InputError(candidate, f"missing music: expected music_wav/{name}.wav")
        try:
            arr = np.load(candidate, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(candidate, f"cannot read .npy: {exc}") from None
        motion = motion_from_array(np.asarray(arr), candidate)
        label = self.labels.get(name, {})
        meta = {"format": "finedance", "frames_source": int(arr.shape[0]), "foot_contacts_in_file": arr.shape[1] == 319}
        for k in ("name", "style1", "style2", "frames"):
            if k in label:
                meta[f"label_{k}"] = label[k]
        tags = {"style": normalize_genre(label["style1"])} if label.get("style1") else {}
        return SequenceItem(name=name, path=candidate, motion=motion, audio=audio,
                            genre=normalize_genre(label.get("style2")), dancer=None,
                            split=finedance_split(name), bpm=None, tags=tags, meta=meta,
                            files=[candidate, audio])
