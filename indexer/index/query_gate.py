"""The query gate: is a text query a *match* (the catalog has clips that fit), a *gap* (a dance the
catalog cannot serve well, e.g. a style it does not have) or *not_dance* (not about dance or movement)?

Why not the best score: the trained text encoder maps every text into the dance region of the shared
space, so "weather forecast for tomorrow" scores 0.4-0.5 against clips like real queries do, and the
old threshold (p10 of matched caption-clip scores, ~0.07) never fires.  The gate instead looks at
where the query falls relative to the catalog's own vocabulary, in two text spaces:

- ``joint``: the model's text embedding (the vector the search uses anyway).  A query close to some
  catalog caption (``j_cap``) is one the catalog serves; gap and non-dance texts both sit far.
- ``static``: the mean of MiniLM's word-piece *input* embeddings (``encoders.model.fast_text.
  StaticTokenBackbone``, the text backbone's own, untrained-by-us space; < 1 ms a query).  Here
  non-dance text is far from every caption (``s_cap``) and every dance-style name (``s_lex``), while a
  gap query is close to a style the catalog lacks (``s_lex``) rather than one it has (``s_served``).
- names: whether the text names a style the catalog lacks (``lex_hit``) or one it has (``served_hit``),
  from ``indexer/assets/dance_lexicon.json`` (data) split at build time by the catalog's served genres
  (:func:`served_genres`: genres of clips whose source is not ``generated``) and captions.

A small multinomial logistic model over these features is fitted on the ``calib`` half of the
labelled sets in ``indexer/assets/gate_queries/gate_*.jsonl`` (package data, like the lexicon; a directory
``$DANCESEARCH_GATE_QUERIES`` replaces them) plus val-split captions as extra matches, then the
match class gets a bias so that at most ``max_caption_flag_rate`` of val captions are flagged.  All
of it (feature names, standardisation, weights, bias, the lexicon split) is stored in the index
manifest under ``query_gate`` and the reference vectors in ``gate-<g>.npz``: thresholds are data.
An index without them keeps the old behaviour (``no_match`` from the score threshold only).

Reference captions come from the train split (never test, so test captions measure it honestly;
never clips of source ``generated``, so a generated clip does not turn its own prompt into a match).
Likewise a genre only generated clips have is not *served*: searches leave generated clips out by
default, so a query naming it is a gap, not a match.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .embedder import encode_queries

log = logging.getLogger("dancesearch.index")

GATE_FORMAT = 1
OUTCOMES: tuple[str, ...] = ("match", "gap", "not_dance")
CANDIDATE_FEATURES: tuple[str, ...] = ("j_cap", "j_cap5", "s_cap", "s_lex", "s_served", "j_lex", "lex_hit", "served_hit")
# 5-fold cross-validation on the calib half (demo model; `bench/bench_no_match.py --select-features`,
# docs/results/no_match.md): every subset of CANDIDATE_FEATURES x L2 in {1, 10}; this one ties the best
# worst-class accuracy (0.943, as do 116 of the 510 configurations) and keeps a feature of each kind
# (joint space, static space, names)
FEATURES: tuple[str, ...] = ("j_cap", "s_cap", "s_served", "j_lex", "lex_hit", "served_hit")
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"   # indexer/assets: package data
LEXICON_PATH = ASSETS_DIR / "dance_lexicon.json"
LABELLED_DIR = ASSETS_DIR / "gate_queries"                     # gate_<label>.jsonl, label in OUTCOMES
LABELLED_ENV = "DANCESEARCH_GATE_QUERIES"
GENERATED_SOURCE = "generated"
MAX_REFERENCE = 512          # train captions kept as the catalog's vocabulary (stratified by genre)
MAX_VAL_CAPTIONS = 120       # val captions: extra match examples and the false-gap calibration
MAX_CAPTION_FLAG_RATE = 0.02  # val captions the gate may flag (the target on test captions is < 5%)
L2 = 10.0


# --- text helpers ------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Lower-case words and digits separated by single spaces ("Hip-Hop!" -> "hip hop")."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _variants(name: str) -> set[str]:
    n = normalise(name)
    out = {n}
    for suffix in (" dance", " dancing", " dances"):
        if n.endswith(suffix) and len(n) > len(suffix) + 2:
            out.add(n[: -len(suffix)])
    return {v for v in out if v}


class NameMatcher:
    """Finds which of ``names`` (or a variant: without a trailing "dance", words run together) a text
    contains as whole words, by looking its word n-grams up in a dict (a few microseconds a query)."""

    def __init__(self, names: Iterable[str], blocked: Iterable[str] = ()) -> None:
        self.lookup: dict[str, str] = {}
        self.longest = 1
        skip = set(blocked)
        for name in names:
            for v in _variants(name):
                if v in skip and v != normalise(name):
                    continue
                self.lookup.setdefault(v, name)
                if " " in v and len(v.replace(" ", "")) >= 4:
                    self.lookup.setdefault(v.replace(" ", ""), name)
                self.longest = max(self.longest, len(v.split()))

    def find(self, text: str) -> list[str]:
        words = normalise(text).split()
        found: dict[str, None] = {}
        for n in range(1, self.longest + 1):
            for i in range(len(words) - n + 1):
                gram = words[i:i + n]
                name = self.lookup.get(" ".join(gram)) or (self.lookup.get("".join(gram)) if n > 1 else None)
                if name is not None:
                    found[name] = None
        return list(found)


def names_in(text: str, names: Iterable[str]) -> list[str]:
    """The ``names`` (any variant) that occur in ``text`` as whole words."""
    return NameMatcher(names).find(text)


def read_lexicon(path: Path | None = None) -> list[str]:
    data = json.loads(Path(path or LEXICON_PATH).read_text())
    return [str(n) for n in data["names"]]


def split_lexicon(lexicon: Sequence[str], genres: Iterable[str],
                  captions: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
    """(served, unserved, blocked): a name is served when it (or, for several words, its form without
    "dance") is a catalog genre or a phrase of its captions; ``blocked`` are one-word short forms that the
    captions use for something else ("swing" of "swing dance" in "a swing feel"), never matched alone."""
    genre_forms = set()
    for g in genres:
        genre_forms |= {normalise(g), normalise(g).replace(" ", "")}
    corpus = " " + " | ".join(normalise(c) for c in captions) + " "
    served, unserved, blocked = [], [], []
    for name in lexicon:
        vs = _variants(name)
        full = normalise(name)
        hit = any(v in genre_forms or v.replace(" ", "") in genre_forms for v in vs)
        hit = hit or any(f" {v} " in corpus for v in vs if v == full or " " in v)
        (served if hit else unserved).append(name)
        blocked += [v for v in vs if v != full and " " not in v and f" {v} " in corpus]
    return served, unserved, sorted(set(blocked))


def default_labelled_dir() -> Path:
    """Where the labelled gate queries live: ``$DANCESEARCH_GATE_QUERIES`` or the packaged
    ``indexer/assets/gate_queries``."""
    env = os.environ.get(LABELLED_ENV)
    return Path(env) if env else LABELLED_DIR


def labelled_paths(directory: Path | None = None) -> list[Path]:
    """The ``gate_<label>.jsonl`` files the gate is fitted on, one per label of OUTCOMES."""
    d = Path(directory) if directory is not None else default_labelled_dir()
    return [d / f"gate_{label}.jsonl" for label in OUTCOMES]


def missing_gate_data(directory: Path | None = None, lexicon: Path | None = None) -> list[Path]:
    """The gate's data files that do not exist (labelled sets and lexicon); empty when it can be fitted."""
    return [p for p in labelled_paths(directory) + [Path(lexicon or LEXICON_PATH)] if not p.is_file()]


