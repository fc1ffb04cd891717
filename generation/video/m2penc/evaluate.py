"""How close M2PEnc's guidance comes to the guidance of the real dance, on held-out (test-split) music.

Per test clip (all its 15-fps frames), for M2PEnc and two baselines:

- ``guidance_l1``: mean |prediction - rendered guidance| over frames, the 11 channels and pixels (values in
  [0, 1], predictions clipped to it), also per channel group (``l1_depth`` ...);
- ``heatmap_mse``: mean squared error of the keypoint heatmaps (Gaussians of ``heat_sigma`` px);
- ``keypoint_px``: mean distance in pixels (64 x 64 image) between the argmax of each predicted heatmap and the
  ground-truth projected keypoint, over visible keypoints;
- motion (is the output a still image, and does it move when the dance moves?), from the per-frame motion
  energy ``e(t) = mean |g(t) - g(t-1)|`` over channels and pixels: ``motion_ratio`` = mean e of the system /
  mean e of the ground truth (0: a still image; 1: moves as much as the real dance); ``motion_corr`` = Pearson
  correlation of the system's e(t) with the ground truth's e(t) (timing of the movement); ``beat_corr`` = the
  correlation of e(t) with the clip's beat column (feature 34, 3-frame box-smoothed), reported also for the
  ground truth (``truth.beat_corr``: the procedural dances hit a pose on the beat, so theirs is negative). A
  correlation of a constant sequence is reported as 0.

Baselines: ``mean`` = the per-pixel mean guidance and mean heatmaps of every training frame (the same image for
every frame: what a model that ignores the music can do best in L2); ``median`` = the per-pixel median guidance
(the constant image that is best in L1, the training loss; its heatmaps are the mean ones); ``generator`` = the
shipped music-to-dance diffusion model's dance for the same music and the clip's genre, rendered through the
same SDGPip path (its own fitted camera, as every dance is rendered), i.e. the "generate a dance, then render
it" route M2PEnc is meant to replace. Control: ``m2penc_other_music`` = M2PEnc's prediction for the *next* test clip's music scored
against this clip's dance; if it scores like ``m2penc``, the model's output does not depend on the music in a way
that matches the dance. Differences are paired percentile bootstraps over test clips (``eval.bootstrap``): an
interval that excludes 0 is not clip-sampling noise; it says nothing about training-seed noise.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.atomic_io import atomic_write_json
from encoders.errors import InputError
from encoders.machine import cpu_model

from .data import (GUIDANCE_GROUPS, ClipPairs, DataConfig, build_cache, cache_path, clip_music30, corpus_clips,
                   heatmaps_from_keypoints, load_pairs, render_pairs, save_pairs, split_of)
from .pipeline import M2PEncPipeline, heatmap_argmax

EVAL_FORMAT = 2
SYSTEMS = ("m2penc", "mean", "median", "generator", "m2penc_other_music")
MOTION_METRICS = ("motion_ratio", "motion_corr", "beat_corr")
METRICS = ("guidance_l1", "heatmap_mse", "keypoint_px") + MOTION_METRICS + tuple(f"l1_{g}" for g in GUIDANCE_GROUPS)
BEAT_COLUMN = 34


def motion_energy(guidance: np.ndarray) -> np.ndarray:
    """(T, C, S, S) -> (T - 1,) mean absolute frame-to-frame change."""
    g = np.asarray(guidance, dtype=np.float32)
    return np.abs(np.diff(g, axis=0)).mean(axis=tuple(range(1, g.ndim))) if len(g) > 1 else np.zeros(0, np.float32)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either sequence is constant (a still image has no timing)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def beat_curve(music: np.ndarray, t: int) -> np.ndarray:
    """The beat column of (T, 35) 15-fps features, 3-frame box-smoothed, at frames 1 .. t-1 (as e(t))."""
    beat = np.asarray(music[:t, BEAT_COLUMN], dtype=np.float64)
    return np.convolve(beat, np.ones(3) / 3.0, mode="same")[1:t]


def clip_metrics(guidance: np.ndarray, heatmaps: np.ndarray, truth: ClipPairs, sigma: float) -> dict[str, float]:
    """Metrics of one clip: predicted ``guidance`` (T, 11, S, S) in [0, 1] and ``heatmaps`` (T, 18, S, S)."""
    t = min(len(guidance), len(truth))
    gt = truth.guidance[:t].astype(np.float32) / 255.0
    pred = np.clip(guidance[:t].astype(np.float32), 0.0, 1.0)
    err = np.abs(pred - gt)
    size = gt.shape[-1]
    gt_heat = heatmaps_from_keypoints(truth.keypoints[:t], truth.valid[:t], size, sigma)
    arg = heatmap_argmax(heatmaps[:t])
    valid = truth.valid[:t]
    dist = np.linalg.norm(arg - truth.keypoints[:t], axis=-1)
    out = {"guidance_l1": float(err.mean()), "heatmap_mse": float(((heatmaps[:t] - gt_heat) ** 2).mean()),
           "keypoint_px": float(dist[valid].mean()) if valid.any() else float("nan")}
    e_pred, e_true = motion_energy(pred), motion_energy(gt)
    out["motion_ratio"] = float(e_pred.mean() / max(e_true.mean(), 1e-12)) if len(e_true) else 0.0
    out["motion_corr"] = correlation(e_pred, e_true)
    out["beat_corr"] = correlation(e_pred, beat_curve(truth.music, t))
    for name, sl in GUIDANCE_GROUPS.items():
        out[f"l1_{name}"] = float(err[:, sl].mean())
    return out


def truth_motion(truth: ClipPairs) -> dict[str, float]:
    """The ground truth's own motion energy and beat correlation (the reference for ``beat_corr``)."""
    e = motion_energy(truth.guidance.astype(np.float32) / 255.0)
    return {"motion": float(e.mean()) if len(e) else 0.0, "beat_corr": correlation(e, beat_curve(truth.music,
                                                                                                  len(truth)))}


