"""Where retrieval fails: metrics per genre and per caption attribute.

Why: a single R@10 hides whether the model understands tempo words but not body parts, or ballet but
not krump. Each query (caption) is assigned

- its clip's genre (catalog label), and
- for each attribute family, the values whose words occur in the caption, from the documented
  lexicon :data:`LEXICON` (whole-word, case-insensitive; a caption may carry several values of one
  family, or none, reported as ``(none)``).

Metrics are then recomputed on each subset of the per-query ranks of one protocol run (the gallery is
unchanged, so every subset figure is "out of" the same gallery size). Subsets smaller than
:data:`MIN_QUERIES` are listed but flagged, since their R@K moves in large steps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .protocols import DEFAULT_KS, summarize_ranks

MIN_QUERIES = 10
NONE = "(none)"

# family -> value -> words / phrases, matched as whole words (a space also matches a hyphen);
# an entry starting with "re:" is a raw regular expression (used to keep "hip hop" out of "hop").
LEXICON: dict[str, dict[str, tuple[str, ...]]] = {
    "genre_word": {
        "waltz": ("waltz", "waltzing"),
        "salsa": ("salsa",),
        "tango": ("tango",),
        "ballet": ("ballet", "balletic", "pirouette", "plie", "arabesque"),
        "hip-hop": ("hip-hop", "hip hop", "hiphop"),
        "breaking": ("breakdance", "breakdancing", "breaking", "b-boy", "bboy", "windmill", "headspin"),
        "krump": ("krump", "krumping"),
        "popping": ("popping", "pop and lock"),
        "locking": ("locking",),
        "house": ("house",),
        "jazz": ("jazz", "jazzy"),
        "street": ("street", "urban"),
        "latin": ("latin", "rumba", "cha-cha", "cha cha", "samba", "bachata", "merengue"),
        "folk": ("folk", "folkdance"),
        "modern": ("modern", "contemporary", "lyrical"),
        "chinese": ("chinese", "classical chinese", "dai", "tai chi"),
        "kpop": ("k-pop", "kpop"),
        "swing": ("swing", "lindy", "charleston"),
        "disco": ("disco",),
        "indian": ("indian", "bollywood", "bharatanatyam", "kathak"),
    },
    "body_part": {
        "arms": ("arm", "arms", "elbow", "elbows"),
        "hands": ("hand", "hands", "wrist", "wrists", "finger", "fingers", "palm", "palms"),
        "legs": ("leg", "legs", "knee", "knees", "thigh", "thighs"),
        "feet": ("foot", "feet", "toe", "toes", "heel", "heels", "footwork", "stomp", "stomps", "stomping"),
        "hips": ("hip", "hips", "pelvis", "waist"),
        "torso": ("torso", "chest", "shoulder", "shoulders", "spine", "upper body", "body wave"),
        "head": ("head", "neck"),
    },
    "tempo": {
        "slow": ("slow", "slowly", "adagio", "leisurely", "unhurried", "lento"),
        "moderate": ("moderate", "moderately", "medium tempo", "mid-tempo", "steady"),
        "fast": ("fast", "quick", "quickly", "rapid", "rapidly", "brisk", "allegro", "up-tempo", "uptempo",
                 "speedy", "swift", "swiftly"),
    },
    "energy": {
        "high": ("energetic", "powerful", "vigorous", "vigorously", "explosive", "intense", "dynamic",
                 "aggressive", "lively", "bouncy", "high-energy", "high energy", "sharp", "strong"),
        "low": ("gentle", "gently", "soft", "softly", "calm", "calmly", "relaxed", "graceful", "gracefully",
                "smooth", "smoothly", "delicate", "fluid", "flowing", "low-energy", "low energy", "elegant",
                "elegantly", "tender"),
    },
    "spatial": {
        "turning": ("turn", "turns", "turning", "spin", "spins", "spinning", "rotate", "rotates", "rotating",
                    "twirl", "twirls", "twirling", "circle", "circles", "circling", "pirouette"),
        "travelling": ("across", "travel", "travels", "travelling", "traveling", "moving forward", "forward",
                       "forwards", "backward", "backwards", "advance", "advances", "retreat", "diagonal",
                       "diagonally", "path", "zigzag"),
        "sideways": ("sideways", "side to side", "side-to-side", "lateral", "laterally", "left and right",
                     "to the side", "sidestep", "sidesteps"),
        "in_place": ("in place", "on the spot", "stationary", "on the same spot"),
        "vertical": ("jump", "jumps", "jumping", "leap", "leaps", "leaping", "re:(?<!hip[\\s-])hop(?:s|ping)?",
                     "crouch", "crouches", "crouching", "squat", "squats", "kneel", "kneels", "floorwork"),
    },
    # music-only attributes: queries that name them can only be matched by listening (fusion vs motion-only)
    "mood": {
        "bright": ("happy", "joyful", "cheerful", "bright", "upbeat", "uplifting", "playful"),
        "dark": ("dark", "melancholic", "melancholy", "moody", "somber", "sombre", "brooding", "sad"),
    },
    "instrument": {
        "piano": ("piano",), "strings": ("strings", "string", "violin", "violins", "cello"),
        "flute": ("flute", "flutes"), "brass": ("brass", "trumpet", "trumpets", "horns"),
        "synth": ("synth", "synths", "synthesizer", "electronic"), "guitar": ("guitar", "guitars", "plucked"),
        "bells": ("bell", "bells", "chiming"), "organ": ("organ",), "drums": ("drums", "percussion"),
    },
}
FAMILIES: tuple[str, ...] = tuple(LEXICON)


def _compile(lexicon: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, dict[str, re.Pattern[str]]]:
    out: dict[str, dict[str, re.Pattern[str]]] = {}
    for family, values in lexicon.items():
        out[family] = {}
        for value, words in values.items():
            alts = sorted((w[3:] if w.startswith("re:") else r"[\s-]+".join(re.escape(p) for p in w.split())
                           for w in words), key=len, reverse=True)
            out[family][value] = re.compile(r"(?<![\w-])(?:" + "|".join(alts) + r")(?![\w-])", re.IGNORECASE)
    return out


_PATTERNS = _compile(LEXICON)


def caption_attributes(caption: str) -> dict[str, list[str]]:
    """Values of each attribute family present in ``caption`` (empty list: none), in lexicon order."""
    return {family: [v for v, pat in values.items() if pat.search(caption)] for family, values in _PATTERNS.items()}


@dataclass
class GroupRow:
    """Metrics of one subset of queries."""

    family: str
    value: str
    n_queries: int
    metrics: dict[str, float]

    @property
    def small(self) -> bool:
        return self.n_queries < MIN_QUERIES

    def as_dict(self) -> dict[str, object]:
        return {"family": self.family, "value": self.value, "queries": self.n_queries,
                "small": self.small, **self.metrics}


def grouped_rows(ranks: np.ndarray, labels: Sequence[Iterable[str]], family: str,
                 ks: Sequence[int] = DEFAULT_KS) -> list[GroupRow]:
    """One row per label: metrics of the queries carrying it (a query may carry several labels;
    an empty label set counts under ``(none)``). Rows sorted by query count, then name."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(labels) != ranks.size:
        raise ValueError(f"{len(labels)} label sets for {ranks.size} ranks")
    members: dict[str, list[int]] = {}
    for i, labs in enumerate(labels):
        labs = list(labs) or [NONE]
        for lab in labs:
            members.setdefault(lab, []).append(i)
    rows = [GroupRow(family, lab, len(idx), summarize_ranks(ranks[idx], ks)) for lab, idx in members.items()]
    return sorted(rows, key=lambda r: (-r.n_queries, r.value))


