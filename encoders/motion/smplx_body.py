"""The official SMPL / SMPL-X body model (the ``smplx`` package), for users who have the model files.

The model-free path (:mod:`encoders.motion.convert`) places joints with a fixed neutral rest
skeleton; this path evaluates the real model: body shape (``betas``), the official joint
regressor and linear blend skinning, giving joints and optionally mesh vertices.

The model files are licensed by the Max Planck Institute and are not redistributable, so
DanceSearch cannot ship them: a user registers and downloads them (see
:data:`HOW_TO_GET_MODELS`) and passes the file or its folder.

Implementation note: joints and vertices are computed with ``smplx.lbs.lbs`` on the buffers of
the module ``smplx`` loads, which is exactly what the module's ``forward`` does before it appends
landmark / extra-vertex joints. Calling it directly lets one batch hold any number of frames
(``forward`` of SMPL-X is tied to the module's ``batch_size`` for its jaw, eye and expression
parameters) and keeps working with small test models that lack the landmark vertices.
"""
from __future__ import annotations

import contextlib
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .convert import _array, _check_fps, _frames, _trans, smpl24_to_smplx52_rotations
from .kinematics import TARGET_FPS, resample_linear, resample_rotations
from .record import MotionRecord
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d
from .skeleton import smpl24, smplx52

HOW_TO_GET_MODELS = (
    "the body model files are not distributed with DanceSearch: register and download them from "
    "https://smpl-x.is.tue.mpg.de (SMPL-X: SMPLX_NEUTRAL.npz / SMPLX_MALE.npz / SMPLX_FEMALE.npz) or "
    "https://smpl.is.tue.mpg.de (SMPL: SMPL_NEUTRAL.pkl ...), then pass the file, or a folder holding "
    "it (directly or in a 'smplx' / 'smpl' subfolder)"
)

MODEL_TYPES = ("smplx", "smpl")
GENDERS = ("neutral", "male", "female")

# SMPL-X's 55 model joints -> FineDance's 52: drop jaw (22) and eyes (23, 24).
SMPLX55_TO_52 = np.r_[0:22, 25:55]

_REQUIRED_KEYS = {
    "smpl": ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"),
    "smplx": ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f",
              "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
              "lmk_faces_idx", "lmk_bary_coords"),
}


@dataclass
class BodyOutput:
    """Result of :func:`body_forward`: joints (T, J, 3) and vertices (T, V, 3) or None, metres."""

    joints: np.ndarray
    vertices: np.ndarray | None
    faces: np.ndarray


def _find_model_file(model_path: Path, model_type: str, gender: str) -> Path:
    if model_path.is_file():
        return model_path
    if model_path.is_dir():
        stem = f"{model_type.upper()}_{gender.upper()}"
        for folder in (model_path, model_path / model_type):
            for ext in ("npz", "pkl"):
                cand = folder / f"{stem}.{ext}"
                if cand.is_file():
                    return cand
        raise InputError(model_path, f"no {stem}.npz or {stem}.pkl in this folder or its '{model_type}' "
                         f"subfolder; {HOW_TO_GET_MODELS}", field="model_path")
    raise InputError(model_path, f"body model file not found; {HOW_TO_GET_MODELS}", field="model_path")


