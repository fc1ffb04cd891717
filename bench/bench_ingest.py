"""Benchmark: ingestion throughput (clips per second) of ``indexer.ingest``.

Why: ingest bounds how fast a new corpus becomes searchable; its costs are motion conversion (FK),
music analysis (once per sequence, then cached), and writing three files per clip (motion npz,
features npy, ogg audio). Re-ingesting unchanged data should be cheap (media are not rewritten).

Scenarios, each in a fresh workspace:
- ``npz+audio``: a synthetic npz folder (SMPL-X axis-angle poses + 44.1 kHz wav click tracks), cold
  (empty feature cache) and then re-ingested unchanged;
- ``npz motion only``: the same motion without audio;
- ``bvh (shared)``: the real CMU BVH fixtures in ../shared/data/bvh, when present.
One untimed warm-up ingest of a tiny folder runs first (librosa / numba compile on first use).

Writes bench/results/ingest.json (atomically) and prints a markdown table.
Usage: python bench/bench_ingest.py [--sequences 6] [--seconds 60]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from bench.machine import cpu_model  # noqa: E402
from encoders.atomic_io import atomic_write_json  # noqa: E402
from indexer.ingest import ingest  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402

SHARED_DATA = Path(os.environ.get("DANCESEARCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
RESULT_PATH = PROJECT_ROOT / "bench" / "results" / "ingest.json"


def make_npz_folder(folder: Path, sequences: int, seconds: float, with_audio: bool, seed: int = 0) -> None:
    """``sequences`` npz files of ``seconds`` s at 30 fps (52-joint axis-angle), optionally with a wav each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sr = 44100
    for k in range(sequences):
        t_count = int(seconds * 30)
        phase = np.sin(np.linspace(0, seconds, t_count))[:, None, None]
        poses = (0.3 * phase * rng.normal(size=(1, 52, 3))).astype(np.float32)
        trans = np.zeros((t_count, 3), np.float32)
        trans[:, 1] = 0.95
        arrays = {"fps": np.float32(30), "poses": poses, "trans": trans,
                  "metadata": np.asarray(json.dumps({"genre": ["waltz", "salsa", "tango"][k % 3]}))}
        if with_audio:
            bpm = 90 + 10 * k
            t = np.arange(int(seconds * sr)) / sr
            y = 0.05 * np.sin(2 * np.pi * 220 * t)
            for b in np.arange(0, seconds, 60 / bpm):
                i = int(b * sr)
                y[i:i + 600] += 0.6 * np.hanning(1200)[600:][: len(y) - i]
            sf.write(folder / f"seq{k:03d}.wav", y.astype(np.float32), sr)
            arrays["audio"] = np.asarray(f"seq{k:03d}.wav")
        np.savez(folder / f"seq{k:03d}.npz", **arrays)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(ws: Workspace, kind: str, path: Path) -> dict:
    t0 = time.perf_counter()
    report = ingest(ws, kind, path, progress=False)
    dt = time.perf_counter() - t0
    return {"seconds": round(dt, 3), "sequences": report.sequences, "clips": report.clips,
            "failed": len(report.failed), "unchanged": report.unchanged,
            "clips_per_s": round(report.clips / dt, 2) if dt > 0 else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    rows: list[dict] = []
    try:
        warm = tmp / "warm"
        make_npz_folder(warm, 1, 13.0, with_audio=True, seed=99)
        ingest(Workspace(tmp / "warm_home"), "npz", warm, progress=False)   # compile librosa / numba once

        audio_dir, motion_dir = tmp / "npz_audio", tmp / "npz_motion"
        make_npz_folder(audio_dir, args.sequences, args.seconds, with_audio=True)
        make_npz_folder(motion_dir, args.sequences, args.seconds, with_audio=False)

        ws = Workspace(tmp / "home_audio")
        cold = timed(ws, "npz", audio_dir)
        media = ws.media_dir
        cold["bytes_per_clip"] = int(dir_bytes(media) / max(1, cold["clips"]))
        rows.append({"scenario": "npz+audio, cold", **cold})
        rows.append({"scenario": "npz+audio, re-ingest unchanged", **timed(ws, "npz", audio_dir)})
        shutil.rmtree(ws.media_dir)
        rows.append({"scenario": "npz+audio, media deleted (feature cache warm)", **timed(ws, "npz", audio_dir)})

        ws2 = Workspace(tmp / "home_motion")
        r = timed(ws2, "npz", motion_dir)
        r["bytes_per_clip"] = int(dir_bytes(ws2.media_dir) / max(1, r["clips"]))
        rows.append({"scenario": "npz motion only, cold", **r})

        bvh = SHARED_DATA / "bvh"
        if bvh.is_dir():
            ws3 = Workspace(tmp / "home_bvh")
            r = timed(ws3, "bvh", bvh)
            r["bytes_per_clip"] = int(dir_bytes(ws3.media_dir) / max(1, r["clips"]))
            rows.append({"scenario": "bvh (shared CMU, 32 files, 120 fps)", **r})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "benchmark": "ingest throughput",
        "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "synthetic": {"sequences": args.sequences, "seconds_per_sequence": args.seconds, "clip_seconds": 12.0},
        "rows": rows,
    }
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULT_PATH, result)
    print(f"Ingest throughput ({result['cpu']}, {result['cpu_count']} CPUs, load {result['load_average_1m']})\n")
    print("| scenario | sequences | clips | failed | seconds | clips/s | bytes/clip |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['sequences']} | {r['clips']} | {r['failed']} | {r['seconds']} | "
              f"{r['clips_per_s']} | {r.get('bytes_per_clip', '')} |")
    print(f"\nwritten {RESULT_PATH.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
