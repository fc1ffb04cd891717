"""Generate the demo corpus and write it as an npz folder (docs/DATA_FORMATS.md) ready for `ingest npz`.

Layout of DIR:
- ``<clip>.npz``: ``fps`` 30, ``poses`` (T, 52, 3) float16 SMPL-X local axis-angle, ``trans`` (T, 3)
  float32, ``audio`` = "<clip>.ogg", ``metadata`` = JSON {genre, dancer, bpm, split, tags, captions,
  first_beat_s}; one sequence of exactly one 12-s clip;
- ``<clip>.ogg``: 22050 Hz mono Ogg Vorbis of the synthesised music;
- ``captions.jsonl`` (``{"clip": "<clip>#0", "captions": [...], "tags": {...}}``), ``manifest.json``,
  ``DATASHEET.md``, ``tempo_histogram.png``.
Every file is written atomically; a clip depends only on (seed, clip index), so the result does not
depend on the worker count and re-running with the same seed rewrites the same arrays and metadata.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from encoders.atomic_io import atomic_save_npz, atomic_write_bytes, atomic_write_json, atomic_write_text

from .captions import captions_for
from .defaults import DEFAULT_CLIPS, DEFAULT_SEED
from .choreographer import Dance, choreograph
from .music import SR, scale_for, synthesize
from .plan import CLIP_SECONDS, FPS, SPLIT_FRACTIONS, ClipSpec, plan_corpus
from .taxonomy import GENRES, genre

VERSION = "1.0"
CAPTIONS_PER_CLIP = 5
OGG_COMPRESSION = 0.75        # libsndfile Vorbis compression level (higher = smaller, ~40-60 kbps here)
MANIFEST = "manifest.json"
CAPTIONS_FILE = "captions.jsonl"


@dataclass
class ClipResult:
    """What the main process needs of a written clip (for captions.jsonl, the datasheet and the bench)."""

    name: str
    split: str
    tags: dict
    captions: list[str]
    gen_seconds: float
    write_seconds: float
    bytes_written: int


def clip_tags(spec: ClipSpec, dance: Dance) -> dict:
    """TD-Data style tags of a generated clip (what the captions may state)."""
    g = genre(spec.genre)
    m = dance.moves
    return {
        "genre": spec.genre, "genre_family": g.family, "bpm": spec.bpm, "tempo": spec.tempo,
        "meter": f"{spec.meter}/4", "rhythm": spec.rhythm, "valence": spec.valence,
        "instrument": spec.instrument, "mode": scale_for(g, spec.valence), "energy": spec.energy, "fluidity": spec.fluidity,
        "intensity": spec.intensity, "spatial": spec.spatial, "emphasis": spec.emphasis,
        "arm_moves": m.get("arms", []), "torso_moves": m.get("torso", []), "hand_moves": m.get("hands", []),
        "leg_moves": m.get("travel", []) + m.get("turn", []) + m.get("level", []) + m.get("legs", []),
    }


def generate_clip(spec: ClipSpec) -> tuple[Dance, np.ndarray, dict, list[str]]:
    """(dance, audio, tags, captions) of one planned clip; pure function of the spec."""
    dance = choreograph(spec)
    audio = synthesize(spec)
    tags = clip_tags(spec, dance)
    rng = np.random.default_rng([*spec.seed, 3])
    caps = captions_for(tags, rng, held_out=spec.split == "test", count=CAPTIONS_PER_CLIP)
    return dance, audio, tags, caps


def clip_metadata(spec: ClipSpec, tags: dict, caps: list[str]) -> dict:
    return {"genre": spec.genre, "dancer": spec.dancer.name, "bpm": spec.bpm, "split": spec.split,
            "tags": tags, "captions": caps, "first_beat_s": spec.t0, "generator": f"dancesearch-procedural/{VERSION}"}


def encode_ogg(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="OGG", subtype="VORBIS", compression_level=OGG_COMPRESSION)
    return buf.getvalue()


def write_clip(spec: ClipSpec, out_dir: Path) -> ClipResult:
    """Generate one clip and write its npz + ogg atomically."""
    t0 = time.perf_counter()
    dance, audio, tags, caps = generate_clip(spec)
    t1 = time.perf_counter()
    ogg = encode_ogg(audio)
    atomic_write_bytes(out_dir / f"{spec.name}.ogg", ogg)
    meta = json.dumps(clip_metadata(spec, tags, caps), sort_keys=True)
    atomic_save_npz(out_dir / f"{spec.name}.npz", fps=np.float32(FPS), poses=dance.poses.astype(np.float16),
                    trans=dance.trans.astype(np.float32), audio=np.str_(f"{spec.name}.ogg"), metadata=np.str_(meta))
    t2 = time.perf_counter()
    size = (out_dir / f"{spec.name}.ogg").stat().st_size + (out_dir / f"{spec.name}.npz").stat().st_size
    return ClipResult(spec.name, spec.split, tags, caps, t1 - t0, t2 - t1, size)


def _worker_init() -> None:
    # one thread per worker: the machine's cores are shared by the worker processes
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def _write_star(args: tuple[ClipSpec, str]) -> ClipResult:
    return write_clip(args[0], Path(args[1]))


def _remove_stale(out_dir: Path, keep: set[str]) -> int:
    """Delete clip files a previous, larger run of this generator left (only when DIR holds our manifest)."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return 0
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return 0
    if not str(old.get("generator", "")).startswith("dancesearch-procedural"):
        return 0
    removed = 0
    for name in old.get("clips", []):
        if name not in keep:
            for ext in (".npz", ".ogg"):
                p = out_dir / f"{name}{ext}"
                if p.exists():
                    p.unlink()
                    removed += 1
    return removed


