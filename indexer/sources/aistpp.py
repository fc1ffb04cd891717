"""AIST++ (``ingest aistpp DIR``): ``motions/<name>.pkl`` (SMPL, 60 fps) + ``music/<music id>.wav``.

Sequence names encode the labels: ``gBR_sBM_cAll_d04_mBR0_ch01`` = genre BR (break), dancer d04,
music mBR0; the music's BPM is 80 + 10 N for every genre but house (mHO: 110 + 5 N). The pickles are
read with an unpickler that only rebuilds numpy arrays, so a hostile .pkl cannot run code.
"""
from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.errors import InputError

from . import SequenceItem, SourceAdapter, check_finite

FPS = 60.0
GENRES: dict[str, str] = {
    "BR": "break", "PO": "pop", "LO": "lock", "MH": "middle hip-hop", "LH": "la hip-hop",
    "HO": "house", "WA": "waack", "KR": "krump", "JS": "street jazz", "JB": "ballet jazz",
}
SITUATIONS: dict[str, str] = {"BM": "basic", "FM": "advanced", "MM": "moving camera", "GR": "group"}
_NAME_RE = re.compile(r"^g(?P<genre>[A-Z]{2})_s(?P<situation>[A-Za-z]+)_c(?P<camera>[A-Za-z0-9]+)_"
                      r"d(?P<dancer>\d+)_m(?P<mgenre>[A-Z]{2})(?P<mnum>\d+)_ch(?P<chor>\d+)$")
AUDIO_EXTS: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")


@dataclass(frozen=True)
class AistName:
    genre_code: str
    genre: str
    situation: str
    dancer: str
    music_id: str
    bpm: float
    choreography: str


def music_bpm(music_genre: str, number: int) -> float:
    """AIST++ music tempo from its id: 110 + 5 N for house, 80 + 10 N otherwise."""
    return 110.0 + 5.0 * number if music_genre == "HO" else 80.0 + 10.0 * number


def parse_name(name: str) -> AistName | None:
    """Labels from an AIST++ sequence name (None when it does not follow the naming scheme)."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    code = m.group("genre")
    return AistName(code, GENRES.get(code, code.lower()), SITUATIONS.get(m.group("situation"), m.group("situation")),
                    f"d{m.group('dancer')}", f"m{m.group('mgenre')}{m.group('mnum')}",
                    music_bpm(m.group("mgenre"), int(m.group("mnum"))), f"ch{m.group('chor')}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dicts and scalars only; anything else is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in self._ALLOWED or (module == "numpy" and name.endswith("DType")) \
                or module in ("numpy.dtypes",):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are accepted)")


def read_pkl(path: Path) -> dict:
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(path, f"cannot read pickle: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a dict of arrays", got=type(data).__name__)
    return data


def motion_from_pkl(data: dict, path: Path):
    from encoders.motion.convert import from_smpl_axis_angle

    missing = [k for k in ("smpl_poses", "smpl_trans") if k not in data]
    if missing:
        raise InputError(path, f"missing keys {missing}", expected="smpl_poses, smpl_trans, smpl_scaling",
                         got=str(sorted(data)))
    poses = np.asarray(data["smpl_poses"])
    trans = np.asarray(data["smpl_trans"])
    if poses.ndim == 3 and poses.shape[1:] == (24, 3):
        poses = poses.reshape(len(poses), 72)
    if poses.ndim != 2 or poses.shape[1] != 72 or len(poses) < 2:
        raise InputError(path, "wrong pose array shape", field="smpl_poses", expected="(T, 72)", got=str(poses.shape))
    if trans.shape != (len(poses), 3):
        raise InputError(path, "wrong translation shape", field="smpl_trans", expected=f"({len(poses)}, 3)",
                         got=str(trans.shape))
    check_finite(poses, path, "smpl_poses")
    check_finite(trans, path, "smpl_trans")
    scaling_raw = np.asarray(data.get("smpl_scaling", 1.0), dtype=np.float64).reshape(-1)
    if scaling_raw.size < 1 or not np.isfinite(scaling_raw[0]) or scaling_raw[0] <= 0:
        raise InputError(path, "bad scaling", field="smpl_scaling", expected="a positive number",
                         got=str(scaling_raw[:1]))
    try:
        return from_smpl_axis_angle(poses.astype(np.float32), trans.astype(np.float32), float(scaling_raw[0]), FPS)
    except InputError as exc:
        raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from None


class AistppAdapter(SourceAdapter):
    kind = "aistpp"
    requires_audio = True

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.motion_dir = self.root / "motions"
        self.music_dir = self.root / "music"
        if not self.motion_dir.is_dir():
            raise InputError(self.root, "not an AIST++ folder: no 'motions/' sub-folder")

    def candidates(self) -> list[Path]:
        return sorted(self.motion_dir.glob("*.pkl"))

    def _audio_for(self, name: str, parsed: AistName | None) -> Path | None:
        stems = ([parsed.music_id] if parsed else []) + [name]
        for stem in stems:
            for ext in AUDIO_EXTS:
                p = self.music_dir / f"{stem}{ext}"
                if p.is_file():
                    return p
        return None

    def load(self, candidate: Path) -> SequenceItem:
        name = candidate.stem
        parsed = parse_name(name)
        audio = self._audio_for(name, parsed)
        if audio is None:
            want = f"music/{parsed.music_id}.wav" if parsed else f"music/{name}.wav"
            raise InputError(candidate, f"missing music: expected {want}")
        motion = motion_from_pkl(read_pkl(candidate), candidate)
        meta: dict = {"format": "aistpp"}
        tags: dict = {}
        if parsed:
            meta.update({"music_id": parsed.music_id, "situation": parsed.situation,
                         "choreography": parsed.choreography, "genre_code": parsed.genre_code})
            tags["situation"] = parsed.situation
        return SequenceItem(name=name, path=candidate, motion=motion, audio=audio,
                            genre=parsed.genre if parsed else "unknown",
                            dancer=parsed.dancer if parsed else None, split=None,
                            bpm=parsed.bpm if parsed else None, tags=tags, meta=meta,
                            files=[candidate, audio])
