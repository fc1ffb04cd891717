"""Interactive refinement: turn a first query plus the user's added constraints into the next request.

The paper's failure analysis finds that a single free-text query often misses on tempo, on which
body part carries the movement and on energy; its recommendation is to let the user add those
constraints after seeing the first results. Constraints act in two ways:

- hard filters the API understands (genre, a BPM range for the tempo class);
- phrases appended to the text ("focused on the arms", "with high energy", "at a fast tempo") so the text
  encoder ranks by what the filters cannot express.

Everything here is pure (no Streamlit, no HTTP) so it is unit-tested directly.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from encoders.tempo import TEMPO_CLASSES, tempo_class, tempo_range

from .api_client import ClipResult, SearchRequest

# Tempo classes in BPM: the one vocabulary of the corpus tags and the API's explanations (encoders.tempo).
# Sent as the API's bpm_min / bpm_max, which are inclusive.
TEMPO_RANGES: dict[str, tuple[float | None, float | None]] = {name: tempo_range(name) for name in TEMPO_CLASSES}
# Phrases come from the caption vocabulary the demo model is trained on (generation/procedural/captions.py), so
# the text encoder knows them; body parts are the four "emphasis" values that vocabulary describes.
TEMPO_PHRASES: dict[str, str] = {"slow": "at a slow tempo", "medium": "at a medium tempo",
                                 "fast": "at a fast tempo"}
BODY_PART_PHRASES: dict[str, str] = {
    "arms": "focused on the arms",
    "hands": "with intricate hand gestures",
    "legs": "focused on the legs",
    "torso": "with lots of torso movement",
}
ENERGY_PHRASES: dict[str, str] = {"low": "with low energy", "medium": "with medium energy", "high": "with high energy"}
#: The most :func:`refined_text` can append to a query (", " + the longest phrase of each kind); the UI's
#: query box leaves this much room below the API's query length limit.
MAX_REFINEMENT_CHARS: int = sum(2 + max(map(len, table.values()))
                                for table in (BODY_PART_PHRASES, ENERGY_PHRASES, TEMPO_PHRASES))

EXAMPLE_QUERIES: tuple[str, ...] = (
    "a slow gentle waltz that travels in circles",   # "lyrical" names a style the demo lacks: a gap
    "a sharp popping sequence with isolated arm movements",
    "energetic hip-hop with fast footwork",
    "a calm dance with expressive hands",
    "jumping and spinning with high energy",
)


@dataclass(frozen=True)
class Refinement:
    """Constraints the user added after the first results; ``None`` / empty means "not constrained"."""

    tempo: str | None = None
    body_part: str | None = None
    energy: str | None = None
    genres: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for value, table, name in ((self.tempo, TEMPO_RANGES, "tempo"), (self.body_part, BODY_PART_PHRASES, "body part"),
                                   (self.energy, ENERGY_PHRASES, "energy")):
            if value is not None and value not in table:
                raise ValueError(f"unknown {name} '{value}' (known: {', '.join(table)})")
        object.__setattr__(self, "genres", tuple(dict.fromkeys(self.genres)))

    @property
    def is_empty(self) -> bool:
        return not (self.tempo or self.body_part or self.energy or self.genres)

    def chips(self) -> list[str]:
        """Short labels of the active constraints, for display."""
        out = []
        if self.tempo:
            out.append(f"tempo: {self.tempo}")
        if self.body_part:
            out.append(f"body part: {self.body_part}")
        if self.energy:
            out.append(f"energy: {self.energy}")
        out += [f"genre: {g}" for g in self.genres]
        return out


def refined_text(q: str, refinement: Refinement) -> str:
    """The query text with the refinement's phrases appended (comma-separated, no duplicates).

    Empty text stays empty: a genre-only browse must not turn into a text search on "high energy".
    """
    base = q.strip()
    if not base:
        return ""
    phrases = []
    if refinement.body_part:
        phrases.append(BODY_PART_PHRASES[refinement.body_part])
    if refinement.energy:
        phrases.append(ENERGY_PHRASES[refinement.energy])
    if refinement.tempo:
        phrases.append(TEMPO_PHRASES[refinement.tempo])
    low = base.lower()
    phrases = [p for p in phrases if p.lower() not in low]
    return ", ".join([base, *phrases])


def intersect_bpm(a: tuple[float | None, float | None], b: tuple[float | None, float | None]
                  ) -> tuple[float | None, float | None]:
    """Intersection of two optional (inclusive) BPM ranges; when they do not overlap the later constraint ``b``
    wins (the user just asked for it, so it must change the results rather than empty them)."""
    lo = _max_opt(a[0], b[0])
    hi = _min_opt(a[1], b[1])
    if lo is not None and hi is not None and lo > hi:
        return b
    return lo, hi


def apply_refinement(request: SearchRequest, refinement: Refinement) -> SearchRequest:
    """The request for the refined search: rewritten text, genre filters added, tempo as a BPM range."""
    genres = tuple(dict.fromkeys([*request.genres, *refinement.genres]))
    bpm = (request.bpm_min, request.bpm_max)
    if refinement.tempo:
        bpm = intersect_bpm(bpm, TEMPO_RANGES[refinement.tempo])
    return replace(request, q=refined_text(request.q, refinement), genres=genres, bpm_min=bpm[0], bpm_max=bpm[1],
                   offset=0)


def slider_to_bpm(value: tuple[float, float], bounds: tuple[float, float]) -> tuple[float | None, float | None]:
    """A tempo slider at its outer ends means "no bound" (clips without a BPM must not be filtered out)."""
    lo, hi = value
    return (None if lo <= bounds[0] else float(lo)), (None if hi >= bounds[1] else float(hi))


def filter_results(results: Iterable[ClipResult], genres: Sequence[str] = (),
                   bpm_min: float | None = None, bpm_max: float | None = None) -> list[ClipResult]:
    """Apply genre / BPM filters on the client, for lists the API did not filter ("more like this")."""
    out = []
    for r in results:
        if genres and r.genre not in genres:
            continue
        if (bpm_min is not None or bpm_max is not None) and r.bpm is None:
            continue
        if bpm_min is not None and r.bpm is not None and r.bpm < bpm_min:
            continue
        if bpm_max is not None and r.bpm is not None and r.bpm > bpm_max:   # inclusive, as the API
            continue
        out.append(r)
    return out


def _max_opt(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _min_opt(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
