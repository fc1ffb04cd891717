"""Compare the project's generation metrics with the reference implementations on identical joint arrays.

Issue 13's acceptance criterion: "metrics reproduce the reference implementations' numbers on the same joint
arrays; state the comparison you ran and the largest difference". This script runs the references' own
code (read from checkouts given on the command line, never copied into the project) and ours on the same
inputs, and writes ``docs/results/generation_metrics_reference.{json,md}``.

    mkdir -p /tmp/ref/bailando /tmp/ref/lodge /tmp/ref/popdg
    git -C <Bailando clone> archive HEAD utils | tar -x -C /tmp/ref/bailando
    git -C <LODGE clone> archive HEAD metric | tar -x -C /tmp/ref/lodge
    git -C <POPDG clone> archive HEAD eval | tar -x -C /tmp/ref/popdg
    .venv/bin/python bench/compare_metrics_reference.py --bailando /tmp/ref/bailando --lodge /tmp/ref/lodge \
        --popdg /tmp/ref/popdg [--shared-data ../shared/data] [--quick]

How the references are run: their modules import things a metric does not need (torch SMPL-X forward
kinematics, librosa, absl, vedo, matplotlib) and some run code at import (POPDG's beat script walks
folders), so each file is parsed and only its top-level functions, classes and literal constants are
executed, in a namespace that provides what they use (numpy, scipy, their sibling ``features.utils``).
Their bodies run unchanged. Three substitutions, all outside what the metrics compute:
- LODGE's ``do_smplxfk`` (SMPL-X forward kinematics from 6D rotations) returns the test joint arrays, stored
  in the first 72 columns of the (T, 139) motion files LODGE reads;
- LODGE's ``get_music_beat_fromwav`` (librosa beat tracking) returns the test music beats (30-fps frames);
- ``scipy.linalg.sqrtm(..., disp=False)`` goes through a shim when the installed SciPy has dropped ``disp``.
The references' end-to-end folder pipelines are used where they exist (Bailando / LODGE
``calc_and_save_feats`` + ``quantized_metrics`` + ``calc_ba_score`` on temporary folders of the files they
expect), plus per-sample calls of their feature, beat and FID functions.

Inputs: deterministic "dances" (forward kinematics of the SMPL 24-joint skeleton with beat-synchronised
joint oscillations and random drift; a non-rigid copy with 3 mm position noise; SMPL-X 52-joint dances for
the finger features) and, when ``--shared-data`` has them, the 7 real AIST++ joint slices (150 x 24 x 3,
z-up, converted to +y up).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import io
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import scipy
import scipy.linalg
import scipy.signal
from scipy.ndimage import gaussian_filter
from scipy.signal import argrelextrema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402
from encoders.motion.convert import Z_UP_TO_Y_UP  # noqa: E402
from encoders.motion.kinematics import forward_kinematics, resample_linear  # noqa: E402
from encoders.motion.rotations import axis_angle_to_matrix  # noqa: E402
from encoders.motion.skeleton import smpl24, smplx52  # noqa: E402
from generation.metrics import DanceSample  # noqa: E402
from generation.metrics.beats import POPDG_BEATS, sample_beat_alignment  # noqa: E402
from generation.metrics.fid import (diversity, frechet_distance_detail, normalise_by_reference,  # noqa: E402
                                    score_feature_sets)
from generation.metrics.geometric import geometric_features  # noqa: E402
from generation.metrics.kinetic import kinetic_features  # noqa: E402
from generation.metrics.protocols import (BAILANDO_AIST, LODGE_BEAT_JOINTS, LODGE_FINEDANCE,  # noqa: E402
                                          SMPL_24)

REFERENCE_REPOS = {"bailando": "lisiyao21/Bailando", "lodge": "li-ronghui/LODGE", "popdg": "Luke-Luo1/POPDG"}


# ------------------------------------------------------------------------------------------------ loading
def load_reference(path: Path, inject: dict[str, Any]) -> dict[str, Any]:
    """Execute the top-level functions, classes and literal assignments of one reference file in a namespace."""
    tree = ast.parse(path.read_text(), filename=str(path))
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            keep.append(node)
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            keep.append(node)
    ns: dict[str, Any] = {"__name__": f"reference:{path}", "__file__": str(path)}
    ns.update(inject)
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), ns)
    return ns


class LinalgShim:
    """``scipy.linalg`` whose ``sqrtm`` still accepts the reference's ``disp=False`` (removed in SciPy 1.18)."""

    HAS_DISP = "disp" in inspect.signature(scipy.linalg.sqrtm).parameters

    def __getattr__(self, name: str) -> Any:
        return getattr(scipy.linalg, name)

    @classmethod
    def sqrtm(cls, a, disp=True, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cls.HAS_DISP:
                return scipy.linalg.sqrtm(a, disp=disp, **kw)
            res = scipy.linalg.sqrtm(a, **kw)
        if disp is False:
            err = np.linalg.norm(res @ res - a, "fro") ** 2 / np.linalg.norm(a, "fro")
            return res, err
        return res


def _features_ns(features_dir: Path) -> dict[str, Any]:
    utils = load_reference(features_dir / "utils.py", {"np": np})
    futils = type("feat_utils", (), {k: staticmethod(v) for k, v in utils.items() if callable(v)})
    kin = load_reference(features_dir / "kinetic.py", {"np": np, "feat_utils": futils})
    manual_file = features_dir / ("manual_new.py" if (features_dir / "manual_new.py").exists() else "manual.py")
    man = load_reference(manual_file, {"np": np, "feat_utils": futils})
    return {"extract_kinetic_features": kin["extract_kinetic_features"],
            "extract_manual_features": man["extract_manual_features"]}


def _fake_fk(data, model):
    """LODGE's do_smplxfk stand-in: the test joints stored in the first 72 columns."""
    import torch

    return data[:, :72].reshape(data.shape[0], 24, 3).to(torch.float64)


class References:
    def __init__(self, bailando: Path | None, lodge: Path | None, popdg: Path | None):
        self.bailando = self.lodge = self.popdg = None
        if bailando:
            feats = _features_ns(bailando / "utils" / "features")
            self.bailando = {
                "features": feats,
                "metrics": load_reference(bailando / "utils" / "metrics_new.py", {
                    "np": np, "os": os, "linalg": LinalgShim(), **feats}),
                "beats": load_reference(bailando / "utils" / "beat_align_score.py", {
                    "np": np, "os": os, "json": json, "G": gaussian_filter, "argrelextrema": argrelextrema,
                    **feats}),
            }
        if lodge:
            import torch

            feats = _features_ns(lodge / "metric" / "features")
            common = {"np": np, "os": os, "torch": torch, "do_smplxfk": _fake_fk, "smplx_model": None,
                      "device": "cpu", "tqdm": lambda x: x, **feats}
            self.lodge = {
                "features": feats,
                "metrics": load_reference(lodge / "metric" / "metrics_finedance.py",
                                          {**common, "linalg": LinalgShim()}),
                "beats": load_reference(lodge / "metric" / "beat_align_score.py", {
                    **common, "json": json, "pickle": __import__("pickle"), "G": gaussian_filter,
                    "argrelextrema": argrelextrema}),
            }
        if popdg:
            feats = _features_ns(popdg / "eval" / "features")
            self.popdg = {
                "features": feats,
                "beats": load_reference(popdg / "eval" / "calculate_beat_scores.py", {
                    "np": np, "os": os, "scisignal": scipy.signal}),
                "scores": load_reference(popdg / "eval" / "calculate_scores.py", {
                    "np": np, "linalg": LinalgShim(), **feats}),
            }


def quiet(fn, *args, **kw):
    """Call a reference function with its prints swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# ------------------------------------------------------------------------------------------------ data
def fk_dance(rng: np.random.Generator, frames: int, skeleton, amp: float, bpm: float, fps: float = 30.0,
             face: np.ndarray | None = None) -> np.ndarray:
    """(T, J, 3) positions of a rigid skeleton: beat-synchronised joint oscillations, drift, a bouncing root.

    ``face``: (K, 3) rest offsets from the head of extra joints carried rigidly by the head (SMPL-X jaw and
    left eye), appended as joints J .. J+K-1.
    """
    j = skeleton.num_joints
    t = np.arange(frames) / fps
    f = bpm / 60.0
    phase = rng.uniform(0, 2 * np.pi, (1, j, 3))
    drift = np.cumsum(rng.normal(0, 0.02, (frames, j, 3)), axis=0)
    drift = gaussian_filter(drift, (6, 0, 0))
    mult = rng.choice([0.5, 1.0], (1, j, 3))                 # some joints swing at half the beat rate
    aa = (amp * rng.uniform(0.3, 1.0, (1, j, 3)) * np.sin(2 * np.pi * f * t[:, None, None] * mult + phase)
          + 0.5 * amp * np.tanh(drift))
    aa[:, 0] *= 0.3
    trans = np.zeros((frames, 3))
    trans[:, 0] = np.cumsum(rng.normal(0, 0.004, frames))
    trans[:, 2] = np.cumsum(rng.normal(0, 0.004, frames))
    trans[:, 1] = 0.95 - 0.04 * np.abs(np.cos(np.pi * f * t))
    rot = np.asarray(axis_angle_to_matrix(aa), dtype=np.float64)
    pos = np.asarray(forward_kinematics(rot, trans, skeleton), dtype=np.float64)
    if face is None:
        return pos
    glob: list[np.ndarray] = []
    for jj, parent in enumerate(skeleton.parents):
        glob.append(rot[:, jj] if parent < 0 else glob[parent] @ rot[:, jj])
    head = skeleton.index("head")
    extra = pos[:, head][:, None] + np.einsum("tij,kj->tki", glob[head], face)
    return np.concatenate([pos, extra], axis=1)


def music_beats_60(rng: np.random.Generator, frames30: int, bpm: float, extra_s: float = 1.0) -> np.ndarray:
    """Beat times (s) on even 60-fps frames (so they are whole frames at 30 and 60 fps), running past the motion."""
    period = 60.0 / bpm
    t = np.arange(rng.uniform(0, period), frames30 / 30.0 + extra_s, period) + rng.normal(0, 0.01, 1)
    f60 = np.unique(2 * np.round(np.clip(t, 0, None) * 30.0))
    return f60 / 60.0


FACE_JOINTS = ("jaw", "left_eye")


def face_offsets(shared: Path | None) -> np.ndarray:
    """Rest offsets of the SMPL-X jaw and left eye from the head (FineDance's neutral SMPL-X joints, 22 / 23 vs 15);
    without the file, small plausible offsets."""
    path = None if shared is None else shared / "skeleton" / "finedance_smplx_neu_J_1.npy"
    if path is not None and path.is_file():
        j = np.load(path).reshape(-1, 3)
        return np.stack([j[22] - j[15], j[23] - j[15]])
    return np.array([[0.0, -0.03, 0.06], [0.03, 0.04, 0.08]])


def build_sets(rng: np.random.Generator, shared: Path | None, quick: bool) -> dict[str, list[DanceSample]]:
    """Samples with the 24 SMPL joints plus ``jaw`` and ``left_eye`` (what LODGE's BAS reads as joints 22-23)."""
    sk = smpl24()
    names = sk.names + FACE_JOINTS
    face = face_offsets(shared)
    scale = 0.35 if quick else 1.0
    sets: dict[str, list[DanceSample]] = {}

    def make(prefix: str, n: int, amp: float, lo: int, hi: int, long: int = 0) -> list[DanceSample]:
        out = []
        for i in range(n):
            frames = long if (long and i == 0) else int(rng.integers(int(lo * scale), int(hi * scale)))
            bpm = float(rng.uniform(90, 130))
            pos = fk_dance(rng, frames, sk, amp, bpm, face=face)
            out.append(DanceSample(f"{prefix}{i:02d}", pos, 30.0, names, music_beats_60(rng, frames, bpm)))
        return out

    sets["gt"] = make("gt", 8 if quick else 16, 0.25, 240, 540, long=0 if quick else 1250)
    sets["pred"] = make("pred", 6 if quick else 12, 0.35, 240, 540)
    sets["noisy"] = [s.with_positions(s.positions + rng.normal(0, 0.003, s.positions.shape))
                     for s in make("noisy", 4 if quick else 6, 0.3, 240, 480)]
    for i, s in enumerate(sets["noisy"]):
        s.name = f"noisy{i:02d}"
    real_dir = None if shared is None else shared / "aistpp_joint_slices"
    if real_dir is not None and real_dir.is_dir():
        real = []
        for p in sorted(real_dir.glob("*.csv")):
            arr = np.loadtxt(p, delimiter=",", dtype=np.float64).reshape(-1, 24, 3) @ Z_UP_TO_Y_UP.T
            head = arr[:, [sk.index("head")] * 2]          # no head rotation in a joint CSV: face joints = head
            arr = np.concatenate([arr, head], axis=1)
            real.append(DanceSample(f"real_{p.stem[:40]}", arr, 30.0, names, music_beats_60(rng, len(arr), 120.0)))
        sets["real"] = real
    return sets


# ------------------------------------------------------------------------------------------------ comparison
class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, what: str, ours: Iterable[float] | float, ref: Iterable[float] | float, **extra) -> dict:
        o = np.atleast_1d(np.asarray(ours, dtype=np.float64)).ravel()
        r = np.atleast_1d(np.asarray(ref, dtype=np.complex128)).ravel()
        r_imag = float(np.abs(r.imag).max()) if len(r) else 0.0
        r = r.real
        if o.shape != r.shape:
            raise AssertionError(f"{name}: shapes differ {o.shape} vs {r.shape}")
        diff = np.abs(o - r)
        nz = np.abs(r) > 0
        rel = diff[nz] / np.abs(r[nz])
        zero_mismatch = int((diff[~nz] > 0).sum())
        row = {"name": name, "what": what, "values": int(len(o)), "max_abs_diff": float(diff.max()) if len(o) else 0.0,
               "max_rel_diff": float(rel.max()) if len(rel) else 0.0, "ref_zero_but_ours_not": zero_mismatch,
               "ref_max_abs": float(np.abs(r).max()) if len(r) else 0.0, "ref_imag_max": r_imag, **extra}
        if len(o) <= 4:
            row["ours"] = [float(x) for x in o]
            row["reference"] = [float(x) for x in r]
        self.rows.append(row)
        print(f"  {name:58s} n={len(o):5d} max|d|={row['max_abs_diff']:.3g} max rel={row['max_rel_diff']:.3g}",
              file=sys.stderr)
        return row


def _root60(sample: DanceSample) -> np.ndarray:
    """What bailando-aist feeds: 24 joints resampled to 60 fps (before truncation / root handling)."""
    return resample_linear(sample.joints(SMPL_24), sample.fps, 60.0)


def compare_features(refs: References, sets: dict[str, list[DanceSample]], table: Table, quick: bool) -> None:
    allsamples = [s for v in sets.values() for s in v]
    if refs.bailando:
        ext_k = refs.bailando["features"]["extract_kinetic_features"]
        ext_m = refs.bailando["features"]["extract_manual_features"]
        ours_k, ref_k, ours_m, ref_m = [], [], [], []
        for s in allsamples:
            pos = BAILANDO_AIST.feature_positions(s)            # 60 fps, <= 1200 frames, 24 joints, root at 0
            ours_k.append(kinetic_features(pos))
            ref_k.append(ext_k(pos))
            ours_m.append(geometric_features(pos, SMPL_24))
            ref_m.append(quiet(ext_m, pos))
        table.add("bailando.kinetic_features (24 joints, 60 fps)", "utils/features/kinetic.py", ours_k, ref_k,
                  samples=len(allsamples))
        table.add("bailando.manual_features (24 joints, 60 fps)", "utils/features/manual_new.py", ours_m, ref_m,
                  samples=len(allsamples))
    if refs.lodge:
        ext_k = refs.lodge["features"]["extract_kinetic_features"]
        ext_m = refs.lodge["features"]["extract_manual_features"]
        ours_k, ref_k, ours_m, ref_m = [], [], [], []
        for s in allsamples:
            pos = LODGE_FINEDANCE.feature_positions(s)          # 30 fps, <= 1024 frames, 22 joints, root-relative
            ours_k.append(kinetic_features(pos))
            ref_k.append(ext_k(pos))
            ours_m.append(geometric_features(pos, LODGE_FINEDANCE.joints))
            ref_m.append(quiet(ext_m, pos))
        table.add("lodge.kinetic_features (22 joints, 30 fps, root-relative)", "metric/features/kinetic.py",
                  ours_k, ref_k, samples=len(allsamples))
        table.add("lodge.manual_features (22 joints, 30 fps, root-relative)", "metric/features/manual_new.py",
                  ours_m, ref_m, samples=len(allsamples))
        # The extractor on finger joints (the project's hand features; no reference metric exists for hands).
        rng = np.random.default_rng(52)
        sk = smplx52()
        ours_h, ref_h = [], []
        for i in range(2 if quick else 4):
            pos = fk_dance(rng, 150, sk, 0.3, 110.0)
            s = DanceSample(f"hands{i}", pos, 30.0, sk.names)
            hp = LODGE_FINEDANCE.hand_positions(s)
            ours_h.append(kinetic_features(hp))
            ref_h.append(ext_k(hp))
        table.add("kinetic_features of 30 wrist-relative finger joints", "metric/features/kinetic.py",
                  ours_h, ref_h, samples=len(ours_h))


def _write_bailando_folder(root: Path, samples: list[DanceSample], music_dir: Path) -> None:
    root.mkdir(parents=True)
    for s in samples:
        pos60 = _root60(s)
        np.save(root / f"{s.name}.npy", {"pred_position": pos60.reshape(len(pos60), 72)}, allow_pickle=True)
        beats = np.unique(np.round(s.music_beats * 60.0)).astype(int)
        length = max(len(pos60), beats.max() + 1)
        music = np.zeros((length, 54))
        music[beats, 53] = 1
        (music_dir / f"{s.name}.json").write_text(json.dumps({"music_array": music.tolist()}))


def _write_lodge_folder(root: Path, samples: list[DanceSample]) -> dict[str, np.ndarray]:
    """(T, 139) files whose first 72 columns are the 24 test joints at 30 fps; names start with a test-list id."""
    root.mkdir(parents=True)
    beats = {}
    for s in samples:
        pos = resample_linear(s.joints(LODGE_BEAT_JOINTS), s.fps, 30.0)   # SMPL-X joints 0-23
        data = np.zeros((len(pos), 139))
        data[:, :72] = pos.reshape(len(pos), 72)
        stem = f"063_{s.name}"
        np.save(root / f"{stem}.npy", data)
        beats[stem] = np.unique(np.round(s.music_beats * 30.0)).astype(int)
    return beats


def compare_pipelines(refs: References, sets: dict[str, list[DanceSample]], table: Table, tmp: Path) -> None:
    pairs = [("pred", "gt"), ("noisy", "gt")] + ([("real", "gt")] if "real" in sets else [])
    if refs.bailando:
        music_dir = tmp / "bailando_music"
        music_dir.mkdir()
        ns_m, ns_b = refs.bailando["metrics"], refs.bailando["beats"]
        for name, samples in sets.items():
            _write_bailando_folder(tmp / "bailando" / name, samples, music_dir)
            quiet(ns_m["calc_and_save_feats"], str(tmp / "bailando" / name))
        ns_b["music_root"] = str(music_dir)
        for p, g in pairs:
            ref = quiet(ns_m["quantized_metrics"], str(tmp / "bailando" / p), str(tmp / "bailando" / g))
            ours = _ours_metrics(sets[p], sets[g], BAILANDO_AIST)
            for key, ok in (("fid_k", "fid_k"), ("fid_m", "fid_g"), ("div_k", "div_k"), ("div_m", "div_g"),
                            ("div_k_gt", "div_k_gt"), ("div_m_gt", "div_g_gt")):
                table.add(f"bailando-aist {key} ({p} vs {g})", "utils/metrics_new.py quantized_metrics",
                          ours[ok], ref[key], pred=len(sets[p]), gt=len(sets[g]))
        # BAS: per sample with the reference's calc_db / get_mb / BA, and its folder-level calc_ba_score.
        for name, samples in sets.items():
            ours_b = [BAILANDO_AIST.beat_alignment(s) for s in samples]
            ref_b = []
            for s in samples:
                pos60 = _root60(s)
                db, length = ns_b["calc_db"](pos60.reshape(len(pos60), 72))
                mb = ns_b["get_mb"](f"{s.name}.json", length)
                ref_b.append(ns_b["BA"](mb, db))
            table.add(f"bailando BAS per sample ({name})", "utils/beat_align_score.py calc_db + get_mb + BA",
                      ours_b, ref_b, samples=len(samples))
            ref_mean = quiet(ns_b["calc_ba_score"], str(tmp / "bailando" / name))
            table.add(f"bailando BAS mean ({name})", "utils/beat_align_score.py calc_ba_score",
                      float(np.mean(ours_b)), ref_mean)
    if refs.lodge:
        ns_m, ns_b = refs.lodge["metrics"], refs.lodge["beats"]
        beats: dict[str, np.ndarray] = {}
        for name, samples in sets.items():
            beats.update(_write_lodge_folder(tmp / "lodge" / name, samples))
            quiet(ns_m["calc_and_save_feats"], str(tmp / "lodge" / name))
        ns_b["get_music_beat_fromwav"] = lambda fpath, length: beats[Path(fpath).stem]
        for p, g in pairs:
            ref = quiet(ns_m["quantized_metrics"], str(tmp / "lodge" / p), str(tmp / "lodge" / g))
            ours = _ours_metrics(sets[p], sets[g], LODGE_FINEDANCE)
            for key, ok in (("fid_k", "fid_k"), ("fid_m", "fid_g"), ("div_k", "div_k"), ("div_m", "div_g"),
                            ("div_k_gt", "div_k_gt"), ("div_m_gt", "div_g_gt")):
                table.add(f"lodge-finedance {key} ({p} vs {g})", "metric/metrics_finedance.py quantized_metrics",
                          ours[ok], ref[key], pred=len(sets[p]), gt=len(sets[g]))
        for name, samples in sets.items():
            ours_b = [LODGE_FINEDANCE.beat_alignment(s) for s in samples]
            ref_mean = quiet(ns_b["calc_ba_score"], str(tmp / "lodge" / name), str(tmp / "lodge_music"))
            table.add(f"lodge BAS mean, 24 joints as LODGE ({name})",
                      "metric/beat_align_score.py calc_ba_score", float(np.mean(ours_b)), ref_mean,
                      samples=len(samples))
            body = [s.with_positions(s.joints(SMPL_24), joint_names=SMPL_24) for s in samples]
            ours_head = [LODGE_FINEDANCE.beat_alignment(s) for s in body]
            table.add(f"lodge BAS mean, head as jaw / eye stand-in ({name})",
                      "deviation: records without jaw / eye joints (the project's)",
                      float(np.mean(ours_head)), ref_mean,
                      samples=len(samples), informational=True)
    if refs.popdg:
        ns = refs.popdg["beats"]
        for name, samples in sets.items():
            ours_b, ref_b = [], []
            for s in samples:
                beats30 = np.unique(np.round(s.music_beats * 30.0)).astype(int)
                onehot = np.zeros((max(beats30.max() + 1, s.num_frames), 35))
                onehot[beats30, -1] = 1
                kp = s.joints(SMPL_24)[:300]
                ref_b.append(ns["alignment_score"](onehot[:, -1], ns["motion_peak_onehot"](kp), sigma=3))
                ours_b.append(sample_beat_alignment(s.joints(SMPL_24), 30.0, s.music_beats, POPDG_BEATS))
            table.add(f"popdg BAS per sample, motion-beat direction ({name})",
                      "eval/calculate_beat_scores.py motion_peak_onehot + alignment_score", ours_b, ref_b,
                      samples=len(samples))


def _ours_metrics(pred: list[DanceSample], gt: list[DanceSample], protocol) -> dict[str, float]:
    out = {}
    for kind, suffix in (("kinetic", "k"), ("geometric", "g")):
        p = np.stack([protocol.features(s)[kind] for s in pred])
        g = np.stack([protocol.features(s)[kind] for s in gt])
        sc = score_feature_sets(p, g)
        out[f"fid_{suffix}"], out[f"div_{suffix}"], out[f"div_{suffix}_gt"] = sc.fid, sc.div, sc.div_gt
    return out


def compare_fid_direct(refs: References, table: Table) -> None:
    """FID and Div on synthetic feature sets, including fewer samples than dimensions (complex sqrtm)."""
    rng = np.random.default_rng(7)
    cases = [("N 10 vs 12, D 72 (singular, complex sqrtm)", 10, 12, 72),
             ("N 300 vs 400, D 32", 300, 400, 32), ("N 40 vs 60, D 66", 40, 60, 66)]
    for label, n_p, n_g, d in cases:
        mix = rng.normal(size=(d, d)) / np.sqrt(d)
        gt = (rng.gamma(2.0, 1.0, (n_g, d)) @ mix).astype(np.float32)
        pred = (rng.gamma(2.0, 1.3, (n_p, d)) @ mix + 0.3).astype(np.float32)
        ours = score_feature_sets(pred, gt)
        g_n, p_n = normalise_by_reference(gt, pred)
        detail = frechet_distance_detail(p_n, g_n)
        if refs.bailando:
            ns = refs.bailando["metrics"]
            rg, rp = ns["normalize"](gt, pred)
            ref_fid = quiet(ns["calc_fid"], rp, rg)
            table.add(f"bailando calc_fid {label}", "utils/metrics_new.py normalize + calc_fid", ours.fid, ref_fid,
                      ours_imag=detail.imag)
            table.add(f"bailando calculate_avg_distance {label}", "utils/metrics_new.py calculate_avg_distance",
                      [ours.div, ours.div_gt], [ns["calculate_avg_distance"](rp), ns["calculate_avg_distance"](rg)])
        if refs.popdg:
            ns = refs.popdg["scores"]
            try:
                ref = quiet(ns["calculate_frechet_feature_distance"], list(gt), list(pred))
            except ValueError as exc:    # POPDG raises on a large imaginary component instead of keeping it
                table.rows.append({"name": f"popdg calculate_frechet_feature_distance {label}",
                                   "what": "eval/calculate_scores.py", "reference_error": str(exc)})
                continue
            table.add(f"popdg calculate_frechet_feature_distance {label}", "eval/calculate_scores.py (FID, Div)",
                      [ours.fid, ours.div], [ref[0], ref[1]])
    # Div in float64 vs the reference's float32 running sum, on many samples.
    x = rng.normal(size=(400, 72)).astype(np.float32)
    if refs.bailando:
        table.add("bailando calculate_avg_distance N 400 (float32 running sum)", "utils/metrics_new.py",
                  diversity(x), refs.bailando["metrics"]["calculate_avg_distance"](x))


def write_reports(table: Table, out_json: Path, meta: dict[str, Any]) -> None:
    strict = [r for r in table.rows if "max_rel_diff" in r and not r.get("informational")]
    largest_rel = max(strict, key=lambda r: r["max_rel_diff"])
    largest_abs = max(strict, key=lambda r: r["max_abs_diff"])
    payload = {**meta, "comparisons": table.rows,
               "largest_relative_difference": {"name": largest_rel["name"], "value": largest_rel["max_rel_diff"]},
               "largest_absolute_difference": {"name": largest_abs["name"], "value": largest_abs["max_abs_diff"],
                                               "reference_magnitude": largest_abs["ref_max_abs"]}}
    atomic_write_json(out_json, payload)
    lines = ["# Generation metrics vs the reference implementations", "",
             f"Generated by `bench/compare_metrics_reference.py` ({meta['generated']}, {meta['runtime_s']:.0f} s). "
             "Each row runs the reference's own function (from the checkouts below) and ours on identical joint "
             "arrays or feature sets; differences are over every value compared (features: every entry of every "
             "sample). Relative differences are taken where the reference value is non-zero; "
             "`ref 0, ours not` counts entries where only ours is non-zero.", "",
             "References: " + ", ".join(f"{REFERENCE_REPOS[k]} `{v or 'unknown commit'}`"
                                        for k, v in meta["reference_commits"].items()) + ".",
             f"Environment: numpy {meta['environment']['numpy']}, scipy {meta['environment']['scipy']}, "
             f"python {meta['environment']['python']}.",
             f"Inputs: {meta['inputs']}.", "",
             f"**Largest relative difference: {largest_rel['max_rel_diff']:.3g}** ({largest_rel['name']}); "
             f"largest absolute difference {largest_abs['max_abs_diff']:.3g} ({largest_abs['name']}, reference "
             f"values up to {largest_abs['ref_max_abs']:.3g}).", "",
             "| comparison | reference code | values | max abs diff | max rel diff | ref 0, ours not | ref magnitude |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in table.rows:
        if "reference_error" in r:
            lines.append(f"| {r['name']} | {r['what']} | - | reference raised: {r['reference_error'][:60]} | | | |")
            continue
        tag = " (informational)" if r.get("informational") else ""
        lines.append(f"| {r['name']}{tag} | {r['what']} | {r['values']} | {r['max_abs_diff']:.3g} | "
                     f"{r['max_rel_diff']:.3g} | {r['ref_zero_but_ours_not']} | {r['ref_max_abs']:.3g} |")
    lines += ["", "Notes:"] + [f"- {n}" for n in meta["notes"]]
    atomic_write_text(out_json.with_suffix(".md"), "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bailando", type=Path, default=None, help="checkout of lisiyao21/Bailando (needs utils/)")
    ap.add_argument("--lodge", type=Path, default=None, help="checkout of li-ronghui/LODGE (needs metric/)")
    ap.add_argument("--popdg", type=Path, default=None, help="checkout of Luke-Luo1/POPDG (needs eval/)")
    ap.add_argument("--commits", nargs="*", default=[], metavar="NAME=SHA",
                    help="record the checkouts' commits, e.g. bailando=cc90b98...")
    ap.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "generation_metrics_reference.json")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter dances (a smoke run)")
    args = ap.parse_args(argv)
    if not (args.bailando or args.lodge or args.popdg):
        ap.error("give at least one of --bailando / --lodge / --popdg")
    t0 = time.time()
    refs = References(args.bailando, args.lodge, args.popdg)
    rng = np.random.default_rng(13)
    shared = args.shared_data if args.shared_data.is_dir() else None
    sets = build_sets(rng, shared, args.quick)
    desc = ", ".join(f"{k}: {len(v)} x {min(s.num_frames for s in v)}-{max(s.num_frames for s in v)} frames at 30 fps"
                     for k, v in sets.items())
    print(f"inputs: {desc}", file=sys.stderr)
    table = Table()
    compare_features(refs, sets, table, args.quick)
    with tempfile.TemporaryDirectory(prefix="metrics_ref_") as tmp:
        compare_pipelines(refs, sets, table, Path(tmp))
    compare_fid_direct(refs, table)
    commits = {k: None for k, v in (("bailando", args.bailando), ("lodge", args.lodge), ("popdg", args.popdg)) if v}
    for item in args.commits:
        k, _, v = item.partition("=")
        if k in commits:
            commits[k] = v
    meta = {
        "generated": time.strftime("%Y-%m-%d"), "runtime_s": time.time() - t0, "quick": args.quick,
        "reference_commits": commits,
        "environment": {"numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()},
        "inputs": desc + " (gt, pred: SMPL-24 forward kinematics with beat-synchronised oscillations; noisy: "
                         "the same plus 3 mm position noise, non-rigid; real: AIST++ joint slices, z-up -> y-up); "
                         "bailando-aist resamples them to 60 fps",
        "notes": [
            "LODGE's do_smplxfk and librosa beat tracking are replaced by the test arrays and beats (outside the "
            "metrics); everything else is the references' code. LODGE's joints 22-23 (SMPL-X jaw, left eye) are "
            "carried rigidly by the head of the forward-kinematics dances (offsets from FineDance's SMPL-X rest "
            "joints) and are copies of the head joint in the real slices.",
            "The music beats are whole 60-fps (and 30-fps) frames, so rounding beat times to frames is exact.",
            "FID values on the 'noisy' rows are huge (1e15+) in both implementations: the rigid-bone geometric "
            "feature is constant (0) in the rigid ground truth, so its std is 1e-10 after normalisation.",
            "Div: the reference sums pair distances one by one in float32, ours in float64; the float32 row "
            "shows the size of that rounding.",
            "Rows marked informational are not expected to agree: they quantify a documented deviation.",
        ],
    }
    write_reports(table, args.out, meta)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
