"""Attribute-oracle ceilings: the best R@K any model can reach when captions under-specify their clip.

Why: a caption such as "a fast dance" fits a third of the gallery, so even a perfect model ranks the
right clip among many equally good ones. On the demo corpus every caption attribute is known (clip tags,
and :func:`generation.procedural.captions.mentioned` reads a caption back into attributes), so the
ceiling is computable: an oracle ranks the clips whose tags agree with every stated attribute first, in
random order among themselves. With ``c`` such clips (the right one included), its expected
R@K = min(1, K / c) and its expected rank (c + 1) / 2.

Restricting the oracle to the attributes one stream realises (``generation.procedural.taxonomy.
REALISED_BY``) gives the ceiling of a motion-only or music-only model, i.e. how much a fusion model *can*
gain on this data. Comparing a trained model with these ceilings separates "the data cannot show the
difference" from "the model did not learn it".
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .protocols import DEFAULT_KS

OBSERVERS: tuple[str, ...] = ("full", "motion", "music")


def _observable(observer: str) -> frozenset[str] | None:
    from generation.procedural.taxonomy import REALISED_BY

    if observer == "full":
        return None
    if observer not in REALISED_BY:
        raise ValueError(f"unknown observer {observer!r}; expected one of {OBSERVERS}")
    return REALISED_BY[observer]


def _moves(tags: Mapping[str, Any]) -> set[str]:
    from generation.procedural.captions import MOVE_PARTS

    return {m for part in MOVE_PARTS for m in tags.get(part, [])}


def stated_attributes(caption: str, move_vocabulary: Iterable[str]) -> dict[str, set[str]]:
    """Attribute -> values a caption states (tags vocabulary), move names included."""
    from generation.procedural.captions import mentioned

    stated = mentioned(caption)
    moves = {m for m in move_vocabulary if m in caption}
    if moves:
        stated["move"] = moves
    return stated


def agrees(tags: Mapping[str, Any], stated: Mapping[str, set[str]]) -> bool:
    """Whether a clip's tags agree with every stated attribute (a stated move must be one of its moves)."""
    for attr, values in stated.items():
        if attr == "move":
            if not values & _moves(tags):
                return False
        elif tags.get(attr) not in values:
            return False
    return True


def oracle_ceilings(clips: Sequence[Mapping[str, Any]], queries: Sequence[tuple[str, int]],
                    ks: Sequence[int] = DEFAULT_KS) -> dict[str, dict[str, float]]:
    """Expected R@K (percent) and mean rank of the full / motion-only / music-only attribute oracles.

    ``clips``: the gallery, each with ``tags``; ``queries``: (caption, index of its clip in ``clips``).
    A query whose own clip disagrees with what the reader found (a lexicon miss) is counted with the
    clip as if compatible, so a reader error can only lower the ceiling, never raise it.
    """
    vocabulary = set().union(*(_moves(c["tags"]) for c in clips)) if clips else set()
    counts: dict[str, list[int]] = {o: [] for o in OBSERVERS}
    for caption, pos in queries:
        stated = stated_attributes(caption, vocabulary)
        for observer in OBSERVERS:
            seen = _observable(observer)
            s = {a: v for a, v in stated.items() if seen is None or a in seen}
            c = sum(agrees(clip["tags"], s) for i, clip in enumerate(clips) if i != pos) + 1
            counts[observer].append(c)
    out: dict[str, dict[str, float]] = {}
    for observer, cs in counts.items():
        arr = np.asarray(cs, dtype=np.float64)
        row = {f"R@{k}": float(np.minimum(1.0, k / arr).mean() * 100) if len(arr) else float("nan") for k in ks}
        row["MnR"] = float(((arr + 1) / 2).mean()) if len(arr) else float("nan")
        row["median_compatible"] = float(np.median(arr)) if len(arr) else float("nan")
        out[observer] = row
    return out


def demo_tagged(clips: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every clip carries the demo corpus's full tag set (ceilings mean nothing on other data)."""
    needed = {"genre", "tempo", "energy", "fluidity", "spatial", "emphasis", "rhythm", "valence"}
    return bool(clips) and all(needed <= set(c.get("tags") or {}) for c in clips)


def ceilings_markdown(ceilings: Mapping[str, Mapping[str, float]], n_queries: int, gallery: int) -> str:
    labels = {"full": "oracle, all attributes", "motion": "oracle, motion attributes only",
              "music": "oracle, music attributes only"}
    lines = [f"Attribute-oracle ceilings ({n_queries} queries, gallery {gallery}; expected values, see eval/oracle.py):",
             "", "| oracle | R@1 | R@5 | R@10 | MnR | median compatible clips |", "|---|---:|---:|---:|---:|---:|"]
    for observer, row in ceilings.items():
        lines.append(f"| {labels.get(observer, observer)} | {row['R@1']:.1f} | {row['R@5']:.1f} | {row['R@10']:.1f} "
                     f"| {row['MnR']:.1f} | {row['median_compatible']:.0f} |")
    return "\n".join(lines) + "\n"
