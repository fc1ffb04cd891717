"""``dancesearch eval ablations``: train and evaluate the encoder variants, write the paper-style tables.

Why subprocesses: each variant is trained with the exact ``dancesearch train`` command a user would run,
and that command line is recorded in ``ablations.json`` / ``ablations.md`` so every number can be
reproduced by hand; a variant that fails (e.g. out of memory) is reported without losing the others.

Variants follow CustomDancer's ablations: Table 2 compares the temporal backbone (Transformer, LSTM,
RNN, all with the learnt blend fusion); Table 3 compares the music-motion fusion (blend, add, mul,
motion only, music only, all with the Transformer). The shared baseline (transformer + blend) is
trained once. Evaluation: the full test gallery protocol (plus the batch-of-32 figures in the JSON),
with bootstrap 95% intervals.
"""
from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from encoders.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from encoders.cliutil import info
from encoders.errors import DanceSearchError

from .bootstrap import paired_difference_ci
from .oracle import ceilings_markdown, demo_tagged, oracle_ceilings
from .protocols import summarize_ranks
from .suite import METRICS, collect_suite_data, evaluate_protocol


@dataclass(frozen=True)
class Variant:
    name: str
    temporal: str
    fusion: str
    label: str
    tables: tuple[str, ...]   # "temporal" (Table 2) and/or "fusion" (Table 3)


VARIANTS: tuple[Variant, ...] = (
    Variant("transformer-blend", "transformer", "blend", "Transformer + blend (ours)", ("temporal", "fusion")),
    Variant("lstm-blend", "lstm", "blend", "LSTM + blend", ("temporal",)),
    Variant("rnn-blend", "rnn", "blend", "RNN + blend", ("temporal",)),
    Variant("transformer-add", "transformer", "add", "add (M + A)", ("fusion",)),
    Variant("transformer-mul", "transformer", "mul", "mul (M * A)", ("fusion",)),
    Variant("transformer-motion", "transformer", "motion", "motion only", ("fusion",)),
    Variant("transformer-music", "transformer", "music", "music only", ("fusion",)),
)
TABLE_TITLES = {"temporal": "Table 2 (temporal backbone, fusion = blend)",
                "fusion": "Table 3 (music-motion fusion, temporal = Transformer)"}