def breakdown(ranks: np.ndarray, captions: Sequence[str], genres: Sequence[str],
              ks: Sequence[int] = DEFAULT_KS) -> dict[str, list[GroupRow]]:
    """Per-genre and per-attribute-family rows for the queries behind ``ranks``.

    ``captions[i]`` and ``genres[i]`` describe the query whose rank is ``ranks[i]``.
    """
    if not (len(captions) == len(genres) == len(ranks)):
        raise ValueError("ranks, captions and genres must have one entry per query")
    out = {"genre": grouped_rows(ranks, [[g] for g in genres], "genre", ks)}
    attrs = [caption_attributes(c) for c in captions]
    for family in FAMILIES:
        out[family] = grouped_rows(ranks, [a[family] for a in attrs], family, ks)
    return out


def breakdown_markdown(tables: Mapping[str, Sequence[GroupRow]], gallery_size: int, protocol: str,
                       ks: Sequence[int] = DEFAULT_KS) -> str:
    """Markdown report: one table per family, each figure stated out of ``gallery_size``."""
    lines = [f"## Breakdown ({protocol} protocol, gallery of {gallery_size} clips)", "",
             f"Rows with fewer than {MIN_QUERIES} queries are marked `*` (coarse estimates).",
             "Attribute values come from the keyword lexicon in `eval/breakdown.py` (whole words, "
             "case-insensitive); a caption may count under several values.", ""]
    heads = [f"R@{k}" for k in ks] + ["MedR", "MnR"]
    for family, rows in tables.items():
        lines += [f"### {family}", "", "| value | queries | " + " | ".join(heads) + " |",
                  "|---|---:|" + "---:|" * len(heads)]
        for r in rows:
            vals = " | ".join(f"{r.metrics[h]:.1f}" for h in heads)
            lines.append(f"| {r.value}{' *' if r.small else ''} | {r.n_queries} | {vals} |")
        lines.append("")
    return "\n".join(lines)