def _load_model_data(path: Path) -> dict:
    """The arrays of an SMPL / SMPL-X model file (.npz or .pkl) as a dict."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=True) as z:  # official files hold object arrays
                return {k: z[k] for k in z.files}
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
    except ModuleNotFoundError as exc:
        raise InputError(path, f"this model file needs the Python module '{exc.name}' to be unpickled "
                         "(the original SMPL .pkl files store chumpy arrays): install it, or use the "
                         ".npz release of the model", field="model_path") from None
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(path, f"cannot read body model file: {exc}", field="model_path") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a body model file", field="model_path", expected="a dict of arrays",
                         got=type(data).__name__)
    return data


def load_body_model(model_path: str | Path, model_type: str = "smplx", gender: str = "neutral",
                    num_betas: int = 10) -> torch.nn.Module:
    """Load the official SMPL or SMPL-X model with the ``smplx`` package.

    ``model_path`` is a model file (.npz or .pkl) or a folder with ``SMPLX_NEUTRAL.npz`` etc.
    (directly or under ``smplx/`` / ``smpl/``). SMPL-X is loaded with full hand rotations
    (no PCA) and a flat hand mean, so a zero pose is the flat-hand rest pose FineDance uses.
    Raises :class:`InputError` with download instructions when the file is missing.
    """
    import smplx  # imported here: only this optional path needs the package
    from smplx.utils import Struct

    model_type = str(model_type).lower()
    gender = str(gender).lower()
    if model_type not in MODEL_TYPES:
        raise InputError(None, "unknown body model type", field="model_type", expected=" | ".join(MODEL_TYPES),
                         got=repr(model_type))
    if gender not in GENDERS:
        raise InputError(None, "unknown gender", field="gender", expected=" | ".join(GENDERS), got=repr(gender))
    path = _find_model_file(Path(model_path).expanduser(), model_type, gender)
    data = _load_model_data(path)
    missing = [k for k in _REQUIRED_KEYS[model_type] if k not in data]
    if missing:
        raise InputError(path, f"not a {model_type.upper()} model file", field="model_path",
                         expected=f"keys {', '.join(_REQUIRED_KEYS[model_type])}", got=f"missing {missing}")
    # smplx prints shape-space warnings on stdout; stdout is reserved for --json output.
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if model_type == "smpl":
                model = smplx.SMPL(str(path), data_struct=Struct(**data), gender=gender, num_betas=num_betas)
            else:
                ext = "npz" if path.suffix == ".npz" else "pkl"
                model = smplx.SMPLX(str(path), ext=ext, gender=gender, num_betas=num_betas, use_pca=False,
                                    flat_hand_mean=True)
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise InputError(path, f"body model file has inconsistent arrays: {exc}", field="model_path") from None
    model.eval()
    model.dancesearch_model_type = model_type  # type: ignore[attr-defined]
    model.dancesearch_path = str(path)  # type: ignore[attr-defined]
    return model


def _model_type(model: torch.nn.Module) -> str:
    kind = getattr(model, "dancesearch_model_type", None)
    if kind is None:
        kind = "smplx" if model.J_regressor.shape[0] == 55 else "smpl"
    return kind


def body_forward(model: torch.nn.Module, trans: np.ndarray, poses: np.ndarray, betas: np.ndarray | None = None,
                 with_vertices: bool = False, chunk: int = 256) -> BodyOutput:
    """Evaluate ``model`` on every frame: model joints (T, J, 3) (+ vertices) in metres.

    ``poses`` are local axis-angle rotations: for SMPL-X (T, 55, 3) in model order, for SMPL
    (T, 24, 3); flat (T, J * 3) is accepted. ``betas`` (num_betas,) or (1, num_betas), shorter
    vectors are zero-padded. Frames are processed in chunks to bound memory.
    """
    from smplx.lbs import lbs

    n_joints = int(model.J_regressor.shape[0])
    aa = _frames(_array(poses, "poses", f"(T, {n_joints}, 3)"), "poses", n_joints, 3)
    tr = _trans(trans, len(aa))
    nb = int(model.shapedirs.shape[-1])
    b = np.zeros((1, nb))
    if betas is not None:
        bv = _array(betas, "betas", f"({nb},)").reshape(-1)
        if bv.size > nb and np.abs(bv[nb:]).max() > 0:
            raise InputError(None, "more shape coefficients than the model has", field="betas",
                             expected=f"at most {nb}", got=str(bv.size))
        b[0, : min(nb, bv.size)] = bv[:nb]
    dtype = model.shapedirs.dtype
    betas_t = torch.as_tensor(b, dtype=dtype)
    joints, verts = [], []
    with torch.no_grad():
        for s in range(0, len(aa), chunk):
            pose = torch.as_tensor(aa[s:s + chunk].reshape(-1, n_joints * 3), dtype=dtype)
            v, j = lbs(betas_t.expand(len(pose), -1), pose, model.v_template, model.shapedirs, model.posedirs,
                       model.J_regressor, model.parents, model.lbs_weights, pose2rot=True)
            t = torch.as_tensor(tr[s:s + chunk], dtype=dtype)[:, None, :]
            joints.append((j + t).numpy())
            if with_vertices:
                verts.append((v + t).numpy())
    return BodyOutput(np.concatenate(joints), np.concatenate(verts) if with_vertices else None,
                      np.asarray(model.faces, dtype=np.int64))


def record_from_smplx_params(model: torch.nn.Module, trans: np.ndarray, poses: np.ndarray,
                             betas: np.ndarray | None = None, fps: float = TARGET_FPS) -> MotionRecord:
    """A 30 fps :class:`MotionRecord` whose joints come from the official model.

    SMPL-X: ``poses`` (T, 52, 3) in FineDance order (body 22, left hand 15, right hand 15;
    jaw and eyes at rest) or (T, 55, 3) in model order; the record has the 52 FineDance joints.
    SMPL: ``poses`` (T, 24, 3) or (T, 72); the record has the 24 SMPL joints (names of
    :func:`encoders.motion.skeleton.smpl24`). ``trans`` (T, 3) is the model's ``transl``
    (metres; note the official pelvis sits at ``trans`` plus the rest pelvis position, not at
    ``trans``). Poses and translation are resampled to 30 fps first. ``rotations_6d`` holds the
    52 SMPL-X local rotations (fingers at rest for SMPL). For vertices use :func:`body_forward`.
    """
    fps = _check_fps(fps)
    kind = _model_type(model)
    if kind == "smplx":
        aa = _frames(_array(poses, "poses", "(T, 52, 3)"), "poses", (52, 55), 3)
        if aa.shape[1] == 55:
            aa = aa[:, SMPLX55_TO_52]
        rot52 = resample_rotations(axis_angle_to_matrix(aa), fps, TARGET_FPS)
        tr = resample_linear(_trans(trans, len(aa)), fps, TARGET_FPS)
        full = np.zeros((len(rot52), 55, 3))
        full[:, SMPLX55_TO_52] = matrix_to_axis_angle(rot52)
        out = body_forward(model, tr, full, betas)
        positions, names = out.joints[:, SMPLX55_TO_52], list(smplx52().names)
    else:
        aa = _frames(_array(poses, "poses", "(T, 24, 3)"), "poses", 24, 3)
        rot24 = resample_rotations(axis_angle_to_matrix(aa), fps, TARGET_FPS)
        tr = resample_linear(_trans(trans, len(aa)), fps, TARGET_FPS)
        out = body_forward(model, tr, matrix_to_axis_angle(rot24), betas)
        positions, names = out.joints[:, :24], list(smpl24().names)
        rot52 = smpl24_to_smplx52_rotations(rot24)
    return MotionRecord(TARGET_FPS, tr, positions, names, matrix_to_rot6d(rot52),
                        {"source_format": f"{kind}_model", "source_fps": fps,
                         "body_model": getattr(model, "dancesearch_path", None)})