def served_genres(attrs: Any) -> list[str]:
    """Sorted genres of an index's clips (``ClipAttributes``) that have a clip whose source is not
    ``generated``: what searches serve by default (they leave generated clips out)."""
    codes = np.asarray(attrs.genre)
    if GENERATED_SOURCE in attrs.source_vocab:
        codes = codes[np.asarray(attrs.source) != attrs.source_vocab.index(GENERATED_SOURCE)]
    vocab = attrs.genre_vocab
    return sorted({vocab[int(c)] for c in np.unique(codes) if 0 <= int(c) < len(vocab) and vocab[int(c)]})


def read_labelled(directory: Path | None = None, split: str | None = None) -> list[dict[str, str]]:
    """Rows ``{text, label, split}`` of ``gate_<label>.jsonl`` files (label in OUTCOMES)."""
    rows: list[dict[str, str]] = []
    for label, path in zip(OUTCOMES, labelled_paths(directory)):
        if not path.is_file():  # the builder names missing files (missing_gate_data) before it fits
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("label", label) != label:
                    raise ValueError(f"{path}: row labelled {row.get('label')!r} in the {label} file")
                if split is None or row.get("split") == split:
                    rows.append({"text": row["text"], "label": label, "split": row.get("split", "calib")})
    return rows


# --- the static (backbone input-embedding) space --------------------------------------------------
class StaticSpace:
    """Unit vectors of texts in MiniLM's word-piece input-embedding space (loaded once per process)."""

    _lock = threading.Lock()
    _backbone: Any = None
    _failed: str | None = None
    identity = "minilm-static-mean"

    @classmethod
    def available(cls) -> bool:
        return cls._get() is not None

    @classmethod
    def _get(cls) -> Any:
        with cls._lock:
            if cls._backbone is None and cls._failed is None:
                try:
                    from encoders.model.fast_text import StaticTokenBackbone

                    cls._backbone = StaticTokenBackbone()
                except Exception as exc:  # noqa: BLE001 - the gate is optional: without it, the old behaviour
                    cls._failed = str(exc)
                    log.warning("query gate disabled: the static text space does not load (%s)", exc)
            return cls._backbone

    @classmethod
    def encode(cls, texts: Sequence[str], batch: int = 256) -> np.ndarray:
        import torch

        bb = cls._get()
        if bb is None:
            raise RuntimeError(f"the static text space is unavailable: {cls._failed}")
        out = []
        with torch.no_grad():
            for s in range(0, len(texts), batch):
                out.append(bb(list(texts[s:s + batch])).float().cpu().numpy())
        v = np.concatenate(out) if out else np.zeros((0, 384), np.float32)
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)).astype(np.float32)


