"""All generation metrics of a prediction set against a ground-truth set under one protocol.

:func:`evaluate_generation` is the one entry point the CLI (``dancesearch eval generation``) and the
benchmarks call. It checks every sample first (errors name the sequence and its set), computes the
protocol's features per sample, then FID / Div on ground-truth-normalised features (body kinetic,
body geometric, and hands when both sets have fingers), BAS of both sets, the physical metrics (PFC, PBC,
foot skating, floor penetration, jerk) of both sets, and returns plain JSON values.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from encoders.errors import InputError

from .fid import score_feature_sets
from .protocols import FINGER_JOINTS, Protocol, get_protocol
from .sample import DanceSample

METRIC_KEYS = ("fid_k", "fid_g", "div_k", "div_g", "bas", "fid_hand", "div_hand")


def _check_set(samples: Sequence[DanceSample], role: str, protocol: Protocol) -> None:
    if samples is None or len(samples) == 0:
        raise InputError(role, f"no {role} sequences to evaluate", field=role, expected=">= 2 sequences", got="0")
    for s in samples:
        if not isinstance(s, DanceSample):
            raise InputError(role, f"{role} items must be DanceSample", field=role, expected="DanceSample",
                             got=type(s).__name__)
    if len(samples) < 2:
        raise InputError(samples[0].name, f"FID and Div need at least 2 {role} sequences", field=role,
                         expected=">= 2 sequences", got=str(len(samples)))
    for s in samples:
        protocol.check(s, role)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_generation(pred: Sequence[DanceSample], gt: Sequence[DanceSample],
                        protocol: str | Protocol = "dancesearch", *, per_sample: bool = True,
                        return_features: bool = False, with_physical: bool = True) -> dict[str, Any]:
    """FID_k / FID_g / Div_k / Div_g / BAS (+ hand FID / Div) of ``pred`` against ``gt`` under ``protocol``.

    Returns ``{"protocol": name, "settings": {...}, "counts": {...}, "metrics": {...},
    "gt_reference": {"div_k", "div_g", "bas", "div_hand"}, "details": {...}, "notes": [...],
    "physical": {...}, "per_sample": [...]}``. Metric values are floats, or None when not measurable
    (BAS without music beats, hands when a set has no fingers; the reason is in ``notes``). With
    ``return_features`` also ``"features": {"pred": [...], "gt": [...]}``, the protocol's per-sample feature
    dicts, so a caller that resamples (paired bootstrap) does not compute them again. ``with_physical=False``
    leaves out the physical metrics (``"physical": {}``), for a caller that computes them per window itself.
    """
    proto = get_protocol(protocol)
    _check_set(pred, "pred", proto)
    _check_set(gt, "gt", proto)
    notes: list[str] = []

    hands = proto.hands and all(s.has_joints(FINGER_JOINTS) for s in list(pred) + list(gt))
    if proto.hands and not hands:
        lacking = next(s for s in list(pred) + list(gt) if not s.has_joints(FINGER_JOINTS))
        role = "pred" if any(lacking is s for s in pred) else "gt"
        notes.append(f"hand FID / Div not measured: {role} sample {lacking.name!r} has no finger joints")

    feats = {"pred": [proto.features(s, hands) for s in pred], "gt": [proto.features(s, hands) for s in gt]}
    metrics: dict[str, float | None] = {k: None for k in METRIC_KEYS}
    gt_ref: dict[str, float | None] = {"div_k": None, "div_g": None, "bas": None, "div_hand": None}
    details: dict[str, Any] = {}
    for kind, suffix in (("kinetic", "k"), ("geometric", "g"), ("hand", "hand")):
        if kind == "hand" and not hands:
            continue
        p = np.stack([f[kind] for f in feats["pred"]])
        g = np.stack([f[kind] for f in feats["gt"]])
        sc = score_feature_sets(p, g, normalise=proto.normalise, drop_constant_below=proto.drop_constant_gt_dims)
        if sc.dropped_dims:
            details[f"{kind}_dropped_constant_gt_dims"] = sc.dropped_dims
        metrics[f"fid_{suffix}"] = _finite(sc.fid)
        metrics[f"div_{suffix}"] = _finite(sc.div)
        gt_ref[f"div_{suffix}"] = _finite(sc.div_gt)
        details[f"fid_{suffix}_imag"] = _finite(sc.fid_imag)
        details[f"fid_{suffix}_offset_added"] = sc.fid_offset_added
        details[f"{kind}_dims"] = int(p.shape[1])
        if not math.isfinite(sc.fid):
            notes.append(f"fid_{suffix} is not finite ({sc.fid})")
        if len(p) < p.shape[1] or len(g) < g.shape[1]:
            details.setdefault("fewer_samples_than_dims", []).append(kind)
        const = int((g.std(axis=0) == 0).sum())
        if const:
            details[f"{kind}_constant_gt_dims"] = const

    bas = {"pred": [proto.beat_alignment(s) for s in pred], "gt": [proto.beat_alignment(s) for s in gt]}
    pred_bas = [b for b in bas["pred"] if b is not None]
    gt_bas = [b for b in bas["gt"] if b is not None]
    metrics["bas"] = _mean_or_none(pred_bas)
    gt_ref["bas"] = _mean_or_none(gt_bas)
    if len(pred_bas) < len(pred):
        notes.append(f"BAS over {len(pred_bas)} of {len(pred)} pred sequences (the others have no music beats)")
    if len(gt_bas) < len(gt):
        notes.append(f"BAS over {len(gt_bas)} of {len(gt)} gt sequences (the others have no music beats)")

    # ---- PFC, PBC, foot skating, floor penetration, jerk join here ------------------------------------
    # One entry per metric, {"pred": value, "gt": value}; the CLI's table prints whatever this dict holds.
    physical = physical_metrics(pred, gt, proto, notes) if with_physical else {}
    # -----------------------------------------------------------------------------------------------------

    result: dict[str, Any] = {
        "protocol": proto.name,
        "settings": proto.settings(),
        "counts": {"pred": len(pred), "gt": len(gt), "pred_with_beats": len(pred_bas), "gt_with_beats": len(gt_bas),
                   "pred_frames": int(sum(s.num_frames for s in pred)),
                   "gt_frames": int(sum(s.num_frames for s in gt))},
        "metrics": metrics,
        "gt_reference": gt_ref,
        "details": details,
        "physical": physical,
        "notes": notes,
    }
    if return_features:
        result["features"] = feats
    if per_sample:
        result["per_sample"] = (
            [{"set": "pred", "name": s.name, "frames": s.num_frames, "fps": s.fps, "bas": _finite(b)}
             for s, b in zip(pred, bas["pred"])]
            + [{"set": "gt", "name": s.name, "frames": s.num_frames, "fps": s.fps, "bas": _finite(b)}
               for s, b in zip(gt, bas["gt"])])
    return result


def physical_metrics(pred: Sequence[DanceSample], gt: Sequence[DanceSample], proto: Protocol,
                     notes: list[str]) -> dict[str, Any]:
    """PFC (EDGE), PBC (POPDG), foot skating, floor penetration and jerk of both sets, each module's defaults:
    ``{metric: {"pred": value, "gt": value}}`` (see :func:`physical_set_metrics`)."""
    by_role = {"pred": physical_set_metrics(pred, proto, notes, "pred"),
               "gt": physical_set_metrics(gt, proto, notes, "gt")}
    return {name: {role: by_role[role][name] for role in ("pred", "gt")} for name in by_role["pred"]}


def physical_set_metrics(samples: Sequence[DanceSample], proto: Protocol, notes: list[str],
                         role: str = "pred") -> dict[str, float | None]:
    """The physical metrics of one set (``role`` names it in notes).

    The modules (``pfc``, ``pbc``, ``skating``, ``penetration``, ``jerk``) document their conventions; the
    protocol only picks the foot-skating mode. A metric the set's input cannot support (e.g. PBC without hand
    joints) is None, with a note naming the reason.
    """
    from .jerk import mean_jerk
    from .pbc import pbc_set
    from .penetration import floor_penetration_set
    from .pfc import pfc_set
    from .skating import foot_skating_set

    metrics = {
        "pfc": pfc_set,
        "pbc": pbc_set,
        "foot_skating": lambda ss: foot_skating_set(ss, mode=proto.skating_mode).ratio,
        "floor_penetration": lambda ss: floor_penetration_set(ss).frame_fraction,
        "jerk": lambda ss: float(np.mean([mean_jerk(s) for s in ss])),
    }
    out: dict[str, float | None] = {}
    for name, fn in metrics.items():
        try:
            value = fn(samples)
            out[name] = _finite(value)
            if out[name] is None:
                why = (" (LODGE's set mean is NaN when any sequence has a foot that never touches the floor, "
                       "common in 4-s windows; the project mode pools contact steps instead)"
                       if name == "foot_skating" and proto.skating_mode == "lodge" else "")
                notes.append(f"{name} on {role} is not finite ({value}){why}")
        except InputError as exc:
            out[name] = None
            notes.append(f"{name} not measured on {role}: {exc}")
    return out


def markdown_table(result: dict[str, Any]) -> str:
    """A markdown report of :func:`evaluate_generation`'s result (metrics, GT reference values, notes)."""
    m, g, c = result["metrics"], result["gt_reference"], result["counts"]

    def fmt(x: float | None) -> str:
        if x is None:
            return "n/a"
        return f"{x:.4g}" if abs(x) >= 1e5 or (x != 0 and abs(x) < 1e-3) else f"{x:.4f}"

    lines = [f"# Generation metrics ({result['settings']['title']}, protocol `{result['protocol']}`)", "",
             f"{c['pred']} predicted and {c['gt']} ground-truth sequences "
             f"({c['pred_with_beats']} / {c['gt_with_beats']} with music beats).", "",
             "| metric | prediction | ground truth |", "|---|---:|---:|"]
    rows = [("FID_k", m["fid_k"], None), ("FID_g", m["fid_g"], None), ("Div_k", m["div_k"], g["div_k"]),
            ("Div_g", m["div_g"], g["div_g"]), ("BAS", m["bas"], g["bas"])]
    if m.get("fid_hand") is not None or m.get("div_hand") is not None:
        rows += [("FID_hand", m["fid_hand"], None), ("Div_hand", m["div_hand"], g["div_hand"])]
    for name, value in result.get("physical", {}).items():
        if isinstance(value, dict):
            rows.append((name, value.get("pred"), value.get("gt")))
    for name, pv, gv in rows:
        lines.append(f"| {name} | {fmt(pv)} | {'' if gv is None and name.startswith('FID') else fmt(gv)} |")
    if result["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"
