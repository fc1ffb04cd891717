"""People's words for the catalog genres: query expansion at search time, caption paraphrases at training time.

Why this exists (issue 17): the retrieval model learnt its text side from procedural captions that name a
genre only by a handful of synonyms ("breaking", "b-boying", ...). Real users type step names and jargon
("toprock and windmills"), moods ("raw battle energy"), comparisons ("like Michael Jackson") and typos
("brakedance"); the frozen text backbone has never been told that those words mean a genre, so results
land in the wrong genre family. The bridge is a hand-written vocabulary
(``encoders/assets/genre_vocabulary.json``) used two ways:

* :meth:`GenreVocabulary.expand_query` - when a query uses genre jargon but names no genre in the corpus's
  words, append the best genre's name in the captions' style ("toprock and windmills" ->
  "toprock and windmills, a breaking dance"), so the model sees the word it knows.
* :meth:`GenreVocabulary.paraphrase_caption` - rewrite a training caption in people's words (jargon
  appended, a mood, a typo in the genre word, the genre word dropped in favour of jargon), so the adapter
  learns the jargon itself.

Layering: this module is part of ``encoders`` and must not import ``generation`` (encoders <- indexer <-
generation); the genre names the corpus uses are therefore kept in the vocabulary file (``names``).
Everything is deterministic: expansion depends on the text alone, paraphrases on the text and the rng.
"""
from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputError

__all__ = ["GenreVocabulary", "VocabularyEntry", "QueryExpansion", "Hit", "expand_query", "paraphrase_caption",
           "KINDS", "MIN_SCORE", "MIN_SCORE_IN_CONTEXT", "TIE_RATIO", "DISTINCTIVE_KINDS", "DISTINCTIVE_WEIGHT"]

# per-genre lists of phrases, by what they are (the file's field names)
KINDS: tuple[str, ...] = ("names", "terms", "moods", "comparisons", "misspellings")
_TOP_KEYS = frozenset({"about", "version", "context", "false_friends", "genres"})
_GENRE_KEYS = frozenset({"label"} | set(KINDS))
_ENTRY_KEYS = frozenset({"phrase", "weight", "augment"})

# A query gets a genre appended only when the evidence is strong enough: summed entry weights of at
# least MIN_SCORE, or MIN_SCORE_IN_CONTEXT when the text also says it is about dance ("a dance with
# locks and points" yes, "locks and points" no) ...
MIN_SCORE = 0.6
MIN_SCORE_IN_CONTEXT = 0.3
# ... and never on one ordinary word: the evidence for the genre must include a distinctive entry (a name,
# misspelling or term of at least DISTINCTIVE_WEIGHT: "toprock", "tutting", "brakedance") or two
# independent hits (different vocabulary phrases: "raw buck session"). Moods and comparisons ("dramatic",
# "graceful", "street", "like a bird") and terms below DISTINCTIVE_WEIGHT ("locks", "ballroom") never
# decide alone, even in dance context: "a dramatic dance" is a generic query, not a tango query.
DISTINCTIVE_KINDS: tuple[str, ...] = ("names", "terms", "misspellings")
DISTINCTIVE_WEIGHT = 0.6
# a runner-up genre scoring at least this share of the best is appended too ("a salsa or tango dance")
TIE_RATIO = 0.85
# a typo-tolerant match (one edit) counts this share of the entry's weight
FUZZY_FACTOR = 0.8
# typo tolerance only for query words this long, against entries at least this distinctive
FUZZY_MIN_LEN = 5
FUZZY_MIN_WEIGHT = 0.8
# paraphrases append jargon of at least this weight (clear signs of the genre, not shared words)
PARAPHRASE_MIN_WEIGHT = 0.6
# the nouns a genre word in a caption may be followed by ("a breaking routine")
_CAPTION_NOUNS = r"(?:dance|routine|piece|sequence|number|choreography|performance|dancing)s?"


