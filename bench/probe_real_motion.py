"""Diagnosis: how fast do the corpus's dances move next to real ones, and does that decide what the model sees?

Prints (and writes with ``--json``) the median joint and root speed (``encoders.motion.kinematics.motion_activity``)
per genre of a workspace's clips (``--split``, e.g. the procedural corpus's test split) and of the real fixtures'
workspace (``--real-home``, made by ``dancesearch eval real-data --work DIR``), then the mean cosine of the real
CMU clips to the queries "breaking dance" and "salsa dance" after stretching their ground-plane extent
(``encoders.motion.augment.scale_ground_extent``) or replaying them faster or slower.

    python bench/probe_real_motion.py --home CORPUS_HOME --real-home REAL_WORK/home --run models/demo --json out.json
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from encoders.atomic_io import atomic_write_json  # noqa: E402
from encoders.motion.augment import scale_ground_extent  # noqa: E402
from encoders.motion.kinematics import motion_activity, resample_linear  # noqa: E402

QUERIES = ("breaking dance", "salsa dance")
CHANGES = (("as captured", None), ("ground extent 0.7x", ("extent", 0.7)), ("ground extent 1.4x", ("extent", 1.4)),
           ("played at 0.7x speed", ("speed", 0.7)), ("played at 1.3x speed", ("speed", 1.3)))


def changed(record, change):
    """The record with its ground extent stretched or its playback speed changed (positions only)."""
    if change is None:
        return record
    kind, factor = change
    pos = record.positions
    if kind == "extent":
        pos = scale_ground_extent(pos, factor)
    else:                                 # faster playback = the same motion resampled from a higher frame rate
        pos = resample_linear(pos, record.fps * factor, record.fps)
    pos = np.asarray(pos, dtype=np.float32)
    return dataclasses.replace(record, positions=pos, trans=pos[:, 0], rotations_6d=None)


def activity_by_genre(home: Path, split: str | None) -> dict[str, dict[str, float]]:
    from encoders.motion.record import MotionRecord
    from indexer.workspace import Workspace

    ws = Workspace(home)
    catalog = ws.catalog(create=False)
    try:
        by: dict[str, list[dict[str, float]]] = {}
        for clip in catalog.clips(split=split):
            rec = MotionRecord.load(ws.resolve(clip.motion_path))
            by.setdefault(clip.genre, []).append(motion_activity(rec.body22(), rec.fps))
    finally:
        catalog.close()
    return {g: {"clips": len(v), "joint_speed": float(np.median([x["joint_speed"] for x in v])),
                "root_speed": float(np.median([x["root_speed"] for x in v]))} for g, v in sorted(by.items())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", required=True, help="workspace of the procedural corpus")
    ap.add_argument("--split", default="test", help="its split to profile (default test)")
    ap.add_argument("--real-home", required=True, help="workspace of the real fixtures (eval real-data --work)")
    ap.add_argument("--run", default=None, help="retrieval run (default models/demo)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    from encoders.api import DanceEmbedder, DanceInput
    from eval.real_data import load_gallery

    out = {"procedural": activity_by_genre(Path(args.home), args.split),
           "real": activity_by_genre(Path(args.real_home), None)}
    gallery, records = load_gallery(Path(args.real_home))
    cmu = [r for c, r in zip(gallery, records) if c["source"] == "cmu"]
    embedder = DanceEmbedder.from_run(args.run)
    queries = embedder.encode_text(list(QUERIES))
    out["model"] = embedder.model_id
    out["cmu_clips"] = len(cmu)
    out["changes"] = {}
    for label, change in CHANGES:
        emb = embedder.encode_dances([DanceInput(changed(r, change), None) for r in cmu])
        out["changes"][label] = {q: float((emb @ v).mean()) for q, v in zip(QUERIES, queries)}
    for side in ("procedural", "real"):
        print(f"{side}: " + ", ".join(f"{g} {v['joint_speed']:.2f}/{v['root_speed']:.2f}"
                                      for g, v in out[side].items()) + "  (median joint / root m/s)")
    for label, cos in out["changes"].items():
        print(f"{out['cmu_clips']} CMU clips {label}: " + ", ".join(f"{q} {c:.3f}" for q, c in cos.items()))
    if args.json:
        atomic_write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
