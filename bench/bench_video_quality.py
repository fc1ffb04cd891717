"""Benchmark: how good and how fast is the CPU preview of "this dance, on this dancer" (issue 16)?

Held-out procedural dances (the first test-split clip of each of ``--genres`` in the corpus plan of
``--seed``; SMPL-X motion built in memory as ``dancesearch corpus demo`` would) are cut to ``--seconds`` and
rendered at ``--size`` square pixels:

- **ground truth**: :func:`generation.video.appearance.synthetic.render_textured_dancer` of the dance (a body
  with a clothing/skin texture fixed on its surface, Lambert-shaded, over a textured background), with the
  body ``--gt-body`` (``auto``: the skinned anny mesh when ``GuidanceRenderer`` accepts ``body="anny"``, else
  the capsule body the preview also uses, which makes the figures optimistic);
- **reference photo**: the ground truth's frame 0;
- **preview**: the user's path: ``load_reference(photo)``, ``preview_renderer(dance, person, size)`` (the dance
  retargeted to the person's proportions, framed like the photo), ``PreviewAnimator(person, renderer).render()``;
- baselines: **static** (the photo repeated) and **guidance** (the capsule body view of the preview's renderer,
  ``compose(..., "body")``: the pose without any appearance).

Every output is scored against the ground truth (:mod:`generation.video.quality`): SSIM, PSNR, VMAF (libvmaf
``vmaf_v0.6.1``), pose following (mediapipe on every ``--pose-stride``-th frame vs the ground truth's projected
OpenPose keypoints: PCK@``--alpha`` of the keypoint-box diagonal, mean px error, detection rate) and the
warping error on the video's own flow (the ground truth's own error is the floor) and on the ground truth's
flow. Per-dance values, medians over dances and paired bootstrap intervals over dances of preview minus each
baseline. Preview frames are also split by where the dancer faces (front / side / back of the fixed camera).

Speed: a whole ``--speed-seconds`` video per ``--speed-sizes`` end to end (photo -> ``load_reference`` ->
``preview_renderer`` -> frames -> ``write_mp4`` with the dance's music), median of ``--runs``, and the
preview's ms/frame alone.

    OMP_NUM_THREADS=1 python bench/bench_video_quality.py [--quick] [--genres ...] [--out J] [--md M]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402
from encoders.errors import InputError  # noqa: E402

DEFAULT_GENRES = ("ballet", "breaking", "hiphop", "waltz", "salsa", "dunhuang")
METHODS = ("preview", "static", "guidance")
BASELINES = ("static", "guidance")
TARGET_SECONDS = 30.0       # issue 16: a 10-s 256x256 video in at most 30 s on the 2-core machine
TARGET_SIZE = 256
#: Metrics in the tables: key, label, higher-is-better, format.
METRICS = (("ssim", "SSIM", True, "{:.3f}"), ("psnr", "PSNR dB", True, "{:.2f}"),
           ("ssim_box", "SSIM (dancer box)", True, "{:.3f}"), ("psnr_box", "PSNR dB (dancer box)", True, "{:.2f}"),
           ("vmaf", "VMAF", True, "{:.1f}"),
           ("pck", "PCK@{alpha}", True, "{:.3f}"), ("pose_err_px", "pose err px", False, "{:.1f}"),
           ("detect", "detected", True, "{:.2f}"), ("warp", "warp err (own flow)", False, "{:.2f}"),
           ("warp_gtflow", "warp err (GT flow)", False, "{:.2f}"))
FACING_BINS = (("front", 0.0, 60.0), ("side", 60.0, 120.0), ("back", 120.0, 180.1))


def load3() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def median(values) -> float:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(statistics.median(vals)) if vals else float("nan")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def held_out_dances(genres: list[str], seed: int, n_plan: int = 200):
    """(spec, record, music) of the first test-split clip of each genre in the corpus plan."""
    from generation.procedural.choreographer import choreograph
    from generation.procedural.music import synthesize
    from generation.procedural.plan import plan_corpus

    specs = plan_corpus(n_plan, seed)
    out = []
    for g in genres:
        spec = next((s for s in specs if s.genre == g and s.split == "test"), None)
        if spec is None:
            raise SystemExit(f"no test-split clip of genre {g!r} in a {n_plan}-clip plan of seed {seed}")
        out.append((spec, choreograph(spec).record(), synthesize(spec)))
    return out


def gt_renderer(record, size: int, body: str, camera_from=None):
    """(GuidanceRenderer, body used) for the ground truth; ``auto`` tries the anny mesh first.

    ``camera_from``: another record whose fitted camera is used (the turn probe keeps the camera of the
    dance before the turn: fitted to the turned dance, it would sit at the turn's mean facing and the
    photo, frame 0, would be a side view).
    """
    from generation.video import GuidanceRenderer

    accepts_body = "body" in inspect.signature(GuidanceRenderer.__init__).parameters
    if body == "anny" and not accepts_body:
        raise SystemExit("GuidanceRenderer has no body= argument here: use --gt-body capsule or auto")
    kinds = ["capsule"] if body == "capsule" or not accepts_body else ["anny"] if body == "anny" else ["anny", "capsule"]
    for i, kind in enumerate(kinds):
        kw = {} if kind == "capsule" and not accepts_body else {"body": kind}
        try:
            camera = None
            if camera_from is not None:
                with GuidanceRenderer(camera_from, size, **kw) as fitted:
                    camera = fitted.camera
            return GuidanceRenderer(record, size, camera=camera, **kw), kind
        except Exception as exc:   # noqa: BLE001 - auto falls back, and says why
            if i == len(kinds) - 1:
                raise
            log(f"{kind} body unavailable ({type(exc).__name__}: {exc}); ground truth uses the capsule body")
    raise AssertionError("unreachable")


def facing_angles(renderer) -> np.ndarray:
    """(T,) degrees between the dancer's horizontal trunk forward and the direction to the camera (0 = facing it)."""
    fwd = renderer.joints.trunk_frames()[..., 2].copy()
    to_cam = np.asarray(renderer.camera.rotation)[2].copy()        # view +z ("back") points at the camera
    fwd[..., 1] = 0.0
    to_cam[1] = 0.0
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
    to_cam /= max(np.linalg.norm(to_cam), 1e-9)
    return np.degrees(np.arccos(np.clip(fwd @ to_cam, -1.0, 1.0)))