def _default_path() -> Path:
    return Path(str(resources.files("encoders") / "assets" / "genre_vocabulary.json"))


def normalise(text: str) -> list[str]:
    """Lower-case word tokens with accents and apostrophes dropped, every other non-alphanumeric a break.

    "Plié" -> ["plie"], "b-boy" -> ["b", "boy"], "poppin'" -> ["poppin"], "on1/on2" -> ["on1", "on2"]:
    people write jargon with and without hyphens and accents, so both spellings must meet.
    """
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    t = t.replace("'", "").replace("\u2019", "").replace("&", " and ")
    return re.findall(r"[a-z0-9]+", t)


def stem(token: str) -> str:
    """A plural-insensitive form ("windmills" = "windmill", "waltzes" = "waltz"), the same on both sides."""
    if len(token) > 5 and token.endswith(("zes", "xes", "ches", "shes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def _osa_distance(a: str, b: str, limit: int = 1) -> int:
    """Optimal-string-alignment (Damerau-Levenshtein) distance, capped at ``limit + 1`` for speed."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class VocabularyEntry:
    """One phrase that points to one genre.

    ``weight`` in (0, 1]: how surely the phrase means this genre. ``augment``: whether training
    paraphrases may add it (False for moves and attribute values the corpus tags per clip).
    """

    phrase: str
    genre: str
    kind: str
    weight: float = 1.0
    augment: bool = True
    tokens: tuple[str, ...] = ()


class Hit(NamedTuple):
    """One match in a query: the words matched, the vocabulary phrase they matched, its genre."""

    matched: str
    term: str
    genre: str


@dataclass(frozen=True)
class QueryExpansion:
    """What :meth:`GenreVocabulary.expand_query` did to a query.

    ``text``: the query to encode (``original`` unchanged, or with genre names appended); ``genres``:
    genre -> summed weight of its hits, best first; ``hits``: every match; ``appended``: the genres
    whose names were appended (empty when the text was left as it is).
    """

    text: str
    original: str
    genres: dict[str, float] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    appended: tuple[str, ...] = ()


class GenreVocabulary:
    """The validated contents of a genre vocabulary file, with an index for matching.

    Build with :meth:`load`; the default (package data) is loaded once per process.
    """

    def __init__(self, *, path: str, about: str, labels: dict[str, str], entries: tuple[VocabularyEntry, ...],
                 context: frozenset[str], false_friends: frozenset[str]) -> None:
        self.path = path
        self.about = about
        self.labels = labels
        self.genres: tuple[str, ...] = tuple(labels)
        self.entries = entries
        self.context = context
        self.false_friends = false_friends
        self._order = {g: i for i, g in enumerate(self.genres)}
        self._by_genre: dict[tuple[str, str], list[VocabularyEntry]] = {}
        for e in entries:
            self._by_genre.setdefault((e.genre, e.kind), []).append(e)
        self._by_first: dict[str, list[VocabularyEntry]] = {}
        for e in entries:
            self._by_first.setdefault(e.tokens[0], []).append(e)
        # single-word entries distinctive enough to be matched with a one-edit typo
        # (by first letter: a typo of the first letter is rare, and requiring it keeps "mango" from "tango")
        self._fuzzy: dict[str, list[tuple[str, VocabularyEntry]]] = {}
        for e in entries:
            if (len(e.tokens) == 1 and len(e.tokens[0]) >= FUZZY_MIN_LEN and e.weight >= FUZZY_MIN_WEIGHT
                    and e.kind != "misspellings" and e.tokens[0] not in false_friends and not e.tokens[0].isdigit()):
                self._fuzzy.setdefault(e.tokens[0][0], []).append((e.tokens[0], e))
        self._known_tokens = frozenset(t for e in entries for t in e.tokens)
        self._names: dict[str, list[tuple[str, re.Pattern[str]]]] = {
            g: [(e.phrase, re.compile(r"(?<![\w-])" + re.escape(e.phrase) + r"(?![\w-])", re.IGNORECASE))
                for e in sorted(self.entries_of(g, "names"), key=lambda e: -len(e.phrase))]
            for g in self.genres}

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None) -> "GenreVocabulary":
        """The vocabulary at ``path``, or the shipped one (cached) when ``path`` is None.

        Raises :class:`InputError` naming the file and the field for anything malformed, so a broken
        edit of the file fails at load time and not as silently wrong search results.
        """
        if path is None:
            return _default_vocabulary()
        return cls._parse(Path(path))

    @classmethod
    def _parse(cls, path: Path) -> "GenreVocabulary":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(path, f"cannot read the genre vocabulary: {exc.strerror or exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise InputError(path, "the genre vocabulary must be a JSON object", expected="object",
                             got=type(raw).__name__)
        unknown = sorted(set(raw) - _TOP_KEYS)
        if unknown:
            raise InputError(path, "unknown key", field=unknown[0], expected=", ".join(sorted(_TOP_KEYS)),
                             got=", ".join(unknown))
        about = raw.get("about")
        if not isinstance(about, str) or not about.strip():
            raise InputError(path, "must say what the file is", field="about", expected="a non-empty string",
                             got=repr(about))
        context = _word_set(path, raw.get("context", []), "context")
        false_friends = _word_set(path, raw.get("false_friends", []), "false_friends")
        genres = raw.get("genres")
        if not isinstance(genres, dict) or not genres:
            raise InputError(path, "must map genre names to their vocabulary", field="genres",
                             expected="a non-empty object", got=type(genres).__name__)
        labels: dict[str, str] = {}
        entries: list[VocabularyEntry] = []
        for g, spec in genres.items():
            where = f"genres.{g}"
            if not isinstance(spec, dict):
                raise InputError(path, "must be an object", field=where, expected="object",
                                 got=type(spec).__name__)
            bad = sorted(set(spec) - _GENRE_KEYS)
            if bad:
                raise InputError(path, "unknown key", field=f"{where}.{bad[0]}",
                                 expected=", ".join(sorted(_GENRE_KEYS)), got=", ".join(bad))
            seen: dict[tuple[str, ...], str] = {}
            for kind in KINDS:
                items = spec.get(kind, [])
                if not isinstance(items, list):
                    raise InputError(path, "must be a list", field=f"{where}.{kind}", expected="list",
                                     got=type(items).__name__)
                if kind in ("names", "terms") and not items:
                    raise InputError(path, "must not be empty", field=f"{where}.{kind}",
                                     expected="at least one phrase", got="[]")
                for i, item in enumerate(items):
                    e = _entry(path, f"{where}.{kind}[{i}]", item, g, kind)
                    # the corpus writes some names two ways ("hip-hop", "hip hop"): both kept for captions
                    if e.tokens in seen and not (kind == "names" and seen[e.tokens].startswith("names ")):
                        raise InputError(path, "duplicate phrase in one genre", field=f"{where}.{kind}[{i}]",
                                         expected="each phrase once per genre",
                                         got=f"{e.phrase!r} (also as {seen[e.tokens]})")
                    seen[e.tokens] = f"{kind} {e.phrase!r}"
                    entries.append(e)
            label = spec.get("label")
            names = {e.phrase for e in entries if e.genre == g and e.kind == "names"}
            if not isinstance(label, str) or label not in names:
                raise InputError(path, "must be one of the genre's names", field=f"{where}.label",
                                 expected=f"one of {sorted(names)}", got=repr(label))
            labels[g] = label
        return cls(path=str(path), about=about, labels=labels, entries=tuple(entries), context=context,
                   false_friends=false_friends)

    # ------------------------------------------------------------------------------------------ lookups
    def entries_of(self, genre: str, kind: str | None = None) -> list[VocabularyEntry]:
        """The entries of one genre, optionally of one kind ("terms", "moods", ...), in file order."""
        if kind is not None:
            return list(self._by_genre.get((genre, kind), ()))
        return [e for e in self.entries if e.genre == genre]

    def caption_name(self, genres: list[str] | tuple[str, ...]) -> str:
        """Genres named the way the corpus captions name them: "a breaking dance", "a salsa or tango dance"."""
        words = " or ".join(self.labels[g] for g in genres)
        return f"{_article(words)} {words} dance"

    def named_genres(self, text: str) -> list[str]:
        """Genres whose corpus name (``names``) the text contains, in vocabulary order."""
        toks = [stem(t) for t in normalise(text)]
        out = []
        for g in self.genres:
            for e in self.entries_of(g, "names"):
                n = len(e.tokens)
                if any(tuple(toks[i:i + n]) == e.tokens for i in range(len(toks) - n + 1)):
                    out.append(g)
                    break
        return out

    def match(self, text: str) -> list[tuple[Hit, float]]:
        """Every vocabulary match in ``text`` with the weight it contributes.

        Multi-word phrases first (longest, then leftmost; matches do not overlap); a word of 5+ letters
        that matched nothing may match a distinctive single-word entry with one edit (insertion,
        deletion, substitution or swap of neighbours), provided it starts with the same letter and is not
        a listed false friend (an ordinary English word such as "looking" next to "locking").

        The longest phrase decides which genres a span of words points to, but not how weakly: the span
        counts with the strongest entry of those genres inside it ("finger tutting", a move the corpus
        shares between popping and urban, still says "tutting"; see :meth:`_matches`).
        """
        return [(hit, w) for hit, w, _ in self._matches(text)]

    def _matches(self, text: str) -> list[tuple[Hit, float, bool]]:
        """:meth:`match` with, per hit, whether it is distinctive enough to decide a genre alone.

        A kept span's genres are those of its longest matching phrase (entries inside the span for other
        genres do not count: "long water sleeves" is han-tang, though "water sleeves" is shen yun too). Each
        genre scores the largest weight among the entries inside the span for any of those genres, scaled
        by the longest phrase's own weights relative to each other ("finger tutting", listed under popping
        and urban at the same weight, is 0.9 for both through "tutting": the phrase says which genres, the
        inner word how surely), and never less than its own strongest entry in the span, which is
        ``Hit.term``. A hit is distinctive when the entry that gave its weight is of a
        :data:`DISTINCTIVE_KINDS` kind and weighs at least :data:`DISTINCTIVE_WEIGHT` (after the typo
        discount).
        """
        raw = normalise(text)
        toks = [stem(t) for t in raw]
        cands: list[tuple[int, int, bool, VocabularyEntry]] = []
        for i, t in enumerate(toks):
            for e in self._by_first.get(t, ()):
                n = len(e.tokens)
                if tuple(toks[i:i + n]) == e.tokens:
                    cands.append((i, i + n, False, e))
        exact_starts = {c[0] for c in cands}
        for i, t in enumerate(toks):
            if (i in exact_starts or len(raw[i]) < FUZZY_MIN_LEN or t in self._known_tokens
                    or raw[i] in self.false_friends or t in self.false_friends or t in self.context):
                continue
            for target, e in self._fuzzy.get(t[0], ()):
                if abs(len(target) - len(t)) <= 1 and _osa_distance(t, target) <= 1:
                    cands.append((i, i + 1, True, e))
        cands.sort(key=lambda c: (-(c[1] - c[0]), c[2], c[0]))
        # keep non-overlapping spans; the longest phrase at a span names its genres (best entry each)
        kept: dict[tuple[int, int, bool], dict[str, tuple[float, VocabularyEntry]]] = {}
        for start, end, fuzzy, e in cands:
            span = (start, end, fuzzy)
            if span not in kept:
                if any(s < end and start < t for s, t, _ in kept):
                    continue
                kept[span] = {}
            weight = e.weight * (FUZZY_FACTOR if fuzzy else 1.0)
            if e.genre not in kept[span] or weight > kept[span][e.genre][0]:
                kept[span][e.genre] = (weight, e)

        def strength(we: tuple[float, VocabularyEntry]) -> tuple[float, bool]:
            return we[0], we[1].kind in DISTINCTIVE_KINDS     # equal weights: a term before a comparison

        def decisive(w: float, e: VocabularyEntry) -> bool:
            return e.kind in DISTINCTIVE_KINDS and w >= DISTINCTIVE_WEIGHT

        out: list[tuple[Hit, float, bool]] = []
        for span in sorted(kept):
            start, end, fuzzy = span
            own = kept[span]
            # the strongest entry of each of the span's genres anywhere inside it ("tutting" in "finger tutting")
            best = dict(own)
            for s, t, f, e in cands:
                if start <= s and t <= end and (s, t, f) != span and e.genre in own:
                    we = (e.weight * (FUZZY_FACTOR if f else 1.0), e)
                    if strength(we) > strength(best[e.genre]):
                        best[e.genre] = we
            top_own = max(w for w, _ in own.values())
            lift_w, lift_e = max(best.values(), key=strength)
            matched = " ".join(raw[start:end])
            for g in sorted(own, key=self._order.__getitem__):
                w, e = best[g]
                shared = lift_w * own[g][0] / top_own        # the span's strength in the phrase's proportions
                weight = max(w, shared)
                distinctive = decisive(w, e) or (shared >= w and decisive(shared, lift_e))
                out.append((Hit(matched, e.phrase, g), weight, distinctive))
        return out

    # ------------------------------------------------------------------------------------------ expansion
    def expand_query(self, text: str) -> QueryExpansion:
        """Append the genre a jargon query points to, in the corpus captions' words; else leave it.

        The text is left unchanged when nothing matches, when it already names a genre (the model knows
        those words), or when the evidence is weak: below :data:`MIN_SCORE` (:data:`MIN_SCORE_IN_CONTEXT`
        in dance context), or without a distinctive hit or two independent hits for the genre (a mood,
        a comparison or a common word never decides alone: "a dramatic dance" stays generic). Up to two
        genres are appended when the runner-up is within :data:`TIE_RATIO` of the best and has such
        evidence too.
        """
        scored = self._matches(text)
        scores: dict[str, float] = {}
        terms: dict[str, set[str]] = {}
        distinctive: set[str] = set()
        for hit, w, strong in scored:
            scores[hit.genre] = scores.get(hit.genre, 0.0) + w
            terms.setdefault(hit.genre, set()).add(hit.term)
            if strong:
                distinctive.add(hit.genre)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], self._order[kv[0]]))
        genres = {g: round(s, 4) for g, s in ranked}
        hits = [h for h, _, _ in scored]
        unchanged = QueryExpansion(text=text, original=text, genres=genres, hits=hits)
        if not ranked or self.named_genres(text):
            return unchanged

        def decides(g: str) -> bool:
            return g in distinctive or len(terms[g]) >= 2

        in_context = any(stem(t) in self.context for t in normalise(text))
        best_genre, best = ranked[0]
        if best < (MIN_SCORE_IN_CONTEXT if in_context else MIN_SCORE) or not decides(best_genre):
            return unchanged
        chosen = [best_genre] + [g for g, s in ranked[1:2] if s >= TIE_RATIO * best and decides(g)]
        head = text.rstrip().rstrip(".,;:!?").rstrip()
        return QueryExpansion(text=f"{head}, {self.caption_name(chosen)}", original=text, genres=genres,
                              hits=hits, appended=tuple(chosen))

    # ------------------------------------------------------------------------------------------ paraphrase
    def paraphrase_caption(self, caption: str, genre: str, rng: np.random.Generator,
                           p_replace: float = 0.5) -> str:
        """A people's-words variant of a corpus caption of ``genre`` (training augmentation).

        When the caption names the genre, with probability ``p_replace`` the genre word is either
        misspelt or dropped in favour of appended jargon ("a fast breaking dance" -> "a fast dance, with
        windmills and headspins"); otherwise jargon is appended and / or a mood added. Every other word
        of the caption is kept (its other attributes stay true), added phrases come only from entries
        allowed for augmentation, the result is never empty and depends only on the inputs and ``rng``.
        """
        if genre not in self.labels:
            raise InputError(self.path, f"unknown genre {genre!r}", field="genre",
                             expected=", ".join(self.genres), got=repr(genre))
        if not 0.0 <= p_replace <= 1.0:
            raise InputError(None, "must be a probability", field="p_replace", expected="0..1",
                             got=repr(p_replace))
        text = re.sub(r"\s+", " ", caption).strip()
        low = " ".join(normalise(text))
        terms = [e for e in self.entries_of(genre, "terms") if e.augment and e.weight >= PARAPHRASE_MIN_WEIGHT
                 and f" {' '.join(normalise(e.phrase))} " not in f" {low} "]
        moods = [e for e in self.entries_of(genre, "moods") if e.augment
                 and f" {' '.join(normalise(e.phrase))} " not in f" {low} "]
        if not text:        # nothing to keep: say the genre in people's words
            return self.caption_name([genre]) + (f" with {_pick(terms, rng, 1)}" if terms else "")
        span = self._name_span(text, genre)
        if span is not None and rng.random() < p_replace:
            start, end = span
            if not terms or rng.random() < 0.5:
                return _tidy(text[:start] + self._misspell(text[start:end], genre, rng) + text[end:])
            before, after = text[:start], text[end:]
            if re.match(r"\s+" + _CAPTION_NOUNS + r"(?![\w-])", after, re.IGNORECASE):
                after = after.lstrip()          # "a fast breaking dance" -> "a fast dance"
            else:
                after = "dance" + after         # "breaking with sharp accents" -> "dance with sharp accents"
            return _tidy(_fix_article(before, after)) + f", with {_pick(terms, rng, 2)}"
        ops = [op for op, ok in (("terms", terms), ("mood", moods), ("both", terms and moods)) if ok]
        if not ops:         # a genre without paraphrase material: name it, which is true
            return _tidy(f"{text}, {self.caption_name([genre])}")
        op = ops[int(rng.integers(len(ops)))]
        out = text
        if op in ("mood", "both"):
            mood = moods[int(rng.integers(len(moods)))].phrase
            m = re.match(r"(a|an)\s+", out, re.IGNORECASE)
            if m:
                out = f"{_article(mood)} {mood} {out[m.end():]}"
            else:
                out = f"{out}, {mood} style"
        if op in ("terms", "both"):
            out = f"{out}, with {_pick(terms, rng, 2)}"
        return _tidy(out)

    def _name_span(self, text: str, genre: str) -> tuple[int, int] | None:
        for _, pat in self._names[genre]:
            m = pat.search(text)
            if m:
                return m.span()
        return None

    def _misspell(self, name: str, genre: str, rng: np.random.Generator) -> str:
        """A typo of a genre name as people make them: a listed misspelling close to it, or one edit."""
        low = name.lower()
        listed = [e.phrase for e in self.entries_of(genre, "misspellings")
                  if difflib.SequenceMatcher(None, e.phrase, low).ratio() >= 0.75 and e.phrase != low]
        if listed and rng.random() < 0.5:
            return listed[int(rng.integers(len(listed)))]
        words = name.split(" ")
        k = max(range(len(words)), key=lambda i: (len(words[i]), -i))
        words[k] = _typo(words[k], rng)
        return " ".join(words)


def _pick(entries: list[VocabularyEntry], rng: np.random.Generator, n: int) -> str:
    """Up to ``n`` distinct phrases joined with "and" ("windmills and headspins").

    Spelling variants of one phrase ("bboy", "b-boy") are not paired: that would say nothing new.
    """
    chosen: list[str] = []
    for i in rng.permutation(len(entries)):
        phrase = entries[int(i)].phrase
        flat = "".join(normalise(phrase))
        if all(difflib.SequenceMatcher(None, flat, "".join(normalise(c))).ratio() < 0.75 for c in chosen):
            chosen.append(phrase)
        if len(chosen) == n:
            break
    return " and ".join(chosen)


def _typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard-style edit that keeps the first letter: a dropped, doubled or swapped letter."""
    if len(word) < 4:
        return word + word[-1]
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(3))
    if op == 0:
        out = word[:i] + word[i + 1:]
    elif op == 1:
        out = word[:i] + word[i] + word[i:]
    else:
        out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return out if out != word else word[:i] + word[i] + word[i:]


