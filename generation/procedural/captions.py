"""Tags -> short, search-like captions with a varied grammar; held-out phrasings for the test split.

Why this shape: real queries are short and partial ("fast krump with chest pops", "something calm
and flowing that turns") and often say something about the music ("to melancholic piano music"). Each caption states a random subset of 1-4 attributes (the genre only
sometimes), with synonyms and several sentence structures, so the genre word alone cannot solve
retrieval and the exact clip is found only by combining attributes. Test-split captions use sentence
templates never used for train / val, so evaluation measures generalisation to new phrasings.

Every phrase a caption can contain is listed in :data:`SYNONYMS` (per attribute and value), and
:func:`mentioned` reads a caption back into attributes: the corpus tests use it to check that every
attribute a caption states agrees with the clip's tags.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from .taxonomy import GENRES

# attribute -> value -> (adjectival phrases, clause phrases)
SYNONYMS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "tempo": {"slow": (("slow", "slow-tempo", "unhurried"), ("at a slow tempo", "to slow music")),
              "medium": (("mid-tempo", "medium-tempo", "moderate-tempo"), ("at a moderate tempo", "at a medium pace")),
              "fast": (("fast", "uptempo", "quick", "rapid"), ("at a fast tempo", "to fast music"))},
    "energy": {"low": (("low-energy", "relaxed", "laid-back", "calm"), ("with low energy", "done in a relaxed way")),
               "medium": (("medium-energy", "mid-energy", "steady"), ("with medium energy", "with moderate energy")),
               "high": (("high-energy", "energetic", "explosive", "powerful"), ("with high energy", "full of energy"))},
    "valence": {"positive": (("joyful", "happy", "upbeat", "cheerful", "bright"), ("with a happy mood", "to cheerful music")),
                "negative": (("dark", "melancholic", "moody", "somber", "brooding"), ("with a dark mood", "to melancholic music"))},
    "fluidity": {"sharp": (("sharp", "staccato", "crisp", "hard-hitting", "punchy"), ("with sharp accents", "with crisp hits")),
                 "fluid": (("fluid", "smooth", "flowing", "silky"), ("with flowing transitions", "with smooth continuous motion"))},
    "intensity": {"gentle": (("gentle", "delicate", "tender"), ("performed gently",)),
                  "moderate": (("measured", "moderate-intensity"), ("with measured intensity",)),
                  "intense": (("intense", "fierce", "aggressive"), ("performed intensely", "with fierce intensity"))},
    "rhythm": {"straight": ((), ("on a straight beat", "with an even rhythm", "on an even pulse")),
               "swung": (("swung", "swinging"), ("on a swung beat", "with a swing feel")),
               "syncopated": (("syncopated",), ("on a syncopated beat", "with off-beat accents")),
               "triple": ((), ("in three-four time", "in 3/4 time", "in triple meter"))},
    "spatial": {"in_place": ((), ("staying in place", "on the spot", "in one place")),
                "travelling": (("travelling",), ("travelling across the floor", "moving across the floor", "covering ground")),
                "turning": (("turning", "spinning"), ("with lots of turns", "turning around", "with rotations")),
                "level_changes": ((), ("with level changes", "dropping low and rising", "going up and down in level"))},
    "instrument": {name: ((), (f"with {phrase}", f"over {lead}", f"to {music} music"))
                   for name, phrase, lead, music in (
                       ("piano", "piano", "a piano melody", "piano"), ("strings", "strings", "a string melody", "string"),
                       ("flute", "a flute", "a flute melody", "flute"), ("brass", "brass", "a brass melody", "brass"),
                       ("synth", "synths", "a synth lead", "synth"), ("guitar", "guitar", "a plucked guitar", "guitar"),
                       ("bells", "bells", "chiming bells", "bell"), ("organ", "organ", "an organ melody", "organ"))},
    "emphasis": {"arms": (("arm-focused", "arm-heavy"), ("with lots of arm work", "driven by the arms", "focused on the arms")),
                 "legs": (("leg-focused", "footwork-heavy"), ("with lots of leg work", "driven by the legs", "focused on the legs")),
                 "torso": (("torso-focused", "core-driven"), ("with lots of torso movement", "driven by the chest and hips")),
                 "hands": (("hand-focused", "finger-detailed"), ("with intricate hand gestures", "with expressive hands",
                                                                 "focused on the hands"))},
}
NOUNS = ("dance", "routine", "piece", "sequence", "choreography", "performance")
GENRE_NOUNS = ("dance", "routine", "piece", "sequence", "number")
MOVE_PARTS = ("arm_moves", "leg_moves", "torso_moves", "hand_moves")
ATTRIBUTES = ("genre", "tempo", "energy", "valence", "instrument", "fluidity", "intensity", "rhythm", "spatial",
              "emphasis", "move")
# attributes only the music carries; like TD-Data's captions, which describe the music and the dance together,
# about half of the captions name one of them (so a model that does not listen loses those queries)
MUSIC_ONLY = ("valence", "instrument")
MUSIC_MENTION_PROB = 0.5

# templates take (article+adjectives+noun phrase, adjectives list, noun, clauses) ; ids: t* train, h* held out
TRAIN_TEMPLATES = ("t_np_clauses", "t_noun_that_is", "t_dancer_doing", "t_bare", "t_clause_first")
TEST_TEMPLATES = ("h_find_me", "h_comma_list", "h_looking_for", "h_video_of")


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join_and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def render(template: str, adjs: list[str], noun: str, clauses: list[str], rng: np.random.Generator) -> str:
    """One sentence structure; every template can take any number of adjectives and clauses."""
    np_ = " ".join(adjs + [noun])
    cl = (" " + " ".join(clauses)) if clauses else ""
    if template == "t_np_clauses":
        return f"{_a(np_)} {np_}{cl}"
    if template == "t_noun_that_is":
        if adjs:
            return f"{_a(noun)} {noun} that is {_join_and(adjs)}{cl}"
        return f"{_a(noun)} {noun}{cl}"
    if template == "t_dancer_doing":
        return f"dancer doing {_a(np_)} {np_}{cl}"
    if template == "t_bare":
        return f"{np_}{cl}"
    if template == "t_clause_first":
        if clauses:
            return f"{clauses[0]}, {_a(np_)} {np_}" + ("".join(" " + c for c in clauses[1:]))
        return f"{_a(np_)} {np_}"
    if template == "h_find_me":
        return f"find me {_a(np_)} {np_}{cl}"
    if template == "h_comma_list":
        head = f"{noun}, {_join_and(adjs)}" if adjs else noun
        return head + ("".join(", " + c for c in clauses))
    if template == "h_looking_for":
        return f"looking for {np_}s{cl}" if not noun.endswith("y") else f"looking for some {np_}{cl}"
    if template == "h_video_of":
        return f"clip of someone performing {_a(np_)} {np_}{cl}"
    raise KeyError(template)


def _move_labels(tags: dict) -> list[str]:
    return [m for part in MOVE_PARTS for m in tags.get(part, [])]


def caption(tags: dict, rng: np.random.Generator, held_out: bool) -> tuple[str, dict[str, str], str]:
    """One caption for a clip's ``tags``: (text, the attributes it states, template id)."""
    g = next(x for x in GENRES if x.name == tags["genre"])
    k = int(rng.choice([1, 2, 2, 3, 3, 3, 4]))
    pool = [a for a in ATTRIBUTES if a != "genre" and (a != "move" or _move_labels(tags))]
    chosen = list(rng.choice(pool, size=min(k, len(pool)), replace=False))
    if rng.random() < 0.5:
        chosen = ["genre"] + chosen[: max(0, k - 1)]
    if rng.random() < MUSIC_MENTION_PROB and not set(chosen) & set(MUSIC_ONLY):
        chosen.append(str(rng.choice(MUSIC_ONLY)))
    adjs: list[str] = []
    clauses: list[str] = []
    stated: dict[str, str] = {}
    for attr in chosen:
        if attr == "genre":
            stated["genre"] = tags["genre"]
            continue
        if attr == "move":
            labels = _move_labels(tags)
            lab = labels[int(rng.integers(len(labels)))]
            stated["move"] = lab
            clauses.append(f"{rng.choice(['with', 'featuring', 'full of'])} {lab}")
            continue
        value = tags[attr]
        adj, cl = SYNONYMS[attr][value]
        stated[attr] = value
        if adj and (not cl or rng.random() < 0.6) and len(adjs) < 3:
            adjs.append(str(rng.choice(adj)))
        else:
            clauses.append(str(rng.choice(cl)))
    if "genre" in stated:
        noun = f"{rng.choice(g.words)} {rng.choice(GENRE_NOUNS)}" if rng.random() < 0.7 else str(rng.choice(g.words))
    else:
        noun = str(rng.choice(NOUNS))
    templates = TEST_TEMPLATES if held_out else TRAIN_TEMPLATES
    template = str(rng.choice(templates))
    text = render(template, adjs, noun, clauses, rng)
    return re.sub(r"\s+", " ", text).strip(), stated, template


