"""Choose a generator checkpoint by its samples on the val split, not by its validation x0 error (issue 14).

Why: v8 reached a lower validation x0 error than v7 at nearly every evaluation and still sampled worse (FID_k +11,
Div_k -22%; ``docs/results/generation.md``): the x0 loss is minimised by the conditional mean, so the checkpoint it
picks can be the one closest to an average dance. A run trained with ``snapshot_every`` keeps its weights every N
steps; this script samples every kept snapshot (and the run's own ``model.pt``) on the **val** split, so the test
split stays untouched for the paired comparison that decides shipping, and ranks them:

- FID_k and FID_g of one generated window per val window (its music and genre, DDIM ``--steps``, ``--guidance``;
  the same seeds for every checkpoint), against the real val windows, protocol ``dancesearch``;
- Div_k's distance from the real val windows' own Div_k, relative to it;
- genre control: ``--control-music`` val music windows x every genre, judged by the motion genre classifier fitted
  on the train windows (the control test of ``ablate_generator.py compare``, on val music).

``--average-last 2,4`` adds, as candidates, the mean weights of the last 2 and of the last 4 snapshots
(``run_dir.average_snapshots``: checkpoint averaging, a post-hoc stand-in for the EMA of the weights that the
recipes do not keep).

The selection rule is fixed here, before any result: the checkpoint with the lowest mean rank over FID_k (low is
better), FID_g (low), |Div_k - real| / real (low) and control (high); ties go to the later step, then to the
candidate that averages fewer snapshots. ``--export DIR``
writes the chosen checkpoint as a run directory of its own (``run_dir.export_checkpoint``), ready for
``ablate_generator.py compare`` on the test split.

    python bench/select_checkpoint.py --home .dancesearch --run RUN --control-music 6 --average-last 2,4 \\
        --threads 2 --export RUN_SELECTED --out bench/results/checkpoint_selection_v9.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RANKED = (("fid_k", 1), ("fid_g", 1), ("div_k_gap", 1), ("control", -1))
"""The selection criteria and their direction (1: lower is better, -1: higher is better)."""
RULE = ("lowest mean rank over fid_k, fid_g, div_k_gap, control; ties to the later step, then to the candidate "
        "averaging fewer snapshots")


def mean_ranks(rows: Sequence[dict[str, Any]], criteria: Sequence[tuple[str, int]] = RANKED) -> list[float]:
    """Each row's mean rank (1 = best) over ``criteria`` (key, 1 if lower is better else -1); equal values share
    their mean rank, and a missing or non-finite value ranks after every finite one (all such rows sharing one)."""
    ranks = np.zeros(len(rows))
    for key, sign in criteria:
        values = np.array([sign * r[key] if r.get(key) is not None and np.isfinite(r[key]) else np.inf
                           for r in rows])
        order = np.argsort(values, kind="stable")
        rank = np.empty(len(rows))
        rank[order] = np.arange(1, len(rows) + 1)
        for v in np.unique(values):
            rank[values == v] = rank[values == v].mean()
        ranks += rank
    return list(ranks / len(criteria))


def choose(rows: Sequence[dict[str, Any]]) -> int:
    """Index of the row ``RULE`` picks."""
    ranks = mean_ranks(rows)
    return min(range(len(rows)), key=lambda i: (ranks[i], -(rows[i]["step"] or 0), len(rows[i]["steps"])))


def candidate_list(snapshots: Sequence[int], best_step: int | None, average_last: Sequence[int]
                   ) -> list[dict[str, Any]]:
    """Every snapshot, the run's ``model.pt`` unless it is one of them, and the means of the last k snapshots."""
    out = [{"checkpoint": str(s), "steps": [s], "step": s} for s in snapshots]
    if best_step is None or best_step not in snapshots:
        out.append({"checkpoint": "model.pt", "steps": [], "step": best_step})
    for k in sorted(set(average_last)):
        last = list(snapshots[-k:])
        out.append({"checkpoint": f"mean of last {k}", "steps": last, "step": last[-1]})
    return out


class ValSetting:
    """What every candidate is scored against: the val windows, their real Div_k, the control judge and music."""

    def __init__(self, home: Path, windows: int | None, control_music: int) -> None:
        from bench.ablate_generator import control_music_indices, spread_indices
        from encoders.errors import DanceSearchError
        from generation.metrics.catalog_source import window_samples, window_store
        from generation.metrics.genre_control import MotionGenreClassifier

        self.store = window_store(home)
        n_val = self.store.num_windows("val")
        if n_val < 2:
            raise DanceSearchError(f"the catalog at {home} has {n_val} val windows: FID and Div need at least 2")
        self.n_val = n_val
        self.indices = spread_indices(n_val, windows)
        all_val = window_samples(self.store, "val")
        self.real = [all_val[i] for i in self.indices]
        train = window_samples(self.store, "train")
        if not train:
            raise DanceSearchError(f"the catalog at {home} has no train windows to fit the control judge on")
        self.train_windows = len(train)
        self.judge = MotionGenreClassifier.fit(train, [s.meta["genre"] for s in train])
        self.music_indices = control_music_indices(n_val, control_music)
        self.music = np.stack([self.store.window("val", i).music for i in self.music_indices])


