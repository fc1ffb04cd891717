"""The canonical clip motion record every source is converted to.

fps 30, root translation (T, 3), global joint positions (T, J, 3) with joint names always,
and 52 x 6D local rotations (SMPL-X order, row convention) when the source has rotations.
Metres, +y up, the body faces +z at rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic_io import atomic_save_npz
from ..errors import DanceSearchError, InputError
from .skeleton import SMPL_BODY_22


@dataclass
class MotionRecord:
    fps: float
    trans: np.ndarray                 # (T, 3)
    positions: np.ndarray             # (T, J, 3)
    joint_names: list[str]
    rotations_6d: np.ndarray | None = None   # (T, 52, 6), SMPL-X 52 local rotations
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.trans = np.asarray(self.trans, dtype=np.float32)
        self.positions = np.asarray(self.positions, dtype=np.float32)
        self.joint_names = [str(n) for n in self.joint_names]
        t = len(self.positions)
        if self.positions.ndim != 3 or self.positions.shape[-1] != 3:
            raise InputError(None, "bad joint positions", field="positions", expected="(T, J, 3)",
                             got=str(self.positions.shape))
        if self.positions.shape[1] != len(self.joint_names):
            raise InputError(None, "joint names and positions disagree", field="joint_names",
                             expected=f"{self.positions.shape[1]} names", got=f"{len(self.joint_names)}")
        if self.trans.shape != (t, 3):
            raise InputError(None, "bad root translation", field="trans", expected=f"({t}, 3)", got=str(self.trans.shape))
        if self.rotations_6d is not None:
            self.rotations_6d = np.asarray(self.rotations_6d, dtype=np.float32)
            if self.rotations_6d.shape != (t, 52, 6):
                raise InputError(None, "bad rotations", field="rotations_6d", expected=f"({t}, 52, 6)",
                                 got=str(self.rotations_6d.shape))
        for name, arr in (("positions", self.positions), ("trans", self.trans), ("rotations_6d", self.rotations_6d)):
            if arr is not None and not np.isfinite(arr).all():
                raise InputError(None, "contains NaN or infinite values", field=name)

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def joint_index(self, name: str) -> int:
        return self.joint_names.index(name)

    def body22(self) -> np.ndarray:
        """Positions of the 22 SMPL body joints (T, 22, 3); raises if the record lacks one."""
        missing = [n for n in SMPL_BODY_22 if n not in self.joint_names]
        if missing:
            raise InputError(None, "record lacks SMPL body joints", field="joint_names",
                             expected="the 22 SMPL body joint names", got=f"missing {missing[:4]}")
        idx = [self.joint_names.index(n) for n in SMPL_BODY_22]
        return self.positions[:, idx]

    def slice(self, start: int, end: int) -> "MotionRecord":
        return MotionRecord(self.fps, self.trans[start:end], self.positions[start:end], list(self.joint_names),
                            None if self.rotations_6d is None else self.rotations_6d[start:end], dict(self.meta))

    # Storage: float16 keeps a 12 s clip small (positions are metres; float16 resolves 0.5 mm at 1 m).
    def save(self, path: str | Path) -> None:
        arrays = {
            "fps": np.float32(self.fps),
            "trans": self.trans.astype(np.float32),
            "positions": self.positions.astype(np.float16),
            "joint_names": np.asarray(self.joint_names),
        }
        if self.rotations_6d is not None:
            arrays["rotations_6d"] = self.rotations_6d.astype(np.float16)
        atomic_save_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "MotionRecord":
        try:
            with np.load(path, allow_pickle=False) as z:
                rot = z["rotations_6d"].astype(np.float32) if "rotations_6d" in z.files else None
                return cls(float(z["fps"]), z["trans"], z["positions"].astype(np.float32),
                           [str(n) for n in z["joint_names"]], rot)
        except DanceSearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt npz fails in many ways (zip, pickle guard, shapes)
            raise InputError(path, f"cannot read motion record ({type(exc).__name__}: {exc})") from exc


def names_present(record: MotionRecord, names: Sequence[str]) -> bool:
    return all(n in record.joint_names for n in names)