def train_command(variant: Variant, home: Path, run_dir: Path, epochs: int | None, seed: int,
                  device: str | None, db: str | None, config: Path | None = None) -> list[str]:
    """The ``dancesearch train`` arguments of one variant (without the program name).

    ``config`` (a run config such as ``models/demo/config.json``) sets everything else, so every
    variant differs from the shipped model only in its temporal backbone and fusion.
    """
    cmd = ["train", "--home", str(home)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += ["--temporal", variant.temporal, "--fusion", variant.fusion, "--seed", str(seed), "--out", str(run_dir),
            "--json"]
    if db:
        cmd += ["--db", db]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if device:
        cmd += ["--device", device]
    return cmd


def _train(args: list[str]) -> dict[str, Any]:
    """Run ``dancesearch <args>`` in a subprocess; its stderr (progress) passes through."""
    proc = subprocess.run([sys.executable, "-m", "ui.cli", *args], stdout=subprocess.PIPE, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise DanceSearchError(f"`dancesearch {shlex.join(args)}` exited with {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        raise DanceSearchError(f"`dancesearch {shlex.join(args)}` printed no JSON result") from exc


BASELINE = "transformer-blend"


def export_demo_model(run_dir: Path, demo_out: Path, test: dict[str, Any], reproduce: str) -> None:
    """Copy the full model's run to ``demo_out`` (the shipped ``models/demo``) with its test figures and card.

    Why here: the shipped model must be exactly the baseline row of the ablation table, so the figures
    in its README and in the table cannot drift apart. The copy is staged beside the target and swapped
    in by renames, so an interrupted export leaves the previous model in place.
    """
    from encoders.training.run_dir import load_run, model_card

    demo_out = Path(demo_out)
    stage = demo_out.with_name(demo_out.name + ".staging")
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(run_dir, stage)
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    metrics["test"] = {k: test[k] for k in (*METRICS, "gallery_size", "num_queries", "protocol", "ci95") if k in test}
    atomic_write_json(stage / "metrics.json", metrics)
    run = load_run(stage, "cpu")
    history = json.loads((stage / "history.json").read_text(encoding="utf-8"))
    data_info = json.loads((stage / "config.json").read_text(encoding="utf-8")).get("data", {})
    card = model_card(run.config, run.model, history, metrics, data_info)
    card += f"\n## Reproduce\n\n```bash\n{reproduce}\n```\n"
    atomic_write_text(stage / "README.md", card)
    old = demo_out.with_name(demo_out.name + ".previous")
    if old.exists():
        shutil.rmtree(old)
    if demo_out.exists():
        demo_out.rename(old)
    stage.rename(demo_out)
    if old.exists():
        shutil.rmtree(old)


def run_ablations(workspace: Any, out_dir: str | Path, runs_dir: str | Path | None = None, epochs: int | None = None,
                  seed: int = 0, names: Sequence[str] | None = None, n_boot: int = 1000, device: str | None = None,
                  reuse: bool = False, progress: bool = True, command: str = "",
                  config: Path | None = None, demo_out: Path | None = None,
                  reproduce: str = "") -> dict[str, Any]:
    """Train (or reuse) and evaluate each variant; write ablations.{md,json,png} in ``out_dir``."""
    from encoders.api import DanceEmbedder

    out_dir = Path(out_dir)
    runs = Path(runs_dir) if runs_dir is not None else workspace.home / "runs" / "ablations"
    chosen = [v for v in VARIANTS if names is None or v.name in names]
    db = workspace.db_url if workspace.db_url != f"sqlite:///{workspace.catalog_path}" else None
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    ceilings: dict[str, Any] | None = None
    ranks: dict[str, Any] = {}
    for v in chosen:
        run_dir = runs / v.name
        args = train_command(v, workspace.home, run_dir, epochs, seed, device, db, config)
        row: dict[str, Any] = {"name": v.name, "label": v.label, "temporal": v.temporal, "fusion": v.fusion,
                               "tables": list(v.tables), "run_dir": str(run_dir),
                               "train_command": "dancesearch " + shlex.join(args)}
        try:
            if reuse and (run_dir / "best.pt").is_file():
                info(f"[{v.name}] reusing {run_dir}")
                row["train"] = {"reused": True}
            else:
                info(f"[{v.name}] training: dancesearch {shlex.join(args)}")
                t0 = time.perf_counter()
                res = _train(args)
                row["train"] = {"best_epoch": res.get("best_epoch"), "epochs_run": res.get("epochs_run"),
                                "seconds_per_epoch": res.get("seconds_per_epoch"), "val": res.get("val"),
                                "wall_s": round(time.perf_counter() - t0, 1)}
            embedder = DanceEmbedder.from_run(run_dir, device=device)
            data = collect_suite_data(embedder, workspace, "test", progress)
            row["test"], full = evaluate_protocol(data, "full", seed=seed, n_boot=n_boot)
            ranks[v.name] = full.ranks
            batch, _ = evaluate_protocol(data, "batch32", seed=seed, n_boot=n_boot)
            row["test_batch32"] = {k: batch[k] for k in (*METRICS, "gallery_size", "ci95")}
            if ceilings is None and demo_tagged(data.clips):
                ceilings = {"n_queries": len(data.query_texts), "gallery_size": data.gallery_size,
                            "oracles": oracle_ceilings(data.clips, list(zip(data.query_texts,
                                                                           data.query_clip.tolist())))}
            row["model_id"] = embedder.model_id
            if demo_out is not None and v.name == BASELINE:
                export_demo_model(run_dir, demo_out, row["test"], reproduce or command)
                row["exported_to"] = str(demo_out)
        except DanceSearchError as exc:
            failed.append({"variant": v.name, "reason": str(exc)})
            row["error"] = str(exc)
        rows.append(row)
    if BASELINE in ranks:
        for row in rows:
            if row["name"] != BASELINE and row["name"] in ranks and len(ranks[row["name"]]) == len(ranks[BASELINE]):
                diff = paired_difference_ci(ranks[BASELINE], ranks[row["name"]], summarize_ranks, n_boot=n_boot,
                                            seed=seed)
                row["baseline_minus_variant"] = {k: diff[k] for k in ("R@1", "R@5", "R@10") if k in diff}
    result = {"command": command, "epochs": epochs, "seed": seed, "catalog": workspace.db_url,
              "config": str(config) if config is not None else None,
              "variants": rows, "failed": failed, "ceilings": ceilings}
    atomic_write_json(out_dir / "ablations.json", result)
    atomic_write_text(out_dir / "ablations.md", ablations_markdown(result))
    png = ablations_png(rows)
    if png is not None:
        atomic_write_bytes(out_dir / "ablations.png", png)
    return result


def _cell(test: dict[str, Any], key: str) -> str:
    v = test[key]
    ci = (test.get("ci95") or {}).get(key)
    if key.startswith("R@"):
        return f"{v:.2f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")
    return f"{v:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def ablations_markdown(result: dict[str, Any]) -> str:
    """Tables 2 and 3 in the paper's shape: one row per variant, R@1/5/10 (%), MedR, MnR, [95% CI]."""
    lines = ["# Ablations: temporal backbone and music-motion fusion", ""]
    if result.get("command"):
        lines += ["Produced by:", "", "```", result["command"], "```", ""]
    lines += [f"Epochs per variant: {result['epochs'] if result['epochs'] is not None else 'trainer default'}; "
              f"seed {result['seed']}; catalog `{result['catalog']}`. Test split, full-gallery protocol, "
              "pessimistic ties, bootstrap 95% intervals over queries in brackets.", ""]
    for table in ("temporal", "fusion"):
        lines += [f"## {TABLE_TITLES[table]}", "", "| variant | gallery | " + " | ".join(METRICS) + " |",
                  "|---|---:|" + "---|" * len(METRICS)]
        for row in result["variants"]:
            if table not in row["tables"]:
                continue
            if "test" not in row:
                lines.append(f"| {row['label']} | - | " + " | ".join(["failed"] * len(METRICS)) + " |")
                continue
            t = row["test"]
            lines.append(f"| {row['label']} | {t['gallery_size']} | " + " | ".join(_cell(t, k) for k in METRICS) + " |")
        lines.append("")
    paired = [r for r in result["variants"] if r.get("baseline_minus_variant")]
    if paired:
        base = next((r["label"] for r in result["variants"] if r["name"] == BASELINE), BASELINE)
        lines += [f"## {base} minus each variant (paired bootstrap)", "",
                  "Both models answer the same queries, so the difference is resampled per query (one draw "
                  "applied to both); an interval above 0 means the full model is better beyond query-sampling "
                  "noise (one training seed: seed noise is not in it).", "",
                  "| variant | R@1 diff | R@5 diff | R@10 diff |", "|---|---|---|---|"]
        for r in paired:
            d = r["baseline_minus_variant"]
            cells = [f"{d[k]['diff']:+.2f} [{d[k].get('lo', float('nan')):+.1f}, {d[k].get('hi', float('nan')):+.1f}]"
                     if k in d else "-" for k in ("R@1", "R@5", "R@10")]
            lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
        lines.append("")
    ceilings = result.get("ceilings")
    if ceilings:
        lines += ["## What the data allows", "",
                  ceilings_markdown(ceilings["oracles"], ceilings["n_queries"], ceilings["gallery_size"]),
                  "A variant can only beat another where its ceiling is higher: a motion-only model cannot "
                  "match a caption's mood, instrument or rhythm feel, a music-only one its body parts, moves "
                  "or floor pattern.", ""]
    lines += ["## Exact training commands", ""]
    for row in result["variants"]:
        tr = row.get("train") or {}
        extra = (f" (best epoch {tr.get('best_epoch')} of {tr.get('epochs_run')}, "
                 f"{tr.get('seconds_per_epoch') or 0:.1f} s/epoch)") if tr.get("epochs_run") else ""
        lines.append(f"- `{row['name']}`{extra}: `{row['train_command']}`")
    if result.get("failed"):
        lines += ["", "## Failed variants", ""] + [f"- `{f['variant']}`: {f['reason']}" for f in result["failed"]]
    return "\n".join(lines) + "\n"


def ablations_png(rows: Sequence[dict[str, Any]]) -> bytes | None:
    """Grouped bars of R@1/5/10 per variant with 95% intervals, one panel per table (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    done = [r for r in rows if "test" in r]
    if not done:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, table in zip(axes, ("temporal", "fusion")):
        sel = [r for r in done if table in r["tables"]]
        x = np.arange(len(sel))
        width = 0.26
        for j, key in enumerate(("R@1", "R@5", "R@10")):
            vals = np.array([r["test"][key] for r in sel])
            cis = [r["test"].get("ci95", {}).get(key) for r in sel]
            err = None
            if all(cis):
                err = np.array([[v - c[0] for v, c in zip(vals, cis)], [c[1] - v for v, c in zip(vals, cis)]])
            ax.bar(x + (j - 1) * width, vals, width, yerr=err, capsize=2, label=key)
        ax.set_xticks(x, [r["label"] for r in sel], rotation=20, ha="right", fontsize=8)
        gal = sel[0]["test"]["gallery_size"] if sel else 0
        ax.set_title(f"{TABLE_TITLES[table]}\ntest gallery of {gal}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("recall (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