def write_demo_corpus(out_dir: str | Path, clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED, workers: int = 2,
                      progress: bool = True, datasheet: bool = True, only_split: str | None = None) -> dict:
    """Generate and write the demo corpus; returns the manifest (counts, timings, parameters).

    ``only_split`` writes just that split's clips of the ``clips``-clip plan. Why: a larger held-out test
    set (e.g. the 576 test clips of a 5760-clip plan with another seed) for evaluations that need more
    statistical power than the demo test split, without generating and ingesting the training clips.
    """
    from .datasheet import write_datasheet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan_corpus(clips, seed)
    if only_split is not None:
        if only_split not in ("train", *SPLIT_FRACTIONS):
            raise ValueError(f"only_split must be train, val or test, got {only_split!r}")
        specs = [s for s in specs if s.split == only_split]
        if not specs:
            raise ValueError(f"a {clips}-clip plan has no {only_split} clips")
    _remove_stale(out, {s.name for s in specs})
    start = time.perf_counter()
    jobs: Iterable[ClipResult]
    workers = max(1, min(int(workers), os.cpu_count() or 1, len(specs)))
    results: list[ClipResult] = []
    bar = tqdm(total=len(specs), desc="demo corpus", unit="clip", disable=not progress)
    if workers == 1:
        _worker_init()
        for s in specs:
            results.append(write_clip(s, out))
            bar.update(1)
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for r in pool.imap(_write_star, [(s, str(out)) for s in specs], chunksize=4):
                results.append(r)
                bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - start

    lines = [json.dumps({"clip": f"{r.name}#0", "captions": r.captions, "tags": r.tags}, sort_keys=True) for r in results]
    atomic_write_text(out / CAPTIONS_FILE, "\n".join(lines) + "\n")
    gen = np.array([r.gen_seconds for r in results])
    wrt = np.array([r.write_seconds for r in results])
    manifest = {
        "generator": f"dancesearch-procedural/{VERSION}", "version": VERSION, "seed": seed, "clips": [r.name for r in results],
        "num_clips": len(results), "clip_seconds": CLIP_SECONDS, "fps": FPS, "audio_sr": SR,
        "captions_per_clip": CAPTIONS_PER_CLIP, "workers": workers, "genres": [g.name for g in GENRES],
        "counts": {"split": _count(r.split for r in results), "genre": _count(r.tags["genre"] for r in results)},
        "timing": {"total_s": round(elapsed, 2), "per_clip_generate_median_ms": round(float(np.median(gen)) * 1000, 1),
                   "per_clip_write_median_ms": round(float(np.median(wrt)) * 1000, 1)},
        "bytes": int(sum(r.bytes_written for r in results)),
        "parameters": {"ogg_compression_level": OGG_COMPRESSION, "pose_dtype": "float16", "clip_frames": int(CLIP_SECONDS * FPS),
                       "planned_clips": clips, "only_split": only_split},
    }
    if datasheet:
        write_datasheet(out, results, manifest)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return dict(sorted(out.items()))
