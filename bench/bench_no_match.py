"""Query gate (issue 15): per-class accuracy on the held-out labelled queries and the false-gap rate on
every test-split caption of a workspace, with the gate fitted exactly as ``dancesearch index build`` fits it.

    .venv/bin/python bench/bench_no_match.py --home /work/dh [--out bench/results/no_match.json] [--select-features]

The workspace's index is not modified: the gate is fitted in memory (``query_gate.calibrate_gate`` on
the catalog's clips and captions, of served genres only as ``index build`` does, and the calib half of
indexer/assets/gate_queries/gate_*.jsonl), then evaluated on the heldout half and on the test captions
(never used by the fit: reference captions are train, the match bias is set on val).  Latency: the
gate's own cost per single query (the search adds it to a batch once).

``--select-features``: the search that chose ``query_gate.FEATURES`` and ``L2``: stratified 5-fold
cross-validation on the calib half only (the heldout half is not read), every non-empty subset of
``CANDIDATE_FEATURES`` x L2 in {1, 10}; each fold's model is ``query_gate.fit_gate_model`` on the other
folds' labelled rows plus every val caption (match bias included), scored on the fold's labelled rows;
a configuration's score is its worst-class accuracy over the pooled out-of-fold predictions (ties: mean
class accuracy).  Written under ``feature_selection`` of the report.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_text  # noqa: E402
from indexer.index import query_gate as qg  # noqa: E402
from indexer.index.embedder import encode_queries, load_embedder  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402


def select_features(data: qg.GateData, folds: int = 5, l2s: tuple[float, ...] = (1.0, 10.0),
                    seed: int = 0) -> dict[str, Any]:
    """Cross-validated worst-class accuracy of every feature subset x L2 (see the module docstring)."""
    lab = np.flatnonzero(data.origin == 0)
    caps = np.flatnonzero(data.origin == 1)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(lab), dtype=int)
    for k in range(len(qg.OUTCOMES)):   # stratified: each class dealt round-robin over the folds
        members = rng.permutation(np.flatnonzero(data.y[lab] == k))
        fold[members] = np.arange(len(members)) % folds
    rows = []
    t0 = time.perf_counter()
    for size in range(1, len(qg.CANDIDATE_FEATURES) + 1):
        for subset in itertools.combinations(qg.CANDIDATE_FEATURES, size):
            x = np.stack([data.feats[n] for n in subset], 1)
            for l2 in l2s:
                pred = np.zeros(len(lab), dtype=int)
                for f in range(folds):
                    tr = np.concatenate([lab[fold != f], caps])
                    model = qg.fit_gate_model(x[tr], data.y[tr], data.origin[tr], l2)
                    pred[fold == f] = qg.predict_gate_model(x[lab[fold == f]], model)
                acc = [float((pred[data.y[lab] == k] == k).mean()) for k in range(len(qg.OUTCOMES))]
                rows.append({"features": list(subset), "l2": l2, "worst_class": round(min(acc), 4),
                             "mean_class": round(float(np.mean(acc)), 4),
                             "per_class": dict(zip(qg.OUTCOMES, [round(a, 4) for a in acc]))})
    rows.sort(key=lambda r: (-r["worst_class"], -r["mean_class"], len(r["features"])))
    best = rows[0]["worst_class"]
    shipped = next(r for r in rows if r["features"] == list(qg.FEATURES) and r["l2"] == qg.L2)
    return {"folds": folds, "l2": list(l2s), "seed": seed, "configurations": len(rows),
            "labelled_calib_rows": int(len(lab)), "val_captions": int(len(caps)),
            "seconds": round(time.perf_counter() - t0, 1),
            "best_worst_class": best, "tying_best": sum(r["worst_class"] == best for r in rows),
            "shipped": {**shipped, "rank": rows.index(shipped) + 1},
            "top": rows[:15]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--run", default=None, help="model run (default: models/demo)")
    ap.add_argument("--out", default="bench/results/no_match.json")
    ap.add_argument("--select-features", action="store_true",
                    help="also run the cross-validated feature / L2 search on the calib half (about a minute)")
    args = ap.parse_args()
    missing = qg.missing_gate_data()
    if missing:
        print(f"the gate's data is missing: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    ws = Workspace(Path(args.home))
    cat = ws.catalog(create=False)
    emb = load_embedder(args.run)
    clips = cat.clips()
    caps = cat.captions_for([c.id for c in clips])
    genres = sorted({c.genre for c in clips if c.genre and (c.source or "") != qg.GENERATED_SOURCE})  # served
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
    dec = gate.classify(texts, encode_queries(emb, texts))
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
    tdec = gate.classify(test, encode_queries(emb, test))
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
    summary: dict[str, Any] = {"heldout": per_class, "false_gap_rate": report["test_captions"]["false_gap_rate"],
                               "latency_ms": report["latency_ms_per_query"]}
    if args.select_features:
        data = qg.prepare_gate(emb, clips, caps, genres)
        assert data is not None  # calibrate_gate fitted on the same inputs above
        report["feature_selection"] = sel = select_features(data)
        summary["feature_selection"] = {k: sel[k] for k in ("best_worst_class", "tying_best", "shipped")}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