def turned(record, degrees: float, start_s: float):
    """``record`` with an added in-place turn: 0 until ``start_s``, then a steady yaw (about +y, through each
    frame's pelvis) reaching ``degrees`` at the last frame. Positions only (the video path reads no rotations).

    Why: the procedural dances face the camera almost throughout (no frame of the six default dances turns
    more than 54 degrees away), so back and side views, the preview's known weakness, need this probe.
    """
    from encoders.motion.record import MotionRecord

    n = record.num_frames
    t0 = int(round(start_s * record.fps))
    ang = np.radians(degrees) * np.clip((np.arange(n) - t0) / max(n - 1 - t0, 1), 0.0, 1.0)
    c, s_ = np.cos(ang), np.sin(ang)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s_, 1.0, -s_, c
    pos = record.positions.astype(np.float64)
    pelvis = pos[:, record.joint_index("pelvis")][:, None]
    out = np.einsum("tij,tkj->tki", rot, pos - pelvis) + pelvis
    return MotionRecord(record.fps, record.trans, out.astype(np.float32), list(record.joint_names), None,
                        dict(record.meta))


def score_dance(spec, record, args, vmaf_ok: bool, camera_from=None) -> tuple[dict, dict | None]:
    """All metrics of one dance: (per-method results, per-frame arrays for the facing split).

    When ``load_reference`` rejects the photo (e.g. mediapipe finds nobody), that is the result: the
    dance is recorded with the error and scored on nothing (per-frame arrays None)."""
    from generation.video.appearance import PreviewAnimator, load_reference, preview_renderer
    from generation.video.appearance.synthetic import render_textured_dancer, textured_background
    from generation.video.compose import compose
    from generation.video.quality import (box_fidelity, detect_sequence, fidelity, pair_flows, person_boxes,
                                          pose_following, vmaf, warping_error)

    clip = record
    n = clip.num_frames
    res: dict = {"frames": n, "times_s": {}}
    t0 = time.perf_counter()
    gr, body = gt_renderer(clip, args.size, args.gt_body, camera_from)
    with gr:
        gt = render_textured_dancer(gr, seed=args.texture_seed)
        # the dancer's pixels: wherever the frame differs from the (deterministic) background it was drawn on
        gt_mask = np.any(gt != textured_background(gr.height, gr.width, args.texture_seed)[None], axis=-1)
        boxes = person_boxes(gt_mask, pad=0.1)
        gt_kp, gt_valid = gr.keypoints[:, :18].copy(), gr.keypoint_valid[:, :18].copy()
        facing = facing_angles(gr)
    res["gt_body"] = body
    res["times_s"]["ground_truth"] = round(time.perf_counter() - t0, 2)
    photo = np.ascontiguousarray(gt[0])

    t0 = time.perf_counter()
    try:
        person = load_reference(photo)
    except InputError as exc:
        res["error"] = f"load_reference: {exc}"
        return res, None
    res["reference_notes"] = list(getattr(person, "notes", []) or [])
    res["times_s"]["load_reference"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    with preview_renderer(clip, person, args.size) as pr:
        res["times_s"]["preview_renderer"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        preview = PreviewAnimator(person, pr).render()
        res["times_s"]["preview_render"] = round(time.perf_counter() - t0, 2)
        res["preview_ms_per_frame"] = round(res["times_s"]["preview_render"] / n * 1e3, 2)
        guidance = compose(pr.render(), "body")
        own_kp, own_valid = pr.keypoints[:, :18].copy(), pr.keypoint_valid[:, :18].copy()
    outputs = {"preview": preview, "static": np.repeat(photo[None], n, axis=0), "guidance": guidance}

    t0 = time.perf_counter()
    gt_flows = pair_flows(gt)
    gt_warp = warping_error(gt, flows=gt_flows)
    gt_det = detect_sequence(gt, stride=args.pose_stride)
    gt_pose = pose_following(gt, gt_kp, gt_valid, alpha=args.alpha, detections=gt_det)
    res["ground_truth"] = {"warp": gt_warp.mean, "pck": gt_pose.pck, "pose_err_px": gt_pose.mean_error_px,
                           "detect": gt_pose.detection_rate, "warp_detail": gt_warp.as_dict(),
                           "pose_detail": gt_pose.as_dict()}
    per_frame = {"facing_deg": facing, "pose_frames": gt_det.frames,
                 "ground_truth": {"ssim": np.ones(n), "ssim_box": np.ones(n), "pck": gt_pose.per_frame_pck}}
    for name, frames in outputs.items():
        fid = fidelity(frames, gt)
        box = box_fidelity(frames, gt, boxes)
        det = detect_sequence(frames, stride=args.pose_stride)
        pf = pose_following(frames, gt_kp, gt_valid, alpha=args.alpha, detections=det)
        # the static baseline's frames are identical: its own-flow error is 0 by construction (not estimated)
        own_w = None if name == "static" else warping_error(frames)
        gt_w = warping_error(frames, flows=gt_flows)
        row = {"ssim": fid.ssim_mean, "psnr": fid.psnr_mean, "ssim_box": box.ssim_mean, "psnr_box": box.psnr_mean,
               "pck": pf.pck, "pose_err_px": pf.mean_error_px,
               "detect": pf.detection_rate, "warp": 0.0 if own_w is None else own_w.mean, "warp_gtflow": gt_w.mean,
               "fidelity_detail": fid.as_dict(), "pose_detail": pf.as_dict(),
               "warp_detail": None if own_w is None else own_w.as_dict()}
        if name != "static":      # what the output was asked to follow: the preview renderer's own keypoints
            row["pck_own_guidance"] = pose_following(frames, own_kp, own_valid, alpha=args.alpha,
                                                     detections=det).pck
        if vmaf_ok:
            v = vmaf(frames, gt, threads=1)
            row["vmaf"], row["vmaf_detail"] = v.mean, v.as_dict()
        else:
            row["vmaf"] = None
        res[name] = row
        per_frame[name] = {"ssim": fid.ssim, "ssim_box": box.ssim, "pck": pf.per_frame_pck}
    res["times_s"]["metrics"] = round(time.perf_counter() - t0, 2)
    res["dancer_box_area"] = round(float(np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
                                   / (gt.shape[1] * gt.shape[2]), 4)
    return res, per_frame


def bootstrap_diff(a: list[float], b: list[float], n_boot: int, seed: int = 0) -> dict:
    """Mean of the paired differences a - b over dances and its 95% percentile bootstrap interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": round(float(d.mean()), 4), "lo": round(float(lo), 4), "hi": round(float(hi), 4),
            "n": int(d.size), "wins": int((d > 0).sum())}


def summarise(per_dance: dict, n_boot: int) -> dict:
    keys = [m[0] for m in METRICS]
    out = {"median": {}, "paired": {}}
    for method in METHODS:
        out["median"][method] = {k: median([d[method].get(k) for d in per_dance.values()]) for k in keys}
    out["median"]["ground_truth"] = {k: median([d["ground_truth"].get(k) for d in per_dance.values()])
                                     for k in ("warp", "pck", "pose_err_px", "detect")}
    out["median"]["preview"]["pck_own_guidance"] = median([d["preview"].get("pck_own_guidance")
                                                           for d in per_dance.values()])
    for base in BASELINES:
        out["paired"][base] = {}
        for k in keys:
            a = [d["preview"].get(k) for d in per_dance.values()]
            b = [d[base].get(k) for d in per_dance.values()]
            if any(v is None for v in a + b):
                continue
            out["paired"][base][k] = bootstrap_diff(a, b, n_boot)
    return out


def facing_split(per_frames: list[dict]) -> dict:
    """Preview and static SSIM / PCK pooled over dances, per facing bin (front / side / back)."""
    out = {}
    for label, lo, hi in FACING_BINS:
        row = {"frames": 0}
        for method in (*METHODS, "ground_truth"):
            ss, pk = [], []
            for pf in per_frames:
                sel = (pf["facing_deg"] >= lo) & (pf["facing_deg"] < hi)
                ss.extend(pf[method]["ssim_box"][sel].tolist())
                psel = sel[pf["pose_frames"]]
                pk.extend(v for v in pf[method]["pck"][psel].tolist() if np.isfinite(v))
            row[method] = {"ssim": round(float(np.mean(ss)), 4) if ss else None,
                           "pck": round(float(np.mean(pk)), 4) if pk else None}
            row["frames"] = len(ss)
        out[label] = row
    return out


def measure_speed(spec, record, music, size: int, seconds: float, runs: int, args, scratch: Path) -> dict:
    """End-to-end wall time of a ``seconds`` preview video at ``size`` (photo -> MP4 with music), ``runs`` times."""
    from generation.procedural.corpus import encode_ogg
    from generation.video import probe_mp4, write_mp4
    from generation.video.appearance import PreviewAnimator, load_reference, preview_renderer
    from generation.video.appearance.synthetic import render_textured_dancer

    n = min(int(round(seconds * record.fps)), record.num_frames)
    clip = record.slice(0, n)
    ogg = scratch / f"{spec.name}.ogg"
    ogg.write_bytes(encode_ogg(music))
    gr, _ = gt_renderer(clip.slice(0, 1), size, args.gt_body)
    with gr:
        photo = np.ascontiguousarray(render_textured_dancer(gr, seed=args.texture_seed)[0])
    out = scratch / f"speed-{size}.mp4"
    walls, parts = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        person = load_reference(photo)
        t1 = time.perf_counter()
        with preview_renderer(clip, person, size) as pr:
            t2 = time.perf_counter()
            write_mp4(PreviewAnimator(person, pr).frames(), clip.fps, out, audio=ogg, num_frames=n)
        t3 = time.perf_counter()
        walls.append(t3 - t0)
        parts.append({"load_reference_s": round(t1 - t0, 3), "preview_renderer_s": round(t2 - t1, 3),
                      "frames_and_encode_s": round(t3 - t2, 3)})
    # the preview alone (frames in memory, no encoding), for ms/frame
    with preview_renderer(clip, person, size) as pr:
        anim = PreviewAnimator(person, pr)
        m = min(n, args.speed_frames)
        t0 = time.perf_counter()
        anim.render(0, m)
        ms = (time.perf_counter() - t0) / m * 1e3
    probe = probe_mp4(out).as_dict()
    return {"genre": spec.genre, "clip": spec.name, "frames": n, "wall_s": [round(w, 3) for w in walls],
            "wall_s_median": round(median(walls), 3), "parts": parts, "preview_ms_per_frame": round(ms, 2),
            "preview_frames_timed": m, "ms_per_frame_end_to_end": round(median(walls) / n * 1e3, 2),
            "probe": probe, "load_average_1m": load3()[0]}


def code_fingerprint() -> dict:
    """md5 of the video code the numbers come from (the preview back-end changes often)."""
    import hashlib

    files = sorted(p for d in ("appearance", "bodies", "quality") for p in (ROOT / "generation" / "video" / d).glob("*.py"))
    files.append(ROOT / "generation" / "video" / "guidance.py")
    return {str(p.relative_to(ROOT)): hashlib.md5(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def clean(obj):
    """The result with NaN / inf as None (strict JSON) and numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def fmt(v, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else spec.format(v)


def set_tables(result: dict, key: str, summ: dict, fs: dict, labels: dict) -> list[str]:
    """Markdown tables of one set of scored dances: medians, paired intervals, per dance, facing split."""
    a = result["args"]
    lines = [
        "Medians over dances (ground truth row: the same detector and flow on the ground truth itself):", "",
        "| method | " + " | ".join(labels[k] for k, _, _, _ in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for method in METHODS:
        r = summ["median"][method]
        lines.append(f"| {method} | " + " | ".join(fmt(r.get(k), f) for k, _, _, f in METRICS) + " |")
    g = summ["median"]["ground_truth"]
    lines.append("| ground truth | - | - | - | - | - | " + " | ".join(fmt(g.get(k), f) for k, _, _, f in METRICS[5:9]) + " | - |")
    lines += ["", f"Preview vs its own guidance keypoints (what it was asked to follow): PCK@{a['alpha']:g} "
              f"{fmt(summ['median']['preview'].get('pck_own_guidance'), '{:.3f}')} (median over dances).", "",
              f"Paired differences, preview minus baseline, mean over the {len(result[key])} dances with a 95% "
              f"bootstrap interval ({a['n_boot']} resamples of the dances; `wins` = dances where the preview's value "
              "is higher; for pose err and warp err lower is better):", "",
              "| metric | preview - static | wins | preview - guidance | wins |", "|---|---:|---:|---:|---:|"]
    for k, _, _, f in METRICS:
        cells = []
        for base in BASELINES:
            p = summ["paired"].get(base, {}).get(k)
            if not p or p["mean"] is None:
                cells += ["n/a", ""]
            else:
                cells += [f"{f.format(p['mean'])} [{f.format(p['lo'])}, {f.format(p['hi'])}]", f"{p['wins']}/{p['n']}"]
        lines.append(f"| {labels[k]} | " + " | ".join(cells) + " |")
    lines += ["", "Per dance:", "", "| dance | GT body | method | " + " | ".join(labels[k] for k, _, _, _ in METRICS)
              + " |", "|---|---|---|" + "---:|" * len(METRICS)]
    for name, d in result[key].items():
        for method in METHODS:
            r = d[method]
            lines.append(f"| {result['dances'][name]['label']} | {d['gt_body']} | {method} | "
                         + " | ".join(fmt(r.get(k), f) for k, _, _, f in METRICS) + " |")
        gtr = d["ground_truth"]
        lines.append(f"| {result['dances'][name]['label']} | {d['gt_body']} | ground truth | - | - | - | - | - | "
                     + " | ".join(fmt(gtr.get(k), f) for k, _, _, f in METRICS[5:9]) + " | - |")
    failed = result.get("failed" + key[len("per_dance"):], {})
    if failed:
        lines += ["", "Not scored (the preview could not start from the photo): " + "; ".join(
            f"{result['dances'][k]['label']}: {d['error']}" for k, d in failed.items())]
    notes = {k: d["reference_notes"] for k, d in result[key].items() if d.get("reference_notes")}
    if notes:
        lines += ["", "Notes `load_reference` returned: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in notes.items())]
    lines += ["", "By where the dancer faces (angle between the trunk's forward direction and the direction to the "
              "camera; all dances pooled; mean SSIM in the dancer box over frames, mean per-frame PCK):", "",
              "| facing | frames | preview SSIM box | static SSIM box | guidance SSIM box | preview PCK | static PCK | guidance PCK "
              "| GT PCK |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, lo, hi in FACING_BINS:
        r = fs[label]
        lines.append(f"| {label} ({lo:.0f}-{min(hi, 180):.0f} deg) | {r['frames']} | "
                     + " | ".join(fmt(r[mm]["ssim"], "{:.3f}") for mm in METHODS) + " | "
                     + " | ".join(fmt(r[mm]["pck"], "{:.3f}") for mm in (*METHODS, "ground_truth")) + " |")
    return lines


def markdown(result: dict) -> str:
    a = result["args"]
    m = result["machine"]
    labels = {k: lab.format(alpha=f"{a['alpha']:g}") for k, lab, _, _ in METRICS}
    bodies = sorted({d["gt_body"] for d in result["per_dance"].values()})
    lines = [
        "# Dance video on a dancer from a photo: quality and speed of the CPU preview (issue 16)", "",
        f"Measured {result['date']} with `bench/bench_video_quality.py` on {m['cpu']} ({m['cpu_count']} cores, no "
        f"GPU), Python {m['python']}, renderer {result['renderer']}; load average (1, 5, 15 min) "
        f"{result['load_average_start']} at the start and {result['load_average_end']} at the end"
        + (f" ({result['note']})" if result.get("note") else "") + f"; the whole run took "
        f"{result['bench_seconds'] / 60:.1f} min. All numbers below come from this one run.", "",
        "## What was measured", "",
        f"{len(a['genres'])} held-out procedural dances (the first test-split clip of each genre in the corpus plan "
        f"of seed {a['seed']}: {', '.join(d['label'] for d in result['dances'].values())}), the first "
        f"{a['seconds']:g} s of each ({result['quality_frames']} frames at 30 fps), at {a['size']}x{a['size']}.", "",
        f"- **ground truth**: `render_textured_dancer` (the {' / '.join(bodies)} body with a clothing/skin texture fixed "
        "on its surface, Lambert-shaded, over a textured background), seen by the fixed camera fitted to the dance."
        + (" It shares the preview's capsule geometry, so the figures are **optimistic**: real people have "
           "hair, loose clothes and a silhouette no capsule has." if bodies == ["capsule"] else
           " The preview's body is a different model (capsules), as a real person's body would be."),
        "- **reference photo**: the ground truth's frame 0 (the paper's protocol: the first frame as reference).",
        "- **preview**: `load_reference(photo)` -> `preview_renderer(dance, person, size)` (the dance retargeted to "
        "the detected person's proportions and framed like the photo) -> `PreviewAnimator(person, renderer).render()`.",
        "- **static**: the photo repeated (no motion at all); **guidance**: the capsule body view "
        "(`compose(frames, \"body\")`) of the preview's renderer, i.e. the pose without any appearance.", "",
        "Metrics (`generation/video/quality`), every output against the ground truth frames:", "",
        "- SSIM / PSNR: scikit-image on the whole RGB frame (data range 255, 7x7 window), mean over frames; PSNR of "
        "identical frames capped at 100 dB. Whole frames, background included: the paper crops to the dancer "
        "because a uniform background inflates these; ours is textured and (for the preview) inpainted, but the "
        "background still weighs most of the frame. `dancer box`: the same scores on each frame's box around the "
        "ground truth's dancer (its pixels grown by 10% of the box size on each side), the paper's crop; "
        "every method is scored on the ground truth's box, where the dancer should be.",
        f"- VMAF: ffmpeg's libvmaf, model `vmaf_v0.6.1`, on the raw frames converted to BT.709 4:2:0 (no codec in "
        f"the loop). The model was trained on 1080p-class video; at {a['size']} px it ranks distortions but is not "
        "calibrated as an absolute score.",
        f"- Pose following: mediapipe Pose (`detect_pose`, mapped to the 18 OpenPose body keypoints) on one frame "
        f"in {a['pose_stride']} vs the ground truth's projected keypoints; PCK@{a['alpha']:g} = share of the "
        f"target's keypoints detected within {a['alpha']:g} x the diagonal of the target's keypoint box; a keypoint "
        "not detected (visibility < 0.5 or nobody found) is a miss; `pose err px` = mean distance of the detected "
        "ones; `detected` = share of frames with a person found. The same detector on the ground truth is the "
        "ceiling (mediapipe's and SMPL's keypoints are defined differently: hip centres, face points).",
        "- Warping error: backward Farneback flow from frame t+1 to t warps frame t; mean absolute RGB difference "
        "(8-bit levels) over the pixels that pass a forward-backward occlusion check; mean over pairs. `own flow` "
        "uses the video's own flow (self-consistency: flicker and texture swimming cost, smooth motion is free; a "
        "frozen video scores 0); `GT flow` warps the video with the ground truth's flow (also charges for not "
        "moving like the ground truth). The ground truth's own-flow error is the floor the flow estimator leaves. "
        "The static baseline's own-flow error is 0 by construction (identical frames) and is not estimated.",
        "",
        "## Results: the dances as choreographed", "",
    ]
    lines += set_tables(result, "per_dance", result["summary"], result["facing"], labels)
    if result.get("per_dance_turning"):
        lines += ["", f"## Results: the same dances with an added {a['turn']:g}-degree turn", "",
                  "The default dances face the camera throughout (the most any frame turns away is "
                  f"{max(d['facing_max_deg'] for d in result['per_dance'].values()):.0f} degrees), so back and side "
                  f"views are probed by adding a steady in-place turn to each clip: none for the first "
                  f"{a['turn_start']:g} s, then a constant yaw about the pelvis reaching {a['turn']:g} degrees at the "
                  "last frame (the ground truth turns the same way; the reference photo, frame 0, still faces the "
                  "camera, so the back of the dancer is never seen in it).", ""]
        lines += set_tables(result, "per_dance_turning", result["summary_turning"], result["facing_turning"], labels)
    sp = result["speed"]
    lines += ["", "## Speed", "",
              f"End to end, one {a['speed_seconds']:g}-s video ({sp[str(a['speed_sizes'][0])]['genre']} dance) per size: "
              "photo -> `load_reference` (mediapipe detection, fit) -> `preview_renderer` (retarget, camera, GL "
              "set-up) -> `PreviewAnimator.frames()` streamed into `write_mp4` (libx264 `-preset medium -crf 18`, "
              f"the dance's music as AAC), in this process; median of {a['runs']} runs. `preview ms/frame`: "
              f"`PreviewAnimator.render` of the first {a['speed_frames']} frames alone (guidance render included, "
              "no encoding).", "",
              "| size | wall s (median) | all runs s | load_reference s | preview_renderer s | frames + encode s "
              "| ms/frame end to end | preview ms/frame | MP4 bytes |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in a["speed_sizes"]:
        r = sp[str(s)]
        p0 = {k: median([p[k] for p in r["parts"]]) for k in r["parts"][0]}
        lines.append(f"| {s}x{s} | {r['wall_s_median']:.2f} | {', '.join(f'{w:.2f}' for w in r['wall_s'])} | "
                     f"{p0['load_reference_s']:.2f} | {p0['preview_renderer_s']:.2f} | {p0['frames_and_encode_s']:.2f} | "
                     f"{r['ms_per_frame_end_to_end']:.1f} | {r['preview_ms_per_frame']:.1f} | {r['probe']['bytes']:,} |")
    t = result["target"]
    lines += ["", f"Quality-run preview time (the `{a['size']}` px renders above): median "
              f"{median([d['preview_ms_per_frame'] for d in result['per_dance'].values()]):.1f} ms/frame over the dances.",
              "", "## Against the target", "",
              f"Issue 16: a 10-s {TARGET_SIZE}x{TARGET_SIZE} video in at most {TARGET_SECONDS:g} s on this 2-core "
              f"machine: **{'met' if t['met'] else 'NOT met'}**: {t['wall_s']:.1f} s end to end for a "
              f"{a['speed_seconds']:g}-s video at {t['size']}x{t['size']} (median of {a['runs']} runs, in process; a "
              "separate command adds interpreter start-up and imports, about 7 s in `docs/results/video.md`)."]
    if result.get("reading"):
        lines += ["", "## Reading", "", result["reading"]]
    lines += ["", "## Reproduce", "", "```bash", result["command"], "```", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genres", nargs="+", default=list(DEFAULT_GENRES))
    ap.add_argument("--seed", type=int, default=0, help="seed of the corpus plan the dances come from")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of the scored clips")
    ap.add_argument("--size", type=int, default=256, help="frame size of the scored clips (square)")
    ap.add_argument("--gt-body", choices=("auto", "anny", "capsule"), default="auto")
    ap.add_argument("--texture-seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.1, help="PCK threshold, fraction of the keypoint-box diagonal")
    ap.add_argument("--pose-stride", type=int, default=3, help="run the pose detector on every n-th frame")
    ap.add_argument("--n-boot", type=int, default=10000)
    ap.add_argument("--turn", type=float, default=180.0,
                    help="also score each dance with an added in-place turn of this many degrees (0: skip)")
    ap.add_argument("--turn-start", type=float, default=1.0, help="second the added turn starts at")
    ap.add_argument("--speed-sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--speed-seconds", type=float, default=10.0)
    ap.add_argument("--speed-frames", type=int, default=60, help="frames timed for the preview's ms/frame")
    ap.add_argument("--runs", type=int, default=3, help="runs of each end-to-end speed measure")
    ap.add_argument("--no-vmaf", action="store_true", help="skip VMAF")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 genres, 2-s clips, pose stride 5, 256 px speed only, 1 run (numbers not for "
                         "reporting)")
    ap.add_argument("--note", default="", help="a remark on the conditions, printed in the report")
    ap.add_argument("--reading", type=Path, default=None, help="a markdown file with the reading of the results, "
                    "included in the report")
    ap.add_argument("--out", "--json", dest="out", type=Path, default=ROOT / "docs" / "results" / "video_quality.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "results" / "video_quality.md")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="only write --md from an earlier result file (no measuring); with --reading, add it")
    args = ap.parse_args()
    if args.report is not None:
        result = json.loads(args.report.read_text())
        if args.reading is not None:
            result["reading"] = args.reading.read_text().strip()
            atomic_write_json(args.report, result)
        atomic_write_text(args.md, markdown(result))
        return 0
    if args.quick:
        args.genres, args.seconds, args.pose_stride = args.genres[:2], 2.0, 5
        args.speed_sizes, args.speed_seconds, args.runs, args.speed_frames, args.n_boot = [256], 2.0, 1, 30, 1000

    from generation.video import renderer_available
    from generation.video.quality import vmaf_available

    ok, renderer = renderer_available()
    if not ok:
        raise SystemExit(f"no headless renderer: {renderer}")
    vmaf_ok = False if args.no_vmaf else vmaf_available()[0]
    start_load = load3()
    t_start = time.perf_counter()
    cmd = (f"HF_HUB_OFFLINE=1 ANNY_CACHE_DIR=/work/anny_cache OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_video_quality.py --genres "
           f"{' '.join(args.genres)} --seconds {args.seconds:g} --size {args.size} --gt-body {args.gt_body} "
           f"--alpha {args.alpha:g} --pose-stride {args.pose_stride} --turn {args.turn:g} --turn-start "
           f"{args.turn_start:g} --speed-sizes "
           f"{' '.join(map(str, args.speed_sizes))} --speed-seconds {args.speed_seconds:g} --runs {args.runs}"
           + (" --no-vmaf" if args.no_vmaf else ""))
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "renderer": renderer, "load_average_start": start_load, "note": args.note, "quick": args.quick,
              "vmaf": vmaf_ok,
              "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "LP_NUM_THREADS")},
              "args": {"genres": args.genres, "seed": args.seed, "seconds": args.seconds, "size": args.size,
                       "gt_body": args.gt_body, "texture_seed": args.texture_seed, "alpha": args.alpha,
                       "pose_stride": args.pose_stride, "n_boot": args.n_boot, "turn": args.turn,
                       "turn_start": args.turn_start, "speed_sizes": args.speed_sizes,
                       "speed_seconds": args.speed_seconds, "speed_frames": args.speed_frames, "runs": args.runs},
              "command": cmd, "code_md5": code_fingerprint(), "dances": {}, "per_dance": {}, "speed": {}}
    dances = held_out_dances(args.genres, args.seed)
    sets = {"danced": "per_dance"}
    if args.turn:
        sets["turning"] = "per_dance_turning"
    for variant, key in sets.items():
        result[key] = {}
        per_frames = []
        for spec, record, _ in dances:
            result["dances"][spec.name] = {"label": f"{spec.genre} {spec.bpm:g} BPM", "genre": spec.genre,
                                           "bpm": spec.bpm, "dance_frames": record.num_frames}
            clip = record.slice(0, min(int(round(args.seconds * record.fps)), record.num_frames))
            t0 = time.perf_counter()
            if variant == "turning":
                res, pf = score_dance(spec, turned(clip, args.turn, args.turn_start), args, vmaf_ok, camera_from=clip)
            else:
                res, pf = score_dance(spec, clip, args, vmaf_ok)
            res["seconds"] = round(time.perf_counter() - t0, 1)
            if pf is None:
                result.setdefault("failed" + ("" if variant == "danced" else "_turning"), {})[spec.name] = res
                log(f"{variant} {spec.name}: FAILED {res['error']}")
                continue
            res["facing_max_deg"] = round(float(pf["facing_deg"].max()), 1)
            result[key][spec.name] = res
            per_frames.append(pf)
            p, st = res["preview"], res["static"]
            log(f"{variant} {spec.name}: preview SSIM {p['ssim']:.3f} PSNR {p['psnr']:.2f} PCK {p['pck']:.3f} warp "
                f"{p['warp']:.2f} | static SSIM {st['ssim']:.3f} PCK {st['pck']:.3f} | GT PCK "
                f"{res['ground_truth']['pck']:.3f} warp {res['ground_truth']['warp']:.2f} | "
                f"{res['preview_ms_per_frame']:.1f} ms/frame | {res['seconds']:.0f} s, load {load3()}")
        suffix = "" if variant == "danced" else "_turning"
        result["summary" + suffix] = summarise(result[key], args.n_boot)
        result["facing" + suffix] = facing_split(per_frames)
    result["quality_frames"] = int(round(args.seconds * 30.0))
    with tempfile.TemporaryDirectory(prefix="bench_vq_") as tmp:
        spec, record, music = dances[0]
        for size in args.speed_sizes:
            result["speed"][str(size)] = measure_speed(spec, record, music, size, args.speed_seconds, args.runs, args,
                                                       Path(tmp))
            log(f"speed {size}: {result['speed'][str(size)]['wall_s']} s, preview "
                f"{result['speed'][str(size)]['preview_ms_per_frame']} ms/frame")
    small = str(TARGET_SIZE) if TARGET_SIZE in args.speed_sizes else str(min(args.speed_sizes))
    result["target"] = {"size": int(small), "seconds_limit": TARGET_SECONDS,
                        "wall_s": result["speed"][small]["wall_s_median"],
                        "met": result["speed"][small]["wall_s_median"] <= TARGET_SECONDS
                        and args.speed_seconds >= 10.0}
    if args.reading is not None:
        result["reading"] = args.reading.read_text().strip()
    result["load_average_end"] = load3()
    result["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    result = clean(result)
    atomic_write_json(args.out, result)
    atomic_write_text(args.md, markdown(result))
    print(json.dumps({"median": result["summary"]["median"], "speed": {k: v["wall_s_median"] for k, v in
                                                                         result["speed"].items()},
                      "target": result["target"]}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
