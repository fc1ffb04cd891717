"""Qualitative report: the top 5 clips of sample queries, with their captions and tags (failure analysis).

Why: aggregate metrics say *how often* retrieval fails, not *how*. The paper's failure-case analysis
reads the top results of individual queries; this module prints them as markdown so a reviewer can
see, e.g., that "slow waltz" returns slow clips of another genre (a genre confusion) rather than fast
waltzes (a tempo confusion).

Sample queries come from a file (one per line, ``#`` comments) or, by default, from
:func:`default_queries`: a fixed set of free-text queries plus seeded test captions of each genre
(whose own clip is then known and marked).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.errors import InputError

TOP_K = 5

# Free-text queries covering the caption attribute families of eval/breakdown.py.
FREE_TEXT_QUERIES: tuple[str, ...] = (
    "a slow waltz turning in circles",
    "fast energetic hip hop footwork",
    "a graceful ballet dancer spinning on one leg",
    "powerful krump with stomping feet and arm swings",
    "a dancer jumps repeatedly in place",
    "gentle swaying of the hips from side to side",
    "salsa",
)


@dataclass
class SampleQuery:
    """A query text, and the gallery index of the clip it was written for (None for free text)."""

    text: str
    own_index: int | None = None
    origin: str = "free text"


@dataclass
class QueryResult:
    query: SampleQuery
    hits: list[dict[str, Any]] = field(default_factory=list)
    own_rank: int | None = None     # pessimistic rank of the own clip over the whole gallery


def read_queries(path: str | Path) -> list[SampleQuery]:
    """One query per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot read the queries file: {exc}") from exc
    out = [SampleQuery(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not out:
        raise InputError(p, "no query in the file (one query per line)")
    return out


def default_queries(captions: Sequence[str], query_clip: Sequence[int], genres: Sequence[str],
                    per_genre: int = 1, seed: int = 0) -> list[SampleQuery]:
    """The free-text set plus ``per_genre`` seeded test captions per genre (their own clip is known).

    ``captions[i]`` is a test caption of gallery clip ``query_clip[i]`` whose genre is ``genres[i]``.
    """
    rng = np.random.default_rng(seed)
    out = [SampleQuery(t) for t in FREE_TEXT_QUERIES]
    by_genre: dict[str, list[int]] = {}
    for i, g in enumerate(genres):
        by_genre.setdefault(g, []).append(i)
    for g in sorted(by_genre):
        idx = by_genre[g]
        for i in rng.choice(idx, size=min(per_genre, len(idx)), replace=False):
            out.append(SampleQuery(captions[int(i)], int(query_clip[int(i)]), f"test caption ({g})"))
    return out


def top_k(query_emb: np.ndarray, gallery_emb: np.ndarray, clips: Sequence[dict[str, Any]],
          queries: Sequence[SampleQuery], k: int = TOP_K) -> list[QueryResult]:
    """Rank the gallery for each query (cosine of L2-normalised embeddings) and keep the top ``k``.

    ``clips[j]`` describes gallery item ``j`` (``key``, ``genre``, ``captions``, ``tags`` at least).
    Ties are ordered by gallery index (stable sort), the own-clip rank is pessimistic as in the metrics.
    """
    q = np.asarray(query_emb, dtype=np.float64)
    g = np.asarray(gallery_emb, dtype=np.float64)
    if q.shape[0] != len(queries) or g.shape[0] != len(clips):
        raise ValueError("one embedding per query and per gallery clip expected")
    sim = q @ g.T
    results = []
    for i, query in enumerate(queries):
        order = np.argsort(-sim[i], kind="stable")[:k]
        hits = []
        for r, j in enumerate(order, start=1):
            c = clips[int(j)]
            hits.append({"rank": r, "score": float(sim[i, j]), "key": c.get("key"), "genre": c.get("genre"),
                         "captions": list(c.get("captions") or []), "tags": dict(c.get("tags") or {}),
                         "own": query.own_index is not None and int(j) == query.own_index})
        own_rank = None
        if query.own_index is not None:
            own_rank = int(np.count_nonzero(sim[i] >= sim[i, query.own_index]))
        results.append(QueryResult(query, hits, own_rank))
    return results


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _tags(tags: dict[str, Any]) -> str:
    return ", ".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(tags.items())) or "-"


def qualitative_markdown(results: Sequence[QueryResult], gallery_size: int, model_id: str, split: str) -> str:
    """Markdown: one section per query with its top results (captions, tags), own clip marked."""
    lines = [f"## Qualitative results ({split} split, gallery of {gallery_size} clips, model `{model_id}`)", "",
             "Each query's top results by cosine similarity; **bold** marks the clip a test caption was "
             "written for, `own rank` is its rank in the whole gallery (ties counted against the model).", ""]
    for res in results:
        q = res.query
        head = f"### \"{_cell(q.text)}\" ({q.origin})"
        if res.own_rank is not None:
            head += f" - own rank {res.own_rank} / {gallery_size}"
        lines += [head, "", "| # | score | clip | genre | captions | tags |", "|---:|---:|---|---|---|---|"]
        for h in res.hits:
            key = f"**{h['key']}**" if h["own"] else str(h["key"])
            caps = " / ".join(_cell(c) for c in h["captions"]) or "-"
            lines.append(f"| {h['rank']} | {h['score']:.3f} | {key} | {h['genre']} | {caps} | {_cell(_tags(h['tags']))} |")
        lines.append("")
    return "\n".join(lines)


def results_as_dict(results: Sequence[QueryResult]) -> list[dict[str, Any]]:
    return [{"query": r.query.text, "origin": r.query.origin, "own_rank": r.own_rank, "top": r.hits}
            for r in results]
