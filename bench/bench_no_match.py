"""Query gate (issue 15): per-class accuracy on the held-out labelled queries and the false-gap rate on
every test-split caption of a workspace, with the gate fitted exactly as ``dancesearch index build`` fits it.

    .venv/bin/python bench/bench_no_match.py --home /work/dh [--out bench/results/no_match.json]

The workspace's index is not modified: the gate is fitted in memory (``query_gate.calibrate_gate`` on
the catalog's clips and captions and the calib half of eval/queries/gate_*.jsonl), then evaluated on the
heldout half and on the test captions (never used by the fit: reference captions are train, the match
bias is set on val).  Latency: the gate's own cost per single query (the search adds it to a batch once).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_info  # noqa: E402
from indexer.index import query_gate as qg  # noqa: E402
from indexer.index.embedder import load_embedder  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--run", default=None, help="model run (default: models/demo)")
    ap.add_argument("--out", default="bench/results/no_match.json")
    args = ap.parse_args()
    ws = Workspace(Path(args.home))
    cat = ws.catalog(create=False)
    emb = load_embedder(args.run)
    clips = cat.clips()
    caps = cat.captions_for([c.id for c in clips])
    genres = sorted({c.genre for c in clips if c.genre})
    t0 = time.perf_counter()
    fitted = qg.calibrate_gate(emb, clips, caps, genres)
    fit_s = time.perf_counter() - t0
    if fitted is None:
        print("the gate could not be fitted (no labelled data, captions or static space)", file=sys.stderr)
        return 1
    params, arrays = fitted
    gate = qg.QueryGate(params, arrays)
    held = qg.read_labelled(split="heldout")
    texts = [r["text"] for r in held]
    dec = gate.classify(texts, emb.encode_text(texts))
    per_class, confusion, errors = {}, {}, []
    for o in qg.OUTCOMES:
        rows = [(r, d) for r, d in zip(held, dec) if r["label"] == o]
        per_class[o] = {"n": len(rows), "accuracy": round(sum(d.outcome == o for _, d in rows) / len(rows), 4)}
        confusion[o] = {p: sum(d.outcome == p for _, d in rows) for p in qg.OUTCOMES}
        errors += [{"text": r["text"], "label": o, "predicted": d.outcome} for r, d in rows if d.outcome != o]
    gap_rows = [(r, d) for r, d in zip(held, dec) if r["label"] == "gap"]
    named = [(r, d) for r, d in gap_rows if gate.unserved_names.find(r["text"])]
    unnamed = [(r, d) for r, d in gap_rows if not gate.unserved_names.find(r["text"])]
    acc = lambda rows: round(sum(d.outcome == "gap" for _, d in rows) / len(rows), 4) if rows else None  # noqa: E731
    test = [t for c in clips if c.split == "test" and (c.source or "") != qg.GENERATED_SOURCE for t in caps.get(c.id, [])]
    tdec = gate.classify(test, emb.encode_text(test))
    flagged = [(t, d.outcome) for t, d in zip(test, tdec) if d.outcome != "match"]
    q = emb.encode_text(["a fast salsa with spins"])
    gate.classify(["warm up"], q)
    t1 = time.perf_counter()
    for _ in range(200):
        gate.classify(["a fast salsa with spins"], q)
    gate_ms = (time.perf_counter() - t1) / 200 * 1000
    report = {
        "bench": "no_match", "workspace": str(args.home), "model": emb.model_id, "machine": machine_info(),
        "gate": {k: params[k] for k in ("method", "features", "match_bias", "reference_captions")},
        "fit": {**params["calibration"], "seconds": round(fit_s, 1)},
        "heldout": {"per_class": per_class, "confusion": confusion,
                    "gap_naming_a_listed_style": {"n": len(named), "accuracy": acc(named)},
                    "gap_not_naming_a_listed_style": {"n": len(unnamed), "accuracy": acc(unnamed)},
                    "errors": errors},
        "test_captions": {"n": len(test), "flagged": len(flagged),
                          "false_gap_rate": round(len(flagged) / max(len(test), 1), 4),
                          "false_gap_or_not_dance_examples": flagged[:20]},
        "latency_ms_per_query": round(gate_ms, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"heldout": per_class, "false_gap_rate": report["test_captions"]["false_gap_rate"],
                      "latency_ms": report["latency_ms_per_query"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
