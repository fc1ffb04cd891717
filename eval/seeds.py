"""``dancesearch eval seeds``: the ablation variants over several training seeds.

Why: one training seed cannot say whether the full model beats a single-modality variant; the
paired bootstrap of ``eval ablations`` covers query sampling, not seed noise.  This module takes
run directories laid out as ``ROOT/seed<S>/<variant>/`` (each a ``dancesearch train`` run, e.g.
made by ``eval ablations --seed S --runs ROOT/seed<S>``), evaluates every run on the test split
(full-gallery protocol) and reports:

- per variant: each seed's R@1 / R@5 / R@10 / MedR / MnR and their mean and standard deviation;
- the full model minus each variant, *paired twice*: over seeds (seed s of one against seed s of
  the other, both starting from the same initial draw of the data order) and over queries.  The
  point estimate is the mean over seeds of the difference; the 95% interval comes from a bootstrap
  that resamples the queries (one draw for every seed and both models) and averages the seeds
  inside each replicate, plus the range of the per-seed differences.  "Clearly better" here means
  the interval excludes 0 *and* every seed's difference has the same sign.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.cliutil import info
from encoders.errors import DanceSearchError

from .ablations import BASELINE, VARIANTS
from .bootstrap import paired_difference_ci
from .breakdown import caption_attributes
from .metrics import chance_metrics
from .protocols import summarize_ranks
from .suite import METRICS, collect_suite_data, evaluate_protocol

DIFF_METRICS: tuple[str, ...] = ("R@1", "R@5", "R@10")
MUSIC_FAMILIES: frozenset[str] = frozenset({"mood", "instrument"})
"""Caption attribute families (``eval.breakdown.LEXICON``) that only the music stream can match."""


def find_seed_runs(root: str | Path, names: Sequence[str] | None = None) -> dict[str, dict[int, Path]]:
    """``{variant: {seed: run_dir}}`` for every ``root/seed<S>/<variant>/best.pt`` found."""
    root = Path(root)
    wanted = set(names) if names else {v.name for v in VARIANTS}
    out: dict[str, dict[int, Path]] = {}
    for seed_dir in sorted(root.glob("seed*")):
        m = re.fullmatch(r"seed(\d+)", seed_dir.name)
        if not m or not seed_dir.is_dir():
            continue
        for run in sorted(seed_dir.iterdir()):
            if run.name in wanted and (run / "best.pt").is_file():
                out.setdefault(run.name, {})[int(m.group(1))] = run
    if not out:
        raise DanceSearchError(f"no trained runs under {root}: expected {root}/seed<S>/<variant>/best.pt "
                               f"(variants: {', '.join(sorted(wanted))})")
    return out


def _seed_mean(ranks: np.ndarray) -> dict[str, float]:
    """R@K of each seed's row of a (seeds, queries) rank array, averaged over the seeds."""
    per_seed = [summarize_ranks(r) for r in ranks]
    return {k: float(np.mean([m[k] for m in per_seed])) for k in DIFF_METRICS}


def seed_paired_difference(ranks_a: np.ndarray, ranks_b: np.ndarray, n_boot: int = 1000,
                           seed: int = 0) -> dict[str, dict[str, float]]:
    """``{metric: {diff, lo, hi, seed_min, seed_max}}`` of A minus B for (S, Q) rank arrays (same
    seeds in the same order, same queries): mean over seeds, query bootstrap shared by all seeds
    (``eval.bootstrap.paired_difference_ci``), plus the range of the per-seed differences."""
    a = np.asarray(ranks_a, dtype=np.float64)
    b = np.asarray(ranks_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need (seeds, queries) rank arrays of one shape, got {a.shape} and {b.shape}")
    out = paired_difference_ci(a, b, _seed_mean, n_boot=n_boot, seed=seed)
    per_seed = [(summarize_ranks(sa), summarize_ranks(sb)) for sa, sb in zip(a, b)]
    for k in DIFF_METRICS:
        diffs = [ma[k] - mb[k] for ma, mb in per_seed]
        out[k].update(seed_min=float(min(diffs)), seed_max=float(max(diffs)))
    return out


def summarize_seed_runs(ranks: dict[str, dict[int, np.ndarray]], n_boot: int = 1000,
                        boot_seed: int = 0) -> dict[str, Any]:
    """Per-variant per-seed metrics, mean / sd, and the baseline-minus-variant paired differences
    over the seeds every compared pair shares."""
    variants: list[dict[str, Any]] = []
    labels = {v.name: v.label for v in VARIANTS}
    for name in [v.name for v in VARIANTS if v.name in ranks]:
        per_seed = {s: summarize_ranks(r) for s, r in sorted(ranks[name].items())}
        stacked = {k: np.asarray([m[k] for m in per_seed.values()]) for k in METRICS}
        row: dict[str, Any] = {
            "name": name, "label": labels[name], "seeds": sorted(per_seed),
            "per_seed": {str(s): m for s, m in per_seed.items()},
            "mean": {k: float(v.mean()) for k, v in stacked.items()},
            "sd": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in stacked.items()}}
        if name != BASELINE and BASELINE in ranks:
            shared = sorted(set(ranks[name]) & set(ranks[BASELINE]))
            if shared:
                row["baseline_minus_variant"] = seed_paired_difference(
                    np.stack([ranks[BASELINE][s] for s in shared]), np.stack([ranks[name][s] for s in shared]),
                    n_boot=n_boot, seed=boot_seed)
                row["paired_seeds"] = shared
        variants.append(row)
    return {"variants": variants, "bootstrap": n_boot}