def _fix_article(head: str, rest: str) -> str:
    """``head + rest`` with a trailing "a"/"an" of ``head`` agreeing with the first word of ``rest``."""
    m = re.search(r"(?:^|\s)(a|an) $", head, re.IGNORECASE)
    nxt = rest.lstrip()
    if m and nxt:
        art = _article(nxt)
        if m.group(1)[0].isupper():
            art = art.capitalize()
        head = head[:m.start(1)] + art + " "
    return head + rest


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+,", ",", text)
    return re.sub(r",\s*,", ",", text)


def _entry(path: Path, where: str, item: object, genre: str, kind: str) -> VocabularyEntry:
    if isinstance(item, str):
        item = {"phrase": item}
    if not isinstance(item, dict):
        raise InputError(path, "must be a phrase or an object", field=where,
                         expected="string or {phrase, weight, augment}", got=type(item).__name__)
    bad = sorted(set(item) - _ENTRY_KEYS)
    if bad:
        raise InputError(path, "unknown key", field=f"{where}.{bad[0]}", expected=", ".join(sorted(_ENTRY_KEYS)),
                         got=", ".join(bad))
    phrase = item.get("phrase")
    if not isinstance(phrase, str) or not normalise(phrase):
        raise InputError(path, "must be a phrase with at least one word", field=f"{where}.phrase",
                         expected="a non-empty phrase", got=repr(phrase))
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 < float(weight) <= 1.0:
        raise InputError(path, "weight out of range", field=f"{where}.weight", expected="a number in (0, 1]",
                         got=repr(weight))
    augment = item.get("augment", True)
    if not isinstance(augment, bool):
        raise InputError(path, "must be true or false", field=f"{where}.augment", expected="boolean",
                         got=repr(augment))
    if kind == "names" and float(weight) != 1.0:
        raise InputError(path, "a genre name always has weight 1", field=f"{where}.weight", expected="1",
                         got=repr(weight))
    tokens = tuple(stem(t) for t in normalise(phrase))
    return VocabularyEntry(phrase=phrase.strip().lower(), genre=genre, kind=kind, weight=float(weight),
                           augment=augment, tokens=tokens)


def _word_set(path: Path, value: object, name: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise InputError(path, "must be a list of words", field=name, expected="list of non-empty strings",
                         got=repr(value)[:80])
    return frozenset(stem(t) for w in value for t in normalise(w))


@lru_cache(maxsize=1)
def _default_vocabulary() -> GenreVocabulary:
    return GenreVocabulary._parse(_default_path())


def expand_query(text: str, vocabulary: GenreVocabulary | None = None) -> QueryExpansion:
    """:meth:`GenreVocabulary.expand_query` with the shipped vocabulary (or ``vocabulary``)."""
    return (vocabulary or GenreVocabulary.load()).expand_query(text)


def paraphrase_caption(caption: str, genre: str, rng: np.random.Generator, p_replace: float = 0.5,
                       vocabulary: GenreVocabulary | None = None) -> str:
    """:meth:`GenreVocabulary.paraphrase_caption` with the shipped vocabulary (or ``vocabulary``)."""
    return (vocabulary or GenreVocabulary.load()).paraphrase_caption(caption, genre, rng, p_replace)