def score_candidate(pipe, val: ValSetting, steps: int, guidance: float, seed: int,
                    genre_guidance: float | None = None, stochastic: bool = False) -> dict[str, Any]:
    """FID_k, FID_g, Div_k (and its distance from the real val windows'), BAS and control of one checkpoint
    sampled one way (``bench/select_sampling.py`` scores sampling settings with it too)."""
    from bench.ablate_generator import PROTOCOL
    from generation.diffusion.evaluate import generate_for_split
    from generation.metrics.genre_control import control_hits_by
    from generation.metrics.suite import evaluate_generation

    gen, gen_s = generate_for_split(pipe, val.store, "val", steps, guidance, seed, indices=val.indices,
                                    genre_guidance=genre_guidance, stochastic=stochastic)
    scored = evaluate_generation(gen, val.real, PROTOCOL, per_sample=False, with_physical=False)
    real_div_k = scored["gt_reference"]["div_k"]
    hits = control_hits_by(pipe, {"control": val.judge}, val.music, seed + 1, steps, guidance, genre_guidance,
                           stochastic)["control"]
    m = scored["metrics"]
    gap = abs(m["div_k"] - real_div_k) / real_div_k if m.get("div_k") is not None and real_div_k else None
    return {"fid_k": m.get("fid_k"), "fid_g": m.get("fid_g"), "div_k": m.get("div_k"), "div_k_gap": gap,
            "real_div_k": real_div_k, "bas": m.get("bas"), "control": float(hits.mean()), "seconds": round(gen_s, 1)}


def load_candidate(run: Path, cand: dict[str, Any]):
    """The pipeline of one candidate: a snapshot, the run's ``model.pt``, or the mean of several snapshots."""
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.run_dir import average_snapshots

    pipe = DancePipeline.from_pretrained(run, snapshot=cand["steps"][0] if len(cand["steps"]) == 1 else None)
    if len(cand["steps"]) > 1:
        pipe.model.load_state_dict(average_snapshots(run, cand["steps"]))
        pipe.model_id = f"{pipe.model_id}-mean-{'-'.join(map(str, cand['steps']))}"
    return pipe


