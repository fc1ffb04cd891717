"""ANN recall@10 of the queries ``bench_api.py`` sends, through each text encoder, on the index it builds.

``bench_api.py`` tunes ANN indexes at build time on 500 seed captions (as ``dancesearch index build``
does on val captions).  The load test then sends *other* texts (captions with prefixes and
modifiers), through the full or the fast query encoder.  This script checks that the recall the
target asks for holds for those queries: it builds the same workspace (same growth, same tuning),
encodes ``--queries`` distinct bench queries with each encoder, and compares the index's top 10 with
exact search over the same vectors.

    python bench/bench_api_recall.py --seed-home /tmp/train_home2 --sizes 100000 1000000
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_api  # noqa: E402
from machine import machine_info  # noqa: E402

from indexer.index import auto_kind, load_index  # noqa: E402
from indexer.index.embedder import load_embedder  # noqa: E402


def recall_at_10(home: Path, queries: list[str], run: str | None) -> dict[str, float]:
    idx = load_index(home / "indexes" / "default").index
    x = np.asarray(idx.vectors(), dtype=np.float32)
    ids = np.asarray(idx.attributes().ids)
    out = {}
    for encoder in ("full", "fast"):
        q = load_embedder(run, text_encoder=encoder).encode_text(queries)
        hits = idx.search(q, 10, None)
        exact = np.argpartition(-(q @ x.T), 10, axis=1)[:, :10]
        out[encoder] = round(float(np.mean([len({c for c, _ in hits.row(r)} & set(ids[exact[r]].tolist())) / 10
                                            for r in range(len(queries))])), 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-home", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--run", default=None)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("bench/results/api_recall.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        kind = auto_kind(n)
        with tempfile.TemporaryDirectory(prefix="dsrecall-") as tmp:
            home = Path(tmp) / "ws"
            t = time.perf_counter()
            _, caps, info = bench_api.build_workspace(home, args.seed_home, n, kind, args.run)
            queries = bench_api.DistinctQueries(caps, seed=99).take(args.queries)
            rec = recall_at_10(home, queries, args.run)
            rows.append({"n": n, "kind": kind, "params": info["params"], "tuning": info["tuned"],
                         "recall_at_10_bench_queries": rec, "seconds": round(time.perf_counter() - t, 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out = {"benchmark": "api_recall", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "command": "python bench/bench_api_recall.py " + " ".join(sys.argv[1:]), "machine": machine_info(),
           "queries": f"{args.queries} distinct bench_api queries (seed 99), none used for tuning", "results": rows}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
