"""Per-clip attribute plan: genre balance, stratified attributes, dancers and splits.

Why a separate plan: every attribute a caption may state must be chosen *before* generation (the
motion and music then realise it), spread evenly inside each genre (so the genre word alone cannot
solve retrieval), and reproducible from the seed alone, independently of worker count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .taxonomy import (EMPHASES, ENERGIES, GENRES, SPATIALS, Genre, bpm_range_for, instruments_of, intensity_of,
                       tempo_class, tempo_classes_of)

CLIP_SECONDS = 12.0
FPS = 30
NUM_DANCERS = 24
SPLIT_FRACTIONS = {"val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class DancerStyle:
    """A performer's personal style: how big, how early/late, which side leads, posture."""

    name: str
    amp: float            # overall amplitude multiplier
    timing_frames: float  # + late / - early relative to the beat
    side: int             # +1 left-leaning, -1 right-leaning
    side_prob: float      # how often the preferred side leads a phrase
    posture: float        # forward lean (degrees)
    arm_bias: float       # habitual arm height (degrees)
    groove_depth: float   # bounce depth multiplier


@dataclass(frozen=True)
class ClipSpec:
    index: int
    name: str
    genre: str
    bpm: float
    tempo: str
    meter: int
    rhythm: str
    valence: str
    instrument: str       # lead instrument of the music (music-only; see taxonomy.INSTRUMENTS)
    energy: str
    emphasis: str
    spatial: str
    fluidity: str
    intensity: str
    split: str
    dancer: DancerStyle
    t0: float             # time of the first downbeat (s)
    key_root: int         # MIDI note of the tonic
    seed: tuple[int, int]

    def to_json(self) -> dict:
        d = asdict(self)
        d["seed"] = list(self.seed)
        return d


def dancers(seed: int) -> list[DancerStyle]:
    rng = np.random.default_rng([seed, 7_000_001])
    out = []
    for i in range(NUM_DANCERS):
        out.append(DancerStyle(
            name=f"dancer_{i:02d}", amp=float(rng.uniform(0.85, 1.15)), timing_frames=float(rng.uniform(-1.0, 1.0)),
            side=int(rng.choice([1, -1])), side_prob=float(rng.uniform(0.6, 0.85)), posture=float(rng.uniform(-3, 6)),
            arm_bias=float(rng.uniform(-4, 10)), groove_depth=float(rng.uniform(0.7, 1.3))))
    return out


def _rhythm(g: Genre, rng: np.random.Generator) -> str:
    if g.meter == 3:
        return "triple"
    r = float(rng.random())
    if g.swing >= 0.2:
        if r < 0.65:
            return "swung"
        return "syncopated" if r < 0.65 + 0.35 * g.syncopated else "straight"
    if r < g.syncopated:
        return "syncopated"
    return "straight"


def _split_map(n_by_genre: dict[str, int], seed: int) -> dict[tuple[str, int], str]:
    """Genre-balanced split: within each genre a seeded permutation gives ~10% val and ~10% test."""
    out = {}
    for gi, (name, n) in enumerate(n_by_genre.items()):
        rng = np.random.default_rng([seed, 9_000_000 + gi])
        order = rng.permutation(n)
        n_test = max(1, int(round(n * SPLIT_FRACTIONS["test"]))) if n >= 2 else 0
        n_val = max(1, int(round(n * SPLIT_FRACTIONS["val"]))) if n >= 3 else 0
        for rank, k in enumerate(order):
            out[(name, int(k))] = "test" if rank < n_test else ("val" if rank < n_test + n_val else "train")
    return out


def plan_corpus(n_clips: int, seed: int) -> list[ClipSpec]:
    """The attribute plan of ``n_clips`` clips: genres round-robin, attributes stratified within genre."""
    if n_clips < 1:
        raise ValueError("n_clips must be >= 1")
    performers = dancers(seed)
    genres = list(GENRES)
    counts = {g.name: 0 for g in genres}
    slots = []
    for i in range(n_clips):
        g = genres[i % len(genres)]
        slots.append((g, counts[g.name]))
        counts[g.name] += 1
    splits = _split_map({k: v for k, v in counts.items() if v}, seed)
    # per-genre stratification offsets (Latin-square style cycling of emphasis x spatial x energy)
    specs = []
    for i, (g, k) in enumerate(slots):
        rng = np.random.default_rng([seed, i])
        off = np.random.default_rng([seed, 5_000 + genres.index(g)]).integers(0, 48, size=3)
        emphasis = EMPHASES[(k + off[0]) % 4]
        spatial = SPATIALS[(k // 4 + k + off[1]) % 4]
        energy = ENERGIES[(k // 2 + off[2]) % 3]
        classes = tempo_classes_of(g)
        tcls = classes[int(rng.integers(len(classes)))]
        lo, hi = bpm_range_for(g, tcls)
        bpm = round(float(rng.uniform(lo, hi)), 1)
        fluidity = "sharp" if rng.random() < g.sharp_prob else "fluid"
        valence = "positive" if rng.random() < g.positive_prob else "negative"
        dancer = performers[int(rng.integers(len(performers)))]
        # own stream, so adding the instrument left every other attribute of a seed unchanged
        options = instruments_of(g)
        instrument = options[int(np.random.default_rng([seed, i, 11]).integers(len(options)))]
        specs.append(ClipSpec(
            index=i, name=f"{g.name}_{i:05d}", genre=g.name, bpm=bpm, tempo=tempo_class(bpm), meter=g.meter,
            rhythm=_rhythm(g, rng), valence=valence, instrument=instrument, energy=energy, emphasis=emphasis, spatial=spatial,
            fluidity=fluidity, intensity=intensity_of(energy, fluidity), split=splits[(g.name, k)], dancer=dancer,
            t0=round(float(rng.uniform(0.05, 0.45)) * 60.0 / bpm, 4), key_root=int(rng.integers(45, 53)),
            seed=(int(seed), int(i))))
    return specs