# --- features -----------------------------------------------------------------------------------------
def _max(a: np.ndarray) -> np.ndarray:
    return a.max(1) if a.shape[1] else np.zeros(a.shape[0], np.float32)


def features(texts: Sequence[str], joint: np.ndarray, static: np.ndarray, arrays: dict[str, np.ndarray],
             served: NameMatcher, unserved: NameMatcher) -> dict[str, np.ndarray]:
    """Every candidate feature (name -> (N,)) of queries given their joint and static vectors."""
    jc = joint @ arrays["ref_joint"].T
    top = np.sort(jc, axis=1)[:, -5:] if jc.shape[1] else np.zeros((len(texts), 1), np.float32)
    return {
        "j_cap": _max(jc),
        "j_cap5": top.mean(1),
        "s_cap": _max(static @ arrays["ref_static"].T),
        "s_lex": _max(static @ arrays["lex_static"].T),
        "s_served": _max(static @ arrays["served_static"].T),
        "j_lex": _max(joint @ arrays["lex_joint"].T),
        "lex_hit": np.asarray([1.0 if unserved.find(t) else 0.0 for t in texts], np.float32),
        "served_hit": np.asarray([1.0 if served.find(t) else 0.0 for t in texts], np.float32),
    }


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = L2) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (weighted cross-entropy + L2 on the weights), L-BFGS."""
    from scipy.optimize import minimize

    n, f = x.shape
    c = len(OUTCOMES)
    onehot = np.eye(c)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: c * f].reshape(c, f), theta[c * f:]
        p = _softmax(x @ w.T + b)
        ce = -(weights * np.log(np.clip((p * onehot).sum(1), 1e-12, None))).sum() / weights.sum()
        g = (weights[:, None] * (p - onehot)) / weights.sum()
        gw = g.T @ x + l2 * w / n
        return ce + 0.5 * l2 * float((w * w).sum()) / n, np.concatenate([gw.ravel(), g.sum(0)])

    res = minimize(loss, np.zeros(c * f + c), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[: c * f].reshape(c, f), res.x[c * f:]


@dataclass
class GateDecision:
    outcome: str
    reason: str
    scores: dict[str, float]
    named_missing: list[str] = field(default_factory=list)
    nearest_missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "scores": self.scores,
                "named_missing": self.named_missing, "nearest_missing": self.nearest_missing}


class QueryGate:
    """The fitted gate of one index generation (parameters from the manifest, vectors from gate-<g>.npz)."""

    def __init__(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.params = params
        self.arrays = arrays
        self.feature_names = list(params["features"])
        self.mean = np.asarray(params["mean"], np.float32)
        self.std = np.asarray(params["std"], np.float32)
        self.coef = np.asarray(params["coef"], np.float32)
        self.intercept = np.asarray(params["intercept"], np.float32)
        self.match_bias = float(params.get("match_bias", 0.0))
        self.served = list(params.get("served", []))
        self.unserved = list(params.get("unserved", []))
        self.served_names = NameMatcher(list(params.get("genres", [])) + self.served)
        self.unserved_names = NameMatcher(self.unserved, params.get("blocked", []))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray] | None) -> "QueryGate | None":
        params = manifest.get("query_gate")
        if not params or arrays is None or int(params.get("format", 0)) != GATE_FORMAT:
            return None
        if not StaticSpace.available():
            return None
        return cls(params, arrays)

    def raw_scores(self, texts: Sequence[str], joint: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        static = StaticSpace.encode(texts)
        feats = features(texts, np.asarray(joint, np.float32), static, self.arrays, self.served_names,
                         self.unserved_names)
        x = (np.stack([feats[n] for n in self.feature_names], 1) - self.mean) / self.std
        logits = x @ self.coef.T + self.intercept
        logits[:, 0] += self.match_bias
        return _softmax(logits), feats, static

    def classify(self, texts: Sequence[str], joint: np.ndarray) -> list[GateDecision]:
        """One decision per text (``joint``: the model's (N, D) text embeddings of ``texts``)."""
        if not len(texts):
            return []
        probs, feats, static = self.raw_scores(texts, joint)
        lex = self.arrays["lex_static"]
        out = []
        for i, text in enumerate(texts):
            k = int(np.argmax(probs[i]))
            outcome = OUTCOMES[k]
            scores = {o: round(float(probs[i, j]), 4) for j, o in enumerate(OUTCOMES)}
            named = self.unserved_names.find(text) if feats["lex_hit"][i] else []
            nearest = self.unserved[int(np.argmax(static[i] @ lex.T))] if lex.shape[0] else None
            out.append(GateDecision(outcome, self._reason(outcome, named, nearest), scores, named, nearest))
        return out

    @staticmethod
    def _reason(outcome: str, named: list[str], nearest: str | None) -> str:
        if outcome == "match":
            return "the catalog has clips that fit this description"
        if outcome == "not_dance":
            return ("this does not read as a description of dance or movement, so the results are unlikely to "
                    "fit and no dance will be generated for it; describe a dance (style, tempo, moves, music)")
        if named:
            return (f"the catalog has no {named[0]} clips, so the results only approximate this description; "
                    "a dance can be generated for it instead")
        return ("this describes a dance the catalog cannot serve well"
                + (f" (closest to {nearest}, a style it lacks)" if nearest else "")
                + "; the results only approximate it, and a dance can be generated for it instead")


def labelled_hash(rows: Sequence[dict[str, str]], lexicon: Sequence[str]) -> str:
    blob = json.dumps([[r["text"], r["label"], r["split"]] for r in rows] + [list(lexicon)], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _stratified(items: list[tuple[str, str]], count: int, seed: int) -> list[str]:
    """Up to ``count`` texts of (genre, text) pairs, round-robin over genres in a seeded order."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[str]] = {}
    for g, t in items:
        by.setdefault(g or "", []).append(t)
    pools = {g: [ts[i] for i in rng.permutation(len(ts))] for g, ts in sorted(by.items())}
    out: list[str] = []
    while len(out) < count and any(pools.values()):
        for g in list(pools):
            if pools[g] and len(out) < count:
                out.append(pools[g].pop())
    return out


@dataclass
class GateData:
    """What a gate fit works on: reference arrays, the lexicon split, and every candidate feature of the
    training texts (calib labelled rows, then val captions; ``origin`` 0 / 1 tells them apart)."""

    arrays: dict[str, np.ndarray]
    served: list[str]
    unserved: list[str]
    blocked: list[str]
    genres: list[str]
    labelled: list[dict[str, str]]
    lexicon: list[str]
    reference: int
    feats: dict[str, np.ndarray]
    y: np.ndarray
    origin: np.ndarray


def prepare_gate(embedder: Any, clips: Sequence[Any], captions: dict[int, list[str]], genres: Sequence[str],
                 labelled: Sequence[dict[str, str]] | None = None, lexicon: Sequence[str] | None = None,
                 seed: int = 0) -> GateData | None:
    """Everything :func:`calibrate_gate` fits on (see there); None when there is nothing to fit it on."""
    labelled = [r for r in (read_labelled(split="calib") if labelled is None else labelled) if r["split"] == "calib"]
    lexicon = list(read_lexicon() if lexicon is None else lexicon)
    if not labelled or {r["label"] for r in labelled} != set(OUTCOMES) or not StaticSpace.available():
        return None
    pool = [c for c in clips if (c.source or "") != GENERATED_SOURCE]
    own = {c.genre for c in pool if c.genre}
    generated_only = {c.genre for c in clips if c.genre and (c.source or "") == GENERATED_SOURCE} - own
    genres = [g for g in genres if g not in generated_only]
    train = [(c.genre, t) for c in pool if c.split == "train" for t in captions.get(c.id, [])]
    if not train:
        train = [(c.genre, t) for c in pool if c.split != "test" for t in captions.get(c.id, [])]
    if not train:
        return None
    val = [(c.genre, t) for c in pool if c.split == "val" for t in captions.get(c.id, [])]
    ref = _stratified(train, MAX_REFERENCE, seed)
    val_caps = _stratified(val, MAX_VAL_CAPTIONS, seed + 1)
    served, unserved, blocked = split_lexicon(lexicon, genres, [t for _, t in train + val])
    served_phrases = list(dict.fromkeys(list(genres) + served))
    enc = lambda ts: (np.concatenate([encode_queries(embedder, ts[s:s + 256]) for s in range(0, len(ts), 256)])  # noqa: E731
                      if ts else np.zeros((0, embedder.dim), np.float32))
    arrays = {"ref_joint": enc(ref), "ref_static": StaticSpace.encode(ref),
              "lex_joint": enc(unserved), "lex_static": StaticSpace.encode(unserved),
              "served_static": StaticSpace.encode(served_phrases)}
    texts = [r["text"] for r in labelled] + val_caps
    y = np.asarray([OUTCOMES.index(r["label"]) for r in labelled] + [0] * len(val_caps))
    origin = np.asarray([0] * len(labelled) + [1] * len(val_caps))
    feats = features(texts, enc(texts), StaticSpace.encode(texts), arrays, NameMatcher(served_phrases),
                     NameMatcher(unserved, blocked))
    return GateData(arrays, served, unserved, blocked, list(genres), labelled, lexicon, len(ref), feats, y, origin)


def fit_gate_model(x: np.ndarray, y: np.ndarray, origin: np.ndarray, l2: float = L2
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, std, coef, intercept, match bias) of the gate's model on features ``x`` (N, F), labels ``y``
    (indices into OUTCOMES) and ``origin`` (0: labelled row, 1: val caption, an extra match)."""
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-3)
    xs = (x - mean) / std
    # balanced classes (each weighs 1 in total); the val captions take half of the match class's weight
    w = np.zeros(len(y))
    for k in range(len(OUTCOMES)):
        for o in (0, 1):
            sel = (y == k) & (origin == o)
            if sel.any():
                share = 1.0 if not ((y == k) & (origin == 1 - o)).any() else 0.5
                w[sel] = share / sel.sum()
    coef, intercept = fit_logistic(xs, y, w, l2)
    logits = xs @ coef.T + intercept
    # the smallest match bias that flags at most MAX_CAPTION_FLAG_RATE of val captions
    bias = 0.0
    cap_rows = origin == 1
    if cap_rows.any():
        margin = logits[cap_rows, 0] - np.maximum(logits[cap_rows, 1], logits[cap_rows, 2])
        allowed = int(np.floor(MAX_CAPTION_FLAG_RATE * cap_rows.sum()))
        need = -np.sort(margin)[allowed] if allowed < len(margin) else 0.0
        bias = float(max(0.0, need + 1e-3))
    return mean, std, coef, intercept, bias


def predict_gate_model(x: np.ndarray, model: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> np.ndarray:
    """Class indices (into OUTCOMES) of features ``x`` under a :func:`fit_gate_model` result."""
    mean, std, coef, intercept, bias = model
    logits = ((x - mean) / std) @ coef.T + intercept
    return np.argmax(logits + np.asarray([bias, 0, 0]), 1)


def calibrate_gate(embedder: Any, clips: Sequence[Any], captions: dict[int, list[str]], genres: Sequence[str],
                   labelled: Sequence[dict[str, str]] | None = None, lexicon: Sequence[str] | None = None,
                   seed: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Fit the gate for a catalog: ``clips`` (rows with id, split, genre, source), ``captions`` (clip id ->
    texts), ``genres`` (the served genres: :func:`served_genres`, never those only generated clips have;
    generated genres that are passed anyway are dropped).  None when there is nothing to fit it on (no
    labelled calib rows, no train captions, or the static space is unavailable)."""
    data = prepare_gate(embedder, clips, captions, genres, labelled, lexicon, seed)
    if data is None:
        return None
    labelled, lexicon, genres, y, origin = data.labelled, data.lexicon, data.genres, data.y, data.origin
    served, unserved, blocked, arrays = data.served, data.unserved, data.blocked, data.arrays
    names = list(FEATURES)
    x = np.stack([data.feats[n] for n in names], 1)
    mean, std, coef, intercept, bias = model = fit_gate_model(x, y, origin, L2)
    cap_rows = origin == 1
    pred = predict_gate_model(x, model)
    lab = origin == 0
    calib_acc = {o: float((pred[lab & (y == k)] == k).mean()) for k, o in enumerate(OUTCOMES)}
    params = {
        "format": GATE_FORMAT,
        "method": "multinomial logistic regression on text-space features, match bias for <= "
                  f"{MAX_CAPTION_FLAG_RATE:.0%} flagged val captions",
        "features": names, "mean": mean.round(6).tolist(), "std": std.round(6).tolist(),
        "coef": coef.round(6).tolist(), "intercept": intercept.round(6).tolist(), "match_bias": round(bias, 6),
        "served": served, "unserved": unserved, "blocked": blocked, "static_space": StaticSpace.identity,
        "reference_captions": data.reference, "calibration": {
            "labelled_calib": {o: int(((y == k) & lab).sum()) for k, o in enumerate(OUTCOMES)},
            "val_captions": int(cap_rows.sum()),
            "calib_accuracy": calib_acc,
            "val_caption_flag_rate": float((pred[cap_rows] != 0).mean()) if cap_rows.any() else None,
        },
        "labelled_hash": labelled_hash(labelled, lexicon),
        "genres": sorted(genres),
    }
    return params, arrays
