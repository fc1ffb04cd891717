"""The real-data floor: real windows measured against real windows, the best a generator can hope for.

Why draws: FID's value depends on how many samples each set has, so the floor is measured with as
many real "predictions" as the generator will be scored with (the ground-truth set's size), drawn at
random from another split; repeating the draw gives the spread a generator's number must be read against.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .sample import DanceSample
from .suite import METRIC_KEYS, evaluate_generation


def _summary(values: list[float | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": None, "sd": None, "min": None, "max": None, "values": list(values)}
    a = np.asarray(v, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "values": list(values)}


def floor_over_draws(draws: Sequence[Sequence[DanceSample]], gt: Sequence[DanceSample], protocol: str) -> dict[str, Any]:
    """``evaluate_generation`` of each draw of real windows against ``gt``; mean / sd / range per metric."""
    runs = [evaluate_generation(d, gt, protocol, per_sample=False) for d in draws]
    first = runs[0]
    metrics = {k: _summary([r["metrics"][k] for r in runs]) for k in first["metrics"]}
    physical: dict[str, Any] = {}
    for name, entry in first.get("physical", {}).items():
        if isinstance(entry, dict):
            physical[name] = {"pred": _summary([r["physical"][name].get("pred") for r in runs]),
                              "gt": entry.get("gt")}
    notes = sorted({n for r in runs for n in r["notes"]})
    return {"protocol": first["protocol"], "settings": first["settings"], "draws": len(runs),
            "counts": first["counts"], "metrics": metrics, "gt_reference": first["gt_reference"],
            "physical": physical, "notes": notes}


def floor_markdown(results: Sequence[dict[str, Any]], title: str) -> str:
    """One table: rows = metrics, columns = protocols (floor mean +- sd over draws; GT reference in brackets)."""
    def fmt(s: dict[str, float | None] | float | None) -> str:
        if isinstance(s, dict):
            if s.get("mean") is None:
                return "n/a"
            m, sd = s["mean"], s["sd"] or 0.0
            return f"{m:.4g} ± {sd:.2g}" if abs(m) >= 1e4 or (m != 0 and abs(m) < 1e-3) else f"{m:.3f} ± {sd:.3f}"
        return "n/a" if s is None else f"{s:.3f}"

    lines = [f"# {title}", "", "| metric | " + " | ".join(f"`{r['protocol']}`" for r in results) + " |",
             "|---|" + "---:|" * len(results)]
    keys = [k for k in METRIC_KEYS if k in results[0]["metrics"]
            and any(r["metrics"][k]["mean"] is not None for r in results)]
    for k in keys:
        cells = []
        for r in results:
            cell = fmt(r["metrics"][k])
            ref = r["gt_reference"].get(k) if (k.startswith("div") or k == "bas") else None
            cells.append(cell + (f" (GT {fmt(ref)})" if ref is not None else ""))
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    phys = [k for k in results[0]["physical"]]
    for k in phys:
        cells = []
        for r in results:
            e = r["physical"].get(k)
            cells.append("n/a" if e is None else f"{fmt(e['pred'])} (GT {fmt(e['gt'])})")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    notes = [f"`{r['protocol']}`: {n}" for r in results for n in r["notes"]]
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
