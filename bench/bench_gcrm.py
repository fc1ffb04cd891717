"""Benchmark: long dances on the demo test music, FineNet Table 3 style (issue 15, section 2).

Three strategies, paired on the same test music (one piece per genre, its first ``--seconds`` s):

- ``diffusion_long``: the generator's long-term sampling (4-s windows every 2 s, chained, one batch);
- ``gcrm_diffusion``: GCRM (eq. 5-6, alpha 1.0, beta 0.5, 5-frame cut + linear interpolation) over
  ``--candidates`` diffusion samples per 4-s segment (seeds seed .. seed + M - 1);
- ``gcrm_retrieval``: the same diffusion candidates plus ``--catalog-candidates`` train-split windows per
  segment retrieved by the text "a {genre} dance" and the segment's music (index + GS encoders).

Metrics (``dancesearch`` protocol): FID_k, FID_g, Div_k, Div_g and BAS of the dances cut into 4-s windows
(each moved to its canonical frame) against every real 4-s test window; GS (mean of eq. 3 over a dance's
4-s segments) per piece; jerk at the 4-s boundaries (max of the per-boundary mean joint jerk over each junction zone,
boundary +- cut + 2 frames; for long-term sampling the same instants) and its ratio to the dance's interior median jerk; time per dance and GCRM's parts. Reference:
GS of the real test pairs (the same pieces' real dances with their music, and every test window).

    python bench/bench_gcrm.py --home /work/dh [--pieces 12 --seconds 12 --candidates 4 --catalog-candidates 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402

STRATEGIES = ("diffusion_long", "gcrm_diffusion", "gcrm_retrieval")


def _med(xs):
    xs = [x for x in xs if x is not None]
    return float(statistics.median(xs)) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--generator", type=Path, default=ROOT / "models" / "generator")
    ap.add_argument("--gs", type=Path, default=ROOT / "models" / "gs")
    ap.add_argument("--pieces", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--catalog-candidates", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gcrm.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "results" / "gcrm.md")
    args = ap.parse_args()

    import numpy as np
    import torch

    from encoders.motion.record import MotionRecord
    from encoders.music.features import beat_times
    from generation.genre_match.mel import mel_of_file
    from generation.metrics.catalog_source import window_samples, window_store
    from generation.metrics.jerk import jerk
    from generation.metrics.sample import DanceSample
    from generation.metrics.suite import evaluate_generation
    from generation.representation.codec import decode, encode
    from generation.representation.layout import FPS
    from generation.stitching import GCRMPipeline
    from indexer.workspace import Workspace

    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    load0 = os.getloadavg()
    ws = Workspace(args.home)
    t0 = time.perf_counter()
    pipe = GCRMPipeline.from_pretrained(args.generator, args.gs, home=args.home, steps=args.steps,
                                        guidance=args.guidance, progress=True)
    load_s = time.perf_counter() - t0
    gen, scorer = pipe.generator, pipe.scorer
    frames = int(round(args.seconds * FPS))

    # one test piece per genre (the first test clip of each), first `frames` frames
    clips = [c for c in ws.catalog(create=False).clips(split="test") if c.audio_path and c.music_path]
    by_genre: dict[str, object] = {}
    for c in clips:
        by_genre.setdefault(c.genre, c)
    pieces = [by_genre[g] for g in sorted(by_genre)][:args.pieces]

    gt = window_samples(window_store(args.home), "test")
    preds: dict[str, list] = {s: [] for s in STRATEGIES}
    rows = []
    for p_i, clip in enumerate(pieces):
        music = np.load(ws.resolve(clip.music_path)).astype(np.float32)[:frames]
        n = len(music)
        mel = mel_of_file(ws.resolve(clip.audio_path), scorer.mel_config, frames=n)
        beats = beat_times(music)
        real = MotionRecord.load(ws.resolve(clip.motion_path)).slice(0, n)
        row = {"clip_id": clip.id, "key": clip.key, "genre": clip.genre, "frames": n,
               "gs_real": scorer.dance_gs(mel, real.positions)}
        out = {}
        t = time.perf_counter()
        out["diffusion_long"] = gen(music, clip.genre, seed=args.seed, steps=args.steps, guidance=args.guidance).record
        times = {"diffusion_long": time.perf_counter() - t}
        t = time.perf_counter()
        r = pipe(music, clip.genre, mel=mel, seed=args.seed, candidates=args.candidates, catalog_candidates=0)
        out["gcrm_diffusion"] = r.record
        times["gcrm_diffusion"] = time.perf_counter() - t
        row["gcrm_diffusion_timing"] = r.timing
        row["gcrm_diffusion_provenance"] = r.provenance
        t = time.perf_counter()
        r = pipe(music, clip.genre, mel=mel, text=f"a {clip.genre} dance", seed=args.seed,
                 candidates=args.candidates, catalog_candidates=args.catalog_candidates)
        out["gcrm_retrieval"] = r.record
        times["gcrm_retrieval"] = time.perf_counter() - t
        row["gcrm_retrieval_timing"] = r.timing
        row["gcrm_retrieval_provenance"] = r.provenance
        seams = [s for s in range(pipe.segment_frames, n - 2, pipe.segment_frames)]
        for s, rec in out.items():
            row[f"{s}_seconds"] = round(times[s], 3)
            row[f"{s}_gs"] = scorer.dance_gs(mel, rec.positions)
            sample = DanceSample(f"{clip.key}:{s}", rec.positions, FPS, rec.joint_names, beats)
            # the junction is 2 * cut interpolated frames around each boundary; its two ends are where a
            # discontinuity would show, so the boundary value is the max per-boundary jerk over the whole zone
            per_b = jerk(sample).mean(axis=1)                    # boundary b = row + 2
            bidx = np.arange(len(per_b)) + 2
            zone = np.zeros(len(per_b), bool)
            for sm in seams:
                zone |= np.abs(bidx - sm) <= pipe.cut + 2
            seam_vals = [float(per_b[np.abs(bidx - sm) <= pipe.cut + 2].max()) for sm in seams]
            interior_med = float(np.median(per_b[~zone]))
            row[f"{s}_seam_jerk"] = float(np.mean(seam_vals))
            row[f"{s}_seam_ratio"] = float(np.mean(seam_vals) / interior_med)
            row[f"{s}_mean_jerk"] = float(per_b[~zone].mean())
            for a in range(0, n - pipe.segment_frames + 1, pipe.segment_frames):     # 4-s windows, canonical
                feats, _ = encode(rec.slice(a, a + pipe.segment_frames), canonical=True)
                w = decode(feats)
                wb = beats[(beats >= a / FPS) & (beats < (a + pipe.segment_frames) / FPS)] - a / FPS
                preds[s].append(DanceSample(f"{clip.key}:{s}@{a}", w.positions, FPS, w.joint_names, wb))
        rows.append(row)
        print(f"[{p_i + 1}/{len(pieces)}] {clip.key} {clip.genre}: GS real {row['gs_real']:.3f} | "
              + " | ".join(f"{s} GS {row[f'{s}_gs']:.3f} seam x{row[f'{s}_seam_ratio']:.1f} {times[s]:.1f}s"
                           for s in STRATEGIES), flush=True)

    table = {}
    for s in STRATEGIES:
        ev = evaluate_generation(preds[s], gt, "dancesearch", per_sample=False)
        table[s] = {**{k: ev["metrics"][k] for k in ("fid_k", "fid_g", "div_k", "div_g", "bas")},
                    "gs_median": _med([r[f"{s}_gs"] for r in rows]),
                    "gs_mean": float(np.mean([r[f"{s}_gs"] for r in rows])),
                    "seam_jerk_median": _med([r[f"{s}_seam_jerk"] for r in rows]),
                    "seam_ratio_median": _med([r[f"{s}_seam_ratio"] for r in rows]),
                    "mean_jerk_median": _med([r[f"{s}_mean_jerk"] for r in rows]),
                    "seconds_median": _med([r[f"{s}_seconds"] for r in rows]),
                    "windows": len(preds[s])}
        gt_ref = ev["gt_reference"]
    prov = [p for r in rows for p in r["gcrm_retrieval_provenance"]]
    share = float(np.mean([p["source"] == "catalog" for p in prov]))
    paired = {}
    for a, b in (("gcrm_diffusion", "diffusion_long"), ("gcrm_retrieval", "gcrm_diffusion"),
                 ("gcrm_retrieval", "diffusion_long")):
        d = [r[f"{a}_gs"] - r[f"{b}_gs"] for r in rows]
        paired[f"{a}-{b}"] = {"gs_diff_median": _med(d), "wins": int(sum(x > 0 for x in d)), "pieces": len(d),
                              "seam_jerk_diff_median": _med([r[f"{a}_seam_jerk"] - r[f"{b}_seam_jerk"] for r in rows])}
    parts = {k: _med([r["gcrm_retrieval_timing"].get(k) for r in rows])
             for k in ("diffusion_s", "retrieval_s", "candidates_s", "scoring_s", "stitch_s", "total_s")}
    parts_d = {k: _med([r["gcrm_diffusion_timing"].get(k) for r in rows])
               for k in ("diffusion_s", "candidates_s", "scoring_s", "stitch_s", "total_s")}
    gs_ref = {"same_pieces_real_median": _med([r["gs_real"] for r in rows]),
              "same_pieces_real_mean": float(np.mean([r["gs_real"] for r in rows])),
              "all_test_windows": scorer.reference.get("test", {}).get("gs_real"),
              "all_test_windows_mismatched": scorer.reference.get("test", {}).get("gs_mismatched")}
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine_info(),
              "load_average_start": load0, "load_average_end": os.getloadavg(),
              "settings": {"home": str(args.home), "generator": gen.model_id, "gs": scorer.model_digest,
                           "pieces": len(pieces), "seconds": args.seconds, "candidates": args.candidates,
                           "catalog_candidates": args.catalog_candidates, "steps": args.steps,
                           "guidance": args.guidance, "seed": args.seed, "alpha": pipe.alpha, "beta": pipe.beta,
                           "cut": pipe.cut, "protocol": "dancesearch", "gt_windows": len(gt),
                           "query_text": "a {genre} dance", "threads": args.threads},
              "table": table, "gt_reference": gt_ref, "gs_reference": gs_ref, "paired": paired,
              "catalog_share_of_segments": share, "timing_gcrm_retrieval_parts_median_s": parts,
              "timing_gcrm_diffusion_parts_median_s": parts_d, "pipeline_load_s": round(load_s, 1),
              "pieces": rows, "total_s": round(time.perf_counter() - t_all, 1),
              "command": "python bench/bench_gcrm.py " + " ".join(sys.argv[1:])}
    atomic_write_json(args.out, result)
    atomic_write_text(args.md, markdown(result))
    print(json.dumps({"table": table, "gs_reference": gs_ref, "paired": paired, "parts": parts}, indent=1))
    return 0


def markdown(r: dict) -> str:
    s = r["settings"]
    f = lambda x, d=2: "–" if x is None else f"{x:.{d}f}"  # noqa: E731
    names = {"diffusion_long": "diffusion, long-term sampling", "gcrm_diffusion": f"GCRM over {s['candidates']} diffusion candidates",
             "gcrm_retrieval": f"GCRM over {s['candidates']} diffusion + {s['catalog_candidates']} retrieved"}
    lines = [
        "# Long dances: diffusion vs GCRM vs retrieval-augmented GCRM (issue 15, section 2)", "",
        f"Demo workspace test music: {s['pieces']} pieces (one per genre), the first {s['seconds']:g} s of each, "
        f"so {s['pieces']} dances per strategy, cut into {r['table']['diffusion_long']['windows']} 4-s windows for "
        f"FID / Div / BAS against all {s['gt_windows']} real 4-s test windows (`dancesearch` protocol). Generator "
        f"`{s['generator']}` (models/generator), DDIM {s['steps']} steps, guidance {s['guidance']:g}, seed {s['seed']}; "
        f"GCRM alpha {s['alpha']:g}, beta {s['beta']:g}, {s['cut']}-frame cut + linear interpolation; GS network "
        f"`{s['gs']}` (models/gs). Retrieved candidates: train-split windows only, query text "
        f"\"{s['query_text']}\" + the segment's music. Machine: {r['machine'].get('cpu', '')} "
        f"({r['machine'].get('cpu_count', '')} CPUs, torch threads {s['threads']}), load average "
        f"{r['load_average_start'][0]:.1f} at start, {r['load_average_end'][0]:.1f} at the end (shared machine).", "",
        "| strategy | FID_k ↓ | FID_g ↓ | Div_k | Div_g | BAS | GS ↑ (median) | jerk at 4-s boundaries, m/s³ (median) | boundary / interior median jerk | s per 12-s dance (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k, v in r["table"].items():
        lines.append(f"| {names[k]} | {f(v['fid_k'])} | {f(v['fid_g'])} | {f(v['div_k'])} | {f(v['div_g'])} | "
                     f"{f(v['bas'], 3)} | {f(v['gs_median'], 3)} | {f(v['seam_jerk_median'], 0)} | "
                     f"{f(v['seam_ratio_median'], 2)} | {f(v['seconds_median'], 1)} |")
    g = r["gt_reference"]
    ref = r["gs_reference"]
    lines.append(f"| real test dances (reference) | 0 | 0 | {f(g.get('div_k'))} | {f(g.get('div_g'))} | "
                 f"{f(g.get('bas'), 3)} | {f(ref['same_pieces_real_median'], 3)} | | | |")
    lines += ["", "## GS reference (real test pairs)", "",
              f"- the same {s['pieces']} pieces, real dance with its own music: median {f(ref['same_pieces_real_median'], 3)}, "
              f"mean {f(ref['same_pieces_real_mean'], 3)}",
              f"- every real test window with its own music (from training, models/gs/config.json): "
              f"{f(ref['all_test_windows'], 3)}; music with dances of other genres: {f(ref['all_test_windows_mismatched'], 3)}",
              "", "## Paired on the same music (per piece)", "",
              "| comparison | GS difference (median) | pieces where the first is higher | boundary jerk difference (median, m/s³) |",
              "|---|---:|---:|---:|"]
    for k, v in r["paired"].items():
        lines.append(f"| {k} | {f(v['gs_diff_median'], 3)} | {v['wins']} / {v['pieces']} | {f(v['seam_jerk_diff_median'], 0)} |")
    p = r["timing_gcrm_retrieval_parts_median_s"]
    pd = r["timing_gcrm_diffusion_parts_median_s"]
    lines += ["", f"Retrieval-augmented GCRM took {100 * r['catalog_share_of_segments']:.0f} % of its segments from "
              f"the catalog (the rest from diffusion).", "",
              f"## Time of one {s['seconds']:g}-s GCRM dance (median over pieces, seconds)", "",
              "| part | GCRM, diffusion only | GCRM + retrieval |", "|---|---:|---:|",
              f"| candidate generation: diffusion ({s['candidates']} seeds x {int(s['seconds'] // 4)} segments, one batch) | "
              f"{f(pd['diffusion_s'])} | {f(p['diffusion_s'])} |",
              f"| candidate generation: catalog retrieval | – | {f(p['retrieval_s'])} |",
              f"| GS + coherence scoring | {f(pd['scoring_s'])} | {f(p['scoring_s'])} |",
              f"| selection + stitching + decoding | {f(pd['stitch_s'])} | {f(p['stitch_s'])} |",
              f"| total | {f(pd['total_s'])} | {f(p['total_s'])} |", "",
              f"Loading the pipeline (generator, GS network, catalog window embeddings, index) took "
              f"{r['pipeline_load_s']} s once. The whole benchmark took {r['total_s']} s.", "",
              f"Command: `{r.get('command', 'python bench/bench_gcrm.py --home HOME')}` (writes "
              "bench/results/gcrm.json and this file); HOME is a workspace made by `dancesearch demo --once --home HOME`.",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
