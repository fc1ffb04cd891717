"""Benchmark: the generation window cache (issue 13) on a real catalog.

Measures, on the given workspace (e.g. the `make demo` one, ``.dancesearch``):
- cold build of the cache (every clip: load, FK, contacts, encode; arrays written) and the reopen of a
  finished one (hash of the catalog rows + manifest read);
- reading canonical 4-s windows one by one, and batches of 32 through ``WindowDataset`` + a torch
  ``DataLoader`` (num_workers 0), with the normaliser applied: windows/s against the ~22 windows/s a
  9M-parameter denoiser trains at on these 2 cores (``../shared/notes/generation.md``);
- fitting the normaliser on the train split; the cache's size on disk.
Median of ``--repeats`` runs where repeated; the machine and its load are recorded.

    python bench/bench_windows.py --home .dancesearch [--repeats 3] [--out bench/results/windows.json]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="workspace with an ingested catalog")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "windows.json")
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from generation.windows import WindowConfig, WindowDataset, cache_root, open_windows
    from indexer.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace(args.home)
    shutil.rmtree(cache_root(ws.home), ignore_errors=True)
    t0 = time.perf_counter()
    store = open_windows(ws, WindowConfig(), progress=False)
    build_s = time.perf_counter() - t0
    reopen = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        open_windows(ws, WindowConfig(), progress=False)
        reopen.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    norm = store.fit_normalizer("train")
    fit_s = time.perf_counter() - t0
    n_train = store.num_windows("train")
    single, batched = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for i in range(min(n_train, 1000)):
            store.window("train", i)
        single.append(min(n_train, 1000) / (time.perf_counter() - t0))
        loader = DataLoader(WindowDataset(store, "train", norm), batch_size=32, shuffle=True, num_workers=0)
        t0 = time.perf_counter()
        seen = 0
        for batch in loader:
            seen += len(batch["motion"])
            if seen >= 1000:
                break
        batched.append(seen / (time.perf_counter() - t0))
    size_mb = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file()) / 2**20
    result = {
        "benchmark": "generation window cache", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(), "home": str(ws.home), "splits": store.manifest["splits"],
        "windows": {s: store.num_windows(s) for s in ("train", "val", "test")},
        "left_out": len(store.manifest["left_out"]),
        "build_s": round(build_s, 2), "reopen_s_median": round(statistics.median(reopen), 3),
        "normaliser_fit_s": round(fit_s, 2),
        "windows_per_s_single_median": round(statistics.median(single), 1),
        "windows_per_s_dataloader_b32_median": round(statistics.median(batched), 1),
        "cache_mb": round(size_mb, 1),
        "denoiser_train_windows_per_s_reference": 22.5,
    }
    atomic_write_json(args.out, result)
    md = ["# Generation window cache", "",
          f"{result['date']}, {result['machine']['cpu']} ({result['machine']['cpu_count']} cores, load "
          f"{result['machine']['load_average_1m']:.1f}); catalog {ws.home}: "
          f"{sum(v['clips'] for v in store.manifest['splits'].values())} clips, windows train / val / test "
          f"{result['windows']['train']} / {result['windows']['val']} / {result['windows']['test']} (4 s, stride 1 s).",
          "", "| what | value |", "|---|---:|",
          f"| cold build | {result['build_s']} s |", f"| reopen (hash + manifest), median | {result['reopen_s_median']} s |",
          f"| normaliser fit (train) | {result['normaliser_fit_s']} s |",
          f"| windows/s, one by one, median | {result['windows_per_s_single_median']} |",
          f"| windows/s, DataLoader batch 32 + normaliser, median | {result['windows_per_s_dataloader_b32_median']} |",
          f"| a 9M denoiser trains at (notes) | {result['denoiser_train_windows_per_s_reference']} windows/s |",
          f"| cache on disk | {result['cache_mb']} MB |", ""]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