def score_checkpoints(home: Path, run: Path, windows: int | None, control_music: int, steps: int, guidance: float,
                      seed: int, threads: int, average_last: Sequence[int] = ()) -> dict[str, Any]:
    """Score every candidate of ``run`` on the val split and pick one by ``RULE`` (module docstring)."""
    import torch
    from tqdm import tqdm

    from bench.ablate_generator import PROTOCOL
    from bench.machine import machine_info
    from encoders.errors import DanceSearchError
    from generation.diffusion.run_dir import list_snapshots, read_history, val_error_at

    torch.set_num_threads(max(1, threads))
    t_start = time.perf_counter()
    snapshots = list_snapshots(run)
    if not snapshots:
        raise DanceSearchError(f"{run} kept no snapshots: train it with train.snapshot_every > 0 "
                               "(e.g. generation/diffusion/recipes/cpu_v9.json)")
    bad = [k for k in average_last if not 2 <= k <= len(snapshots)]
    if bad:
        raise DanceSearchError(f"--average-last {bad[0]}: k must be within 2..{len(snapshots)} (the snapshots "
                               f"{run} kept)")
    history = read_history(run)
    best_step = json.loads((run / "config.json").read_text()).get("data", {}).get("best_step")
    val = ValSetting(home, windows, control_music)
    rows: list[dict[str, Any]] = []
    for cand in tqdm(candidate_list(snapshots, best_step, average_last), desc="checkpoints", unit="ckpt",
                     file=sys.stderr):
        single = len(cand["steps"]) <= 1
        rows.append({**cand, "x0_best": single and cand["step"] == best_step,
                     "val_simple": val_error_at(history, cand["step"]) if single and cand["step"] is not None
                     else None, **score_candidate(load_candidate(run, cand), val, steps, guidance, seed)})
    for row, rank in zip(rows, mean_ranks(rows)):
        row["mean_rank"] = rank
    chosen = choose(rows)
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
            "home": str(home), "run": str(run), "protocol": PROTOCOL, "rule": RULE,
            "settings": {"split": "val", "average_last": sorted(set(average_last)), "windows": len(val.real),
                         "val_windows": val.n_val, "window_indices": val.indices,
                         "control_music": len(val.music_indices), "control_music_indices": val.music_indices,
                         "steps": steps, "guidance": guidance, "seed": seed, "threads": threads},
            "real_val": {"div_k": rows[0]["real_div_k"], "classifier_train_windows": val.train_windows},
            "checkpoints": rows, "chosen_index": chosen, "chosen": rows[chosen],
            "seconds": round(time.perf_counter() - t_start, 1)}


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    """The result as a table, one row per candidate, the chosen one marked."""
    s = result["settings"]
    lines = [f"# Checkpoint selection on the val split: `{result['run']}`", "",
             f"{s['windows']} val windows, control on {s['control_music']} val music windows x every genre; DDIM "
             f"{s['steps']}, guidance {s['guidance']}, seed {s['seed']}. Rule: {result['rule']}. Real val Div_k "
             f"{result['real_val']['div_k']:.2f}. Machine: {result['machine'].get('cpu', '?')}.", "",
             "| checkpoint | step | val x0 MSE | FID_k | FID_g | Div_k | BAS | control | mean rank |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(result["checkpoints"]):
        mark = (" (x0-best)" if r["x0_best"] else "") + (" **(chosen)**" if i == result["chosen_index"] else "")
        lines.append(f"| {r['checkpoint']}{mark} | {r['step']} | {_fmt(r['val_simple'], '.4f')} | "
                     f"{_fmt(r['fid_k'], '.1f')} | {_fmt(r['fid_g'], '.1f')} | {_fmt(r['div_k'], '.2f')} | "
                     f"{_fmt(r['bas'], '.3f')} | {r['control']:.1%} | {r['mean_rank']:.2f} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command line (``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", type=Path, required=True, help="workspace whose catalog gives the val windows")
    p.add_argument("--run", type=Path, required=True, help="generator run trained with train.snapshot_every")
    p.add_argument("--windows", type=int, default=None, help="at most this many val windows (spread); default all")
    p.add_argument("--control-music", type=int, default=6, help="val music windows in the control test (>= 1)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--average-last", default="", help="comma-separated k >= 2: also the mean of the last k snapshots")
    p.add_argument("--export", type=Path, default=None, help="write the chosen checkpoint as a new run directory")
    p.add_argument("--out", type=Path, required=True, help="result JSON (a .md table is written beside it)")
    p.add_argument("--json", action="store_true", help="print the result JSON to stdout")
    return p


def _check_arguments(args: argparse.Namespace) -> list[int]:
    """The ``--average-last`` values; refuses, before any scoring, what would fail only at the end."""
    from encoders.errors import InputError

    try:
        average_last = [int(k) for k in args.average_last.split(",") if k.strip()]
    except ValueError:
        raise InputError(None, "--average-last takes comma-separated integers", field="--average-last",
                         expected="e.g. 2,4", got=args.average_last) from None
    if args.control_music < 1:
        raise InputError(None, "the control test needs music", field="--control-music", expected=">= 1",
                         got=str(args.control_music))
    if args.export is not None and args.export.exists():
        raise InputError(args.export, "the export folder exists", field="--export", expected="a new folder",
                         got="existing")
    return average_last


def main(argv: Sequence[str] | None = None) -> int:
    from encoders.atomic_io import atomic_write_json, atomic_write_text
    from encoders.errors import DanceSearchError
    from generation.diffusion.run_dir import export_checkpoint

    args = build_parser().parse_args(argv)
    try:
        average_last = _check_arguments(args)
        result = score_checkpoints(args.home, args.run, args.windows, args.control_music, args.steps, args.guidance,
                                   args.seed, args.threads, average_last)
    except DanceSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = result["chosen"]
    atomic_write_json(args.out, result)                       # the scores are kept whatever the export does
    atomic_write_text(args.out.with_suffix(".md"), markdown(result))
    print(f"chosen: {chosen['checkpoint']} (step {chosen['step']}): FID_k {_fmt(chosen['fid_k'], '.1f')}, control "
          f"{chosen['control']:.1%} -> {args.out}", file=sys.stderr)
    if args.export is not None:
        try:
            export_checkpoint(args.run, chosen["steps"], args.export,
                              {"by": "val samples (bench/select_checkpoint.py)", "rule": RULE, "scores": chosen})
        except DanceSearchError as exc:
            print(f"error: the scores are in {args.out}, but the export failed: {exc}", file=sys.stderr)
            return 1
        result["exported_to"] = str(args.export)
        atomic_write_json(args.out, result)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
