"""Tempo classes: one vocabulary for the corpus tags, the API's explanations and the UI's refinement.

Absolute BPM bounds, so "a slow dance" means the same thing in every genre: slow < 100 <= medium < 124 <= fast.
"""
from __future__ import annotations

import math

TEMPO_CLASSES: tuple[str, ...] = ("slow", "medium", "fast")
TEMPO_BOUNDS: tuple[float, float] = (100.0, 124.0)


def tempo_class(bpm: float | None) -> str | None:
    """The tempo class of a BPM value (None for a missing or non-finite tempo)."""
    if bpm is None or not math.isfinite(float(bpm)):
        return None
    lo, hi = TEMPO_BOUNDS
    return "slow" if bpm < lo else ("medium" if bpm < hi else "fast")


def tempo_range(name: str) -> tuple[float | None, float | None]:
    """BPM bounds [lo, hi) of a tempo class; None for an open end."""
    lo, hi = TEMPO_BOUNDS
    ranges = {"slow": (None, lo), "medium": (lo, hi), "fast": (hi, None)}
    if name not in ranges:
        raise KeyError(f"unknown tempo class {name!r} (known: {', '.join(TEMPO_CLASSES)})")
    return ranges[name]
