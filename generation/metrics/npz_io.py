"""Read folders of predicted / ground-truth dances as :class:`DanceSample` lists for the generation metrics.

Accepted files (one dance each, errors name the file):

- the project's motion record npz (``encoders.motion.record.MotionRecord``: ``fps``, ``trans``, ``positions``,
  ``joint_names``), the format every ingested clip and every generated dance is saved in;
- a plain npz with ``positions`` (T, J, 3) or (T, J * 3), optional ``joint_names`` (J strings; defaults by J:
  52 = SMPL-X FineDance order, 24 = SMPL, 22 = SMPL body), optional ``fps`` (else ``default_fps``);
- a plain ``.npy`` array (T, J, 3) or (T, J * 3) with the same defaults;
- the generative representation's arrays: an npz with ``features`` (T, 319), or a ``.npy`` (T, 319), decoded
  by forward kinematics (``generation.representation``); a FineDance motion array (T, 315) likewise.

Arrays read as positions whose bones stretch by more than 20% across frames (median over bones) are
refused: they are pose parameters or features, not positions. Music beats (seconds) come from a
``music_beats`` or ``beats`` array in the npz; without them a dance has no BAS (a motion record carries
none: save generated dances with ``music_beats`` to score BAS). Positions are metres and +y up unless
``up_axis='z'`` (converted with the rotation ``encoders.motion.convert`` uses). Only ``.npz`` and ``.npy``
files are read (convert AIST++ CSVs or EDGE pickles to npz first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from encoders.errors import InputError
from encoders.motion.convert import Z_UP_TO_Y_UP
from encoders.motion.skeleton import SMPL_BODY_22, smpl24, smplx52

from .sample import DanceSample

SUFFIXES = (".npz", ".npy")
RECORD_KEYS = {"fps", "trans", "positions", "joint_names"}


def default_joint_names(num_joints: int) -> tuple[str, ...] | None:
    """Joint names implied by a joint count alone (52 SMPL-X, 24 SMPL, 22 SMPL body), else None."""
    return {52: smplx52().names, 24: smpl24().names, 22: SMPL_BODY_22}.get(num_joints)


FEATURES_319 = 319
FINEDANCE_315 = 315
MAX_BONE_SPREAD = 0.2
"""Median over bones of (std / mean) of bone length across frames above which an array is not positions."""


def _decode_layout(path: Path, arr: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """(T, 319) generative features or (T, 315) FineDance rows -> (positions, names) by FK; else None."""
    if arr.ndim != 2 or arr.shape[1] not in (FEATURES_319, FINEDANCE_315):
        return None
    if arr.shape[1] == FEATURES_319:
        from ..representation.codec import decode

        rec = decode(arr, name=str(path))
    else:
        from encoders.motion.convert import from_smplx_rot6d

        rec = from_smplx_rot6d(arr[:, :3], arr[:, 3:], 30.0)
    return rec.positions.astype(np.float64), list(rec.joint_names)


def _check_rigid(path: Path, pos: np.ndarray, names: Sequence[str]) -> None:
    """Refuse arrays whose 'bones' stretch wildly: pose parameters or features read as positions."""
    skel = smplx52() if len(names) == 52 else smpl24() if len(names) == 24 else None
    if skel is None or len(pos) < 2 or list(names) != list(skel.names)[:len(names)]:
        return
    pairs = [(j, p) for j, p in enumerate(skel.parents[:len(names)]) if p >= 0]
    lengths = np.stack([np.linalg.norm(pos[:, j] - pos[:, p], axis=-1) for j, p in pairs], axis=1)
    spread = float(np.median(lengths.std(axis=0) / np.maximum(lengths.mean(axis=0), 1e-9)))
    if spread > MAX_BONE_SPREAD:
        raise InputError(path, "does not look like joint positions: bone lengths vary by "
                         f"{100 * spread:.0f}% across frames (pose parameters?)", field="positions",
                         expected="positions (T, J, 3) in metres, or (T, 319) generative features, or (T, 315) "
                                  "FineDance rows", got=str(pos.shape))


def _positions(path: Path, arr: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] % 3 == 0:
        arr = arr.reshape(arr.shape[0], -1, 3)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(path, "bad joint positions", field="positions", expected="(T, J, 3) or (T, J*3)",
                         got=str(arr.shape))
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(path, "joint positions are not numbers", field="positions", got=str(arr.dtype))
    return arr.astype(np.float64)


def load_sample(path: str | Path, default_fps: float = 30.0, up_axis: str = "y") -> DanceSample:
    """One file -> :class:`DanceSample` named after the file stem; errors name the file."""
    path = Path(path)
    names: Sequence[str] | None = None
    beats = None
    fps = default_fps
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            decoded = _decode_layout(path, arr)
            if decoded is not None:
                arr, names = decoded
        else:
            with np.load(path, allow_pickle=False) as z:
                files = set(z.files)
                if RECORD_KEYS <= files:
                    from encoders.motion.record import MotionRecord

                    rec = MotionRecord.load(path)
                    arr, names, fps = rec.positions, rec.joint_names, rec.fps
                elif "positions" not in files and "features" in files:
                    decoded = _decode_layout(path, np.asarray(z["features"]))
                    if decoded is None:
                        raise InputError(path, "bad generative features", field="features",
                                         expected=f"(T, {FEATURES_319}) or (T, {FINEDANCE_315})",
                                         got=str(np.asarray(z["features"]).shape))
                    arr, names = decoded
                    if "fps" in files:
                        fps = float(np.asarray(z["fps"]).reshape(-1)[0])
                else:
                    if "positions" not in files:
                        raise InputError(path, "npz has no joint positions", field="positions",
                                         expected="a 'positions' array (T, J, 3) or 'features' (T, 319)",
                                         got=f"keys {sorted(files)[:8]}")
                    arr = z["positions"]
                    if "joint_names" in files:
                        names = [str(n) for n in z["joint_names"]]
                    if "fps" in files:
                        fps = float(np.asarray(z["fps"]).reshape(-1)[0])
                for key in ("music_beats", "beats"):
                    if key in files:
                        beats = np.asarray(z[key], dtype=np.float64).reshape(-1)
                        break
    except InputError as exc:
        if exc.path is None:
            raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise InputError(path, f"cannot read dance file: {exc}") from exc
    pos = _positions(path, arr, names)
    if names is None:
        names = default_joint_names(pos.shape[1])
        if names is None:
            raise InputError(path, "no joint_names and the joint count implies none", field="joint_names",
                             expected="joint_names, or 22 / 24 / 52 joints (or (T, 319) features)",
                             got=f"{pos.shape[1]} joints")
    _check_rigid(path, pos, names)
    if str(up_axis).lower() == "z":
        pos = pos @ Z_UP_TO_Y_UP.T
    elif str(up_axis).lower() != "y":
        raise InputError(path, "unknown up axis", field="up_axis", expected="'y' or 'z'", got=repr(up_axis))
    if beats is not None and not np.isfinite(beats).all():
        raise InputError(path, "music beats contain NaN or infinite values", field="music_beats")
    try:
        return DanceSample(path.stem, pos, fps, names, beats, {"path": str(path)})
    except InputError as exc:
        raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc


def load_folder(folder: str | Path, default_fps: float = 30.0, up_axis: str = "y",
                role: str = "dances") -> list[DanceSample]:
    """Every ``.npz`` / ``.npy`` file directly in ``folder`` (sorted by name) as samples; errors name the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, f"{role} folder not found (expected a folder of .npz / .npy dances)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise InputError(folder, f"no {role} files in folder", expected="*.npz or *.npy files", got="none")
    return [load_sample(p, default_fps=default_fps, up_axis=up_axis) for p in files]
