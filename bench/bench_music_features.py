"""Benchmark: 35-d music feature extraction time per 12-second clip (the TD-Data clip length).

Why: ingesting a corpus analyses every clip's audio once (then the cache serves it), so the
per-clip cost bounds ingest throughput on the CPU-only machines DanceSearch targets.

Input: the real recordings in ../shared/data/music (or $DANCESEARCH_SHARED_DATA/music) cut into
consecutive 12-s pieces at their native 44.1 kHz stereo (the extractor's downmix and resampling
are part of the measured cost); synthetic 12-s clips (chords + clicks) when that folder is
absent. Each clip is timed through ``analyse_signal`` (all 35 columns + tempo + beats), after
one untimed warm-up call (librosa / numba compile on first use), plus a per-stage breakdown.

Writes bench/results/music_features.json (atomically) and prints a markdown table.
Usage: python bench/bench_music_features.py [--clip-seconds 12] [--max-clips N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import librosa  # noqa: E402

from bench.machine import cpu_model  # noqa: E402
from encoders.atomic_io import atomic_write_json  # noqa: E402
from encoders.music import features as F  # noqa: E402
from encoders.music.audio import audio_segment, load_audio, resample  # noqa: E402

SHARED_DATA = Path(os.environ.get("DANCESEARCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
RESULT_PATH = PROJECT_ROOT / "bench" / "results" / "music_features.json"


def real_clips(clip_s: float) -> tuple[list[tuple[str, np.ndarray, int]], str]:
    """Consecutive full-length clip_s pieces of every real recording, (name, y (ch, n), sr)."""
    folder = SHARED_DATA / "music"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".ogg", ".wav", ".flac", ".mp3"}) \
        if folder.is_dir() else []
    clips = []
    for path in files:
        y, sr = load_audio(path, mono=False)
        n_pieces = int(y.shape[-1] // (clip_s * sr))
        for k in range(n_pieces):
            clips.append((f"{path.stem[:28]}#{k}", audio_segment(y, sr, k * clip_s, (k + 1) * clip_s), sr))
    return clips, f"real: {len(files)} recordings in {folder}"


def synthetic_clips(clip_s: float, count: int = 8) -> tuple[list[tuple[str, np.ndarray, int]], str]:
    sr = 44100
    rng = np.random.default_rng(0)
    t = np.arange(int(clip_s * sr)) / sr
    clips = []
    for k in range(count):
        bpm = 80 + 15 * k
        f0 = 196.0 * 2 ** (k / 12)
        y = 0.2 * (np.sin(2 * np.pi * f0 * t) + np.sin(2 * np.pi * 1.5 * f0 * t))
        for beat in np.arange(0.1, clip_s, 60 / bpm):
            i = int(beat * sr)
            n = min(1000, y.size - i)
            y[i:i + n] += rng.normal(0, 0.5, n) * np.exp(-np.arange(n) / 200)
        y = y.astype(np.float32)
        clips.append((f"synthetic{k}_{bpm}bpm", np.stack([y, y]), sr))
    return clips, "synthetic (../shared/data absent)"


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stage_times(y: np.ndarray, sr: int) -> dict[str, float]:
    """Seconds spent per stage of analyse_signal on one clip (for where-the-time-goes)."""
    out: dict[str, float] = {}
    mono = y.mean(axis=0) if y.ndim == 2 else y
    out["resample"], y15 = timed(lambda: resample(mono, sr, F.FEATURE_SR))
    out["onset_envelope"], env = timed(lambda: F._envelope(y15))
    out["mfcc"], _ = timed(lambda: librosa.feature.mfcc(y=y15, sr=F.FEATURE_SR, n_mfcc=F.N_MFCC, hop_length=F.HOP))
    out["chroma_cens"], _ = timed(lambda: librosa.feature.chroma_cens(y=y15, sr=F.FEATURE_SR, hop_length=F.HOP,
                                                                      n_chroma=F.N_CHROMA))
    out["onset_peaks"], _ = timed(lambda: librosa.onset.onset_detect(onset_envelope=env, sr=F.FEATURE_SR,
                                                                     hop_length=F.HOP))
    out["tempo"], bpm = timed(lambda: F.estimate_tempo(y15))
    out["beats"], _ = timed(lambda: F._beats(env, float(bpm)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip-seconds", type=float, default=12.0)
    ap.add_argument("--max-clips", type=int, default=0, help="0 = all")
    args = ap.parse_args(argv)

    clips, source = real_clips(args.clip_seconds)
    if not clips:
        clips, source = synthetic_clips(args.clip_seconds)
    if args.max_clips:
        clips = clips[:args.max_clips]

    F.analyse_signal(clips[0][1], clips[0][2])  # warm-up: numba compilation, FFT plans
    per_clip = []
    stages: dict[str, list[float]] = {}
    for name, y, sr in clips:
        seconds, analysis = timed(lambda: F.analyse_signal(y, sr))
        per_clip.append({"clip": name, "seconds": round(seconds, 4), "frames": analysis.num_frames,
                         "bpm": round(analysis.bpm, 2)})
        for stage, s in stage_times(y, sr).items():
            stages.setdefault(stage, []).append(s)

    times = [c["seconds"] for c in per_clip]
    summary = {
        "clip_seconds": args.clip_seconds,
        "clips": len(clips),
        "source": source,
        "median_s": round(statistics.median(times), 4),
        "mean_s": round(statistics.fmean(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "realtime_factor": round(args.clip_seconds / statistics.median(times), 1),
        "stage_median_s": {k: round(statistics.median(v), 4) for k, v in stages.items()},
    }
    result = {
        "benchmark": "music_features",
        "what": "encoders.music.features.analyse_signal on 44.1 kHz stereo clips (downmix, resample to "
                "15360 Hz, 35 columns, tempo, beats); single process, after one warm-up call",
        "summary": summary,
        "per_clip": per_clip,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "librosa": librosa.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(RESULT_PATH, result)

    print(f"Music features, {summary['clips']} clips of {args.clip_seconds:g} s ({source})\n")
    print("| statistic | seconds per clip |")
    print("|---|---|")
    for key in ("median_s", "mean_s", "min_s", "max_s"):
        print(f"| {key[:-2]} | {summary[key]:.3f} |")
    print(f"| real-time factor (median) | {summary['realtime_factor']}x |")
    print("\n| stage | median seconds |")
    print("|---|---|")
    for stage, s in summary["stage_median_s"].items():
        print(f"| {stage} | {s:.4f} |")
    m = result["machine"]
    print(f"\nmachine: {m['nproc']} CPUs ({m['cpu_model']}), python {m['python']}, librosa {m['librosa']}")
    print(f"written: {RESULT_PATH.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