def mean_baseline(train: Sequence[ClipPairs], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean guidance (11, S, S) in [0, 1] and mean heatmaps (18, S, S) over every training frame."""
    size = train[0].guidance.shape[-1]
    g = np.zeros(train[0].guidance.shape[1:], dtype=np.float64)
    h = np.zeros((train[0].keypoints.shape[1], size, size), dtype=np.float64)
    n = 0
    for c in train:
        g += c.guidance.astype(np.float64).sum(axis=0) / 255.0
        h += heatmaps_from_keypoints(c.keypoints, c.valid, size, sigma).sum(axis=0)
        n += len(c)
    return (g / n).astype(np.float32), (h / n).astype(np.float32)


def median_guidance(train: Sequence[ClipPairs]) -> np.ndarray:
    """Per-pixel median (11, S, S) in [0, 1] of every training frame (uint8 histograms: no frame stack in memory)."""
    shape = train[0].guidance.shape[1:]
    cells = int(np.prod(shape))
    counts = np.zeros(cells * 256, dtype=np.int64)
    base = np.arange(cells, dtype=np.int64) * 256
    for c in train:
        counts += np.bincount((base[None] + c.guidance.reshape(len(c), cells)).ravel(), minlength=cells * 256)
    cum = counts.reshape(cells, 256).cumsum(axis=1)
    med = (cum >= (cum[:, -1:] + 1) // 2).argmax(axis=1)
    return (med.reshape(shape) / 255.0).astype(np.float32)


def generator_pairs(clip, music30: np.ndarray, data: DataConfig, cache: Path, generator, seed: int = 0,
                    steps: int = 20) -> ClipPairs:
    """SDGPip guidance of the generator's dance for ``clip``'s music (cached in ``cache``)."""
    path = cache_path(cache, f"{clip.name}.generated")
    token = f"{generator.model_id}:seed{seed}:steps{steps}"
    pairs = load_pairs(path, data, token)
    if pairs is None:
        dance = generator(music30, clip.genre, seed=seed, steps=steps).record
        pairs = render_pairs(dance, music30[: dance.num_frames], data, clip.name)
        pairs.meta = {"split": clip.split, "genre": clip.genre, "generator": generator.model_id, "seed": seed}
        save_pairs(path, pairs, data, token)
    return pairs


def summarize_mean(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.nanmean(values))}


def evaluate(run_dir: str | Path, corpus: str | Path, cache: str | Path, train_cache: str | Path | None = None,
             generator_run: str | Path | None = None, split: str = "test", n_boot: int = 1000, seed: int = 0,
             generator_steps: int = 20, out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``run_dir`` on ``corpus``'s ``split`` clips; returns (and writes to ``out``) the report.

    ``cache``: where the test pairs and the generated dances' pairs are kept; ``train_cache``: the run's own
    pairs cache (for the mean baseline; default: the one recorded in the run). ``generator_run`` None: the
    shipped ``models/generator``.
    """
    from tqdm import tqdm

    from eval.bootstrap import bootstrap_ci, paired_difference_ci
    from generation.diffusion.pipeline import DancePipeline

    t_start = time.perf_counter()
    pipe = M2PEncPipeline.from_pretrained(run_dir)
    data = pipe.data
    cache = Path(cache)
    test = build_cache(corpus, cache, data, splits=(split,), tower=pipe.tower, progress=progress)
    if not test:
        raise InputError(corpus, f"no {split}-split clips to evaluate on", field="split", expected=f"{split} clips")
    train_cache = Path(train_cache or pipe.run_config.get("info", {}).get("cache", ""))
    train = [p for p in (load_pairs(f, data) for f in sorted(train_cache.glob("*.npz"))) if p is not None
             and split_of(p) == "train"] if train_cache.is_dir() else []
    if not train:
        raise InputError(train_cache, "no training pairs for the mean baseline", field="train_cache",
                         expected="the pairs cache the run was trained from")
    sigma = data.heat_sigma
    mean_g, mean_h = mean_baseline(train, sigma)
    median_g = median_guidance(train)
    gen_dir = _generator_dir(generator_run)
    generator = DancePipeline.from_pretrained(gen_dir)
    clips = {c.name: c for c in corpus_clips(corpus)}
    rows: list[dict[str, Any]] = []
    preds = [pipe.predict_features(truth.music_input()) for truth in test]
    for i, truth in enumerate(tqdm(test, desc="m2penc eval", unit="clip", disable=not progress)):
        clip = clips[truth.name]
        pred, other = preds[i], preds[(i + 1) % len(preds)]
        music30 = clip_music30(clip, cache / "music")
        gen = generator_pairs(clip, music30, data, cache, generator, seed=seed, steps=generator_steps)
        t = len(truth)
        gen_heat = heatmaps_from_keypoints(gen.keypoints, gen.valid, gen.guidance.shape[-1], sigma)
        rows.append({"clip": truth.name, "genre": clip.genre, "frames": t,
                     "m2penc": clip_metrics(pred.guidance, pred.heatmaps, truth, sigma),
                     "mean": clip_metrics(np.broadcast_to(mean_g, (t, *mean_g.shape)),
                                          np.broadcast_to(mean_h, (t, *mean_h.shape)), truth, sigma),
                     "median": clip_metrics(np.broadcast_to(median_g, (t, *median_g.shape)),
                                            np.broadcast_to(mean_h, (t, *mean_h.shape)), truth, sigma),
                     "generator": clip_metrics(gen.guidance.astype(np.float32) / 255.0, gen_heat, truth, sigma),
                     "m2penc_other_music": clip_metrics(_fit(other.guidance, t), _fit(other.heatmaps, t), truth,
                                                        sigma),
                     "truth": truth_motion(truth)})
    table = {s: {m: np.array([r[s][m] for r in rows]) for m in METRICS} for s in SYSTEMS}
    metrics = {}
    for s in SYSTEMS:
        metrics[s] = {}
        for m in METRICS:
            ci = bootstrap_ci(table[s][m], summarize_mean, n_boot=n_boot, seed=seed).get("mean")
            metrics[s][m] = {"mean": float(np.nanmean(table[s][m])), "ci95": ci}
    diffs = {}
    for other in ("mean", "median", "generator", "m2penc_other_music"):
        diffs[f"m2penc_minus_{other}"] = {
            m: paired_difference_ci(table["m2penc"][m], table[other][m], summarize_mean, n_boot=n_boot,
                                    seed=seed)["mean"] for m in METRICS}
    truth_beat = np.array([r["truth"]["beat_corr"] for r in rows])
    metrics["truth"] = {"beat_corr": {"mean": float(truth_beat.mean()),
                                      "ci95": bootstrap_ci(truth_beat, summarize_mean, n_boot=n_boot,
                                                           seed=seed).get("mean")},
                        "motion": {"mean": float(np.mean([r["truth"]["motion"] for r in rows]))}}
    diffs["m2penc_minus_truth"] = {"beat_corr": paired_difference_ci(table["m2penc"]["beat_corr"], truth_beat,
                                                                     summarize_mean, n_boot=n_boot, seed=seed)["mean"]}
    report = {"format": EVAL_FORMAT, "kind": "m2penc-eval", "run": str(Path(run_dir).resolve()),
              "model_id": pipe.model_id,
              "generator": generator.model_id, "corpus": str(Path(corpus).resolve()), "split": split,
              "clips": len(rows), "frames_per_clip": int(np.median([r["frames"] for r in rows])),
              "fps": data.fps, "size": data.size, "heat_sigma": sigma, "train_clips_for_mean": len(train),
              "generator_steps": generator_steps, "seed": seed, "bootstrap_replicates": n_boot,
              "metrics": metrics, "differences": diffs, "per_clip": rows,
              "machine": f"{platform.processor() or platform.machine()}, {cpu_model()}, torch CPU",
              "seconds": round(time.perf_counter() - t_start, 1)}
    if out is not None:
        atomic_write_json(out, report)
    return report


def _generator_dir(generator_run: str | Path | None) -> Path:
    """The generator run to compare with: the shipped ``models/generator`` unless one is given."""
    from generation.diffusion.cli import DEFAULT_RUN

    return Path(generator_run) if generator_run is not None else DEFAULT_RUN


def _fit(a: np.ndarray, t: int) -> np.ndarray:
    """``a`` cut or edge-padded to ``t`` frames (another clip's prediction may differ in length)."""
    return a[:t] if len(a) >= t else np.concatenate([a, np.repeat(a[-1:], t - len(a), axis=0)])


def comparison_video(run_dir: str | Path, corpus: str | Path, cache: str | Path, clip_name: str | None, out: str | Path,
                     generator_run: str | Path | None = None, seed: int = 0, generator_steps: int = 20,
                     scale: int = 4) -> dict[str, Any]:
    """MP4 of one test clip with its music: M2PEnc's prediction | the generator's dance's guidance | ground truth."""
    from generation.diffusion.pipeline import DancePipeline

    from ..compose import side_by_side
    from ..mp4 import write_mp4
    from .video import guidance_grid

    pipe = M2PEncPipeline.from_pretrained(run_dir)
    data, cache = pipe.data, Path(cache)
    clips = {c.name: c for c in corpus_clips(corpus)}
    names = sorted(n for n, c in clips.items() if c.split == "test")
    name = clip_name or (names[0] if names else None)
    if name not in clips:
        raise InputError(corpus, "no such clip", field="clip", expected="a clip name of the corpus", got=str(name))
    clip = clips[name]
    truth = build_cache(corpus, cache, data, splits=(clip.split,), tower=pipe.tower, progress=False)
    truth = next(p for p in truth if p.name == name)
    gen_dir = _generator_dir(generator_run)
    music30 = clip_music30(clip, cache / "music")
    gen = generator_pairs(clip, music30, data, cache, DancePipeline.from_pretrained(gen_dir), seed, generator_steps)
    pred = pipe.predict_features(truth.music_input())
    t = min(len(pred), len(gen), len(truth))
    s = data.size
    left = guidance_grid(pred.guidance[:t], pred.heatmaps[:t], scale)
    mid = guidance_grid(gen.guidance[:t], heatmaps_from_keypoints(gen.keypoints[:t], gen.valid[:t], s, data.heat_sigma),
                        scale)
    right = guidance_grid(truth.guidance[:t], heatmaps_from_keypoints(truth.keypoints[:t], truth.valid[:t], s,
                                                                       data.heat_sigma), scale)
    frames = side_by_side(side_by_side(left, _separator(left)), side_by_side(mid, _separator(mid)))
    frames = side_by_side(frames, right)
    info = write_mp4(list(frames), data.fps, out, audio=clip.audio)
    return {"out": str(out), "clip": name, "frames": t, "fps": data.fps, "size": list(frames.shape[1:3]),
            "columns": ["m2penc", "generator", "ground truth"], "duration_s": getattr(info, "duration_s", None)}


def _separator(frames: np.ndarray, width: int = 8) -> np.ndarray:
    return np.full((frames.shape[0], frames.shape[1], width, 3), 255, dtype=np.uint8)