def caption_records(tags: dict, rng: np.random.Generator, held_out: bool, count: int = 5
                    ) -> list[tuple[str, dict[str, str], str]]:
    """``count`` captions with distinct texts as (text, stated attributes, template id)."""
    out: list[tuple[str, dict[str, str], str]] = []
    for _ in range(count * 4):
        rec = caption(tags, rng, held_out)
        if all(rec[0] != o[0] for o in out):
            out.append(rec)
        if len(out) == count:
            break
    return out


def captions_for(tags: dict, rng: np.random.Generator, held_out: bool, count: int = 5) -> list[str]:
    """``count`` distinct caption texts (see :func:`caption_records`)."""
    return [r[0] for r in caption_records(tags, rng, held_out, count)]


# ---------------------------------------------------------------- reading captions back (for checks)
@lru_cache(maxsize=None)
def _patterns() -> list[tuple[str, str, re.Pattern]]:
    pats = []
    for attr, values in SYNONYMS.items():
        for value, (adj, cl) in values.items():
            for phrase in adj + cl:
                pats.append((attr, value, re.compile(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])")))
    for g in GENRES:
        for w in g.words:
            pats.append(("genre", g.name, re.compile(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])")))
    return pats


def mentioned(text: str) -> dict[str, set[str]]:
    """Attributes a caption states, read from its words alone: attribute -> values found."""
    found: dict[str, set[str]] = {}
    for attr, value, pat in _patterns():
        if pat.search(text):
            found.setdefault(attr, set()).add(value)
    return found