def subset_differences(ranks: dict[str, dict[int, np.ndarray]], subsets: dict[str, np.ndarray], n_boot: int = 1000,
                       boot_seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{subset: {"queries": n, "variants": {variant: paired difference}}}``: the baseline minus each
    variant on the queries of each boolean mask (e.g. captions that name a music attribute)."""
    out: dict[str, dict[str, Any]] = {}
    if BASELINE not in ranks:
        return out
    for label, mask in subsets.items():
        mask = np.asarray(mask, dtype=bool)
        row: dict[str, Any] = {"queries": int(mask.sum()), "variants": {}}
        if mask.sum() == 0:
            out[label] = row
            continue
        for name in [v.name for v in VARIANTS if v.name in ranks and v.name != BASELINE]:
            shared = sorted(set(ranks[name]) & set(ranks[BASELINE]))
            if shared:
                row["variants"][name] = seed_paired_difference(
                    np.stack([ranks[BASELINE][s][mask] for s in shared]),
                    np.stack([ranks[name][s][mask] for s in shared]), n_boot=n_boot, seed=boot_seed)
        out[label] = row
    return out


def evaluate_seed_runs(runs: dict[str, dict[int, Path]], workspace: Any, n_boot: int = 1000,
                       device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate every run of :func:`find_seed_runs` on the test split (full protocol) and summarise them.

    :func:`summarize_seed_runs` plus ``subsets`` (the differences on captions that name what only the
    music carries, and on the rest), ``n_queries``, ``gallery_size``, ``chance`` and ``runs``.
    """
    from encoders.api import DanceEmbedder

    ranks: dict[str, dict[int, np.ndarray]] = {}
    for name, by_seed in runs.items():
        for seed, run_dir in sorted(by_seed.items()):
            info(f"[{name} seed {seed}] evaluating {run_dir}")
            data = collect_suite_data(DanceEmbedder.from_run(run_dir, device=device), workspace, "test", progress)
            _, res = evaluate_protocol(data, "full", n_boot=0)
            ranks.setdefault(name, {})[seed] = res.ranks
    # every run answers the same test queries: the last one's texts and gallery describe them all
    texts = [data.query_texts[int(i)] for i in res.query_index]  # in the ranks' query order
    result = summarize_seed_runs(ranks, n_boot=n_boot)
    # where each modality should matter: captions naming what only the music carries, and the rest
    music = np.asarray([any(caption_attributes(t)[f] for f in MUSIC_FAMILIES) for t in texts])
    result["subsets"] = subset_differences(ranks, {"name a mood or an instrument": music, "name neither": ~music},
                                           n_boot=n_boot)
    result.update({"n_queries": len(texts), "gallery_size": data.gallery_size,
                   "chance": {k: v for k, v in chance_metrics(data.gallery_size).items() if k in METRICS},
                   "runs": {n: {str(s): str(p) for s, p in d.items()} for n, d in runs.items()}})
    return result


def clearly_better(diff: dict[str, float]) -> bool:
    """The interval excludes 0 and every seed's difference is positive."""
    return diff.get("lo", -1.0) > 0 and diff["seed_min"] > 0


def _diff_cells(diff: dict[str, dict[str, float]]) -> str:
    """Markdown cells "diff [lo, hi] (seed min, seed max)" per metric, bold when clearly better."""
    cells = []
    for k in DIFF_METRICS:
        x = diff[k]
        txt = (f"{x['diff']:+.2f} [{x.get('lo', float('nan')):+.1f}, {x.get('hi', float('nan')):+.1f}] "
               f"({x['seed_min']:+.1f}, {x['seed_max']:+.1f})")
        cells.append(f"**{txt}**" if clearly_better(x) else txt)
    return " | ".join(cells)


def seeds_markdown(result: dict[str, Any]) -> str:
    rows = result["variants"]
    lines = [f"# Ablation variants over training seeds", "",
             f"Test split, full-gallery protocol, pessimistic ties; {result.get('n_queries', '?')} queries, gallery "
             f"{result.get('gallery_size', '?')}. Catalog: `{result.get('catalog', '')}`. Runs: `{result.get('root', '')}`. "
             "Mean ± sd over seeds.", "",
             "| variant | seeds | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        cells = [f"{r['mean'][k]:.2f} ± {r['sd'][k]:.2f}" for k in METRICS]
        lines.append(f"| {r['label']} | {','.join(map(str, r['seeds']))} | " + " | ".join(cells) + " |")
    if result.get("chance"):
        lines.append("| chance (random ranking) | - | " + " | ".join(f"{result['chance'][k]:.2f}" for k in METRICS) + " |")
    lines += ["", "## Full model minus each variant, paired over seeds and queries", "",
              "diff = mean over seeds; [95% interval: query bootstrap, seeds averaged in each replicate]; "
              "(smallest, largest per-seed difference). **bold**: interval above 0 and every seed positive.", "",
              "| variant | seeds | " + " | ".join(f"{k} diff" for k in DIFF_METRICS) + " |",
              "|---|---|" + "---|" * len(DIFF_METRICS)]
    for r in rows:
        d = r.get("baseline_minus_variant")
        if not d:
            continue
        lines.append(f"| {r['label']} | {','.join(map(str, r['paired_seeds']))} | " + _diff_cells(d) + " |")
    labels = {v.name: v.label for v in VARIANTS}
    for subset, block in (result.get("subsets") or {}).items():
        lines += ["", f"## Full model minus each variant, queries that {subset} ({block['queries']} queries)", "",
                  "| variant | " + " | ".join(f"{k} diff" for k in DIFF_METRICS) + " |",
                  "|---|" + "---|" * len(DIFF_METRICS)]
        for name, d in block["variants"].items():
            lines.append(f"| {labels.get(name, name)} | " + _diff_cells(d) + " |")
    return "\n".join(lines) + "\n"
