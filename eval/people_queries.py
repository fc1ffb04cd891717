"""Queries in people's words (issue 17): genre P@5 and family P@5 of hand-written searches.

The query set (``eval/queries/people_words.jsonl``, described in ``eval/queries/README.md``) holds how
dancers and viewers type searches: jargon, moods, comparisons, descriptions, misspellings, genre names.
Each query carries the genre the person is looking for. The gallery is every clip of one catalog split
(``test`` by default), embedded exactly as ``eval retrieval`` embeds it (``indexer.datasets.examples_for_split``
+ ``eval.retrieval.embed_gallery``); each query ranks the gallery by cosine and its top 5 are scored:

- genre P@5: share of the top 5 whose genre equals the query's genre;
- family P@5: share of the top 5 whose genre family (``generation.procedural.taxonomy``) equals the query's.

Ties at the cut count against the model (a wrong clip scored equal to a right one ranks first), like the
pessimistic ties of ``eval.protocols``. Figures are means over queries, with percentile bootstrap intervals
over queries (``eval.bootstrap``), overall, per genre and per kind; two runs on the same queries are compared
with a paired bootstrap of the difference.

The query encoder is a parameter (:func:`score_queries` takes any ``texts -> (N, D)`` callable), so query
expansion can be measured: :func:`query_encoder` uses ``embedder.encode_query(texts, expand=...)`` when the
embedder has it, else ``encode_text``. The command line is ``dancesearch eval people-queries``
(registered in ``eval.suite_cli``; handler :func:`cmd_people_queries`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from encoders.cliutil import EXIT_OK, UsageError, emit, progress_enabled
from encoders.errors import DanceSearchError, InputError
from generation.procedural.taxonomy import GENRES

from .bootstrap import DEFAULT_REPLICATES, DEFAULT_SEED, bootstrap_ci, paired_difference_ci

DEFAULT_QUERIES = Path(__file__).resolve().parent / "queries" / "people_words.jsonl"
K = 5
FIELDS: tuple[str, ...] = ("id", "text", "genre", "family", "kind", "split")
KINDS: tuple[str, ...] = ("jargon", "mood", "comparison", "viewer", "misspelling", "named")
SPLITS: tuple[str, ...] = ("dev", "heldout")
SUBSETS: tuple[str, ...] = (*SPLITS, "all")
DEFAULT_SUBSET = "dev"
FAMILY_OF: dict[str, str] = {g.name: g.family for g in GENRES}

Encode = Callable[[Sequence[str]], np.ndarray]


# --- the query set ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeopleQuery:
    id: str
    text: str
    genre: str
    family: str
    kind: str
    split: str


def _norm_text(text: str) -> str:
    """Case- and punctuation-insensitive form, for the duplicate check."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def _check_row(row: Any, where: str) -> PeopleQuery:
    if not isinstance(row, dict):
        raise InputError(where, "each line must be one JSON object", expected="an object", got=type(row).__name__)
    for name in FIELDS:
        if name not in row:
            raise InputError(where, "missing field", field=name, expected=f"the fields {', '.join(FIELDS)}",
                             got=f"only {', '.join(sorted(row)) or 'none'}")
    for name in row:
        if name not in FIELDS:
            raise InputError(where, "unknown field", field=str(name), expected=f"only {', '.join(FIELDS)}",
                             got=repr(name))
    for name in FIELDS:
        value = row[name]
        if not isinstance(value, str) or not value.strip():
            raise InputError(where, "must be a non-empty string", field=name, expected="a non-empty string",
                             got=repr(value))
    if re.search(r"\s", row["id"]):
        raise InputError(where, "ids have no spaces", field="id", expected="e.g. pw-001", got=repr(row["id"]))
    choices = {"genre": tuple(FAMILY_OF), "kind": KINDS, "split": SPLITS}
    for name, allowed in choices.items():
        if row[name] not in allowed:
            raise InputError(where, f"unknown {name}", field=name, expected=f"one of {', '.join(allowed)}",
                             got=repr(row[name]))
    family = FAMILY_OF[row["genre"]]
    if row["family"] != family:
        raise InputError(where, f"not the family of genre {row['genre']!r} in generation/procedural/taxonomy.py",
                         field="family", expected=repr(family), got=repr(row["family"]))
    return PeopleQuery(**{name: row[name].strip() if name == "text" else row[name] for name in FIELDS})


def load_queries(path: str | Path | None = None) -> list[PeopleQuery]:
    """Read and validate a query file (default: the shipped set); errors name the file, line and field.

    Blank lines are skipped. Ids and texts (compared ignoring case and punctuation) must be unique.
    """
    path = Path(path) if path is not None else DEFAULT_QUERIES
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such query file", expected="a JSONL file, one query object per line",
                         got="missing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the query file: {exc}") from None
    out: list[PeopleQuery] = []
    ids: dict[str, int] = {}
    texts: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(where, f"not valid JSON ({exc.msg} at column {exc.colno})",
                             expected="one JSON object per line", got=repr(line[:60])) from None
        q = _check_row(row, where)
        if q.id in ids:
            raise InputError(where, f"duplicate id (first on line {ids[q.id]})", field="id", expected="unique ids",
                             got=repr(q.id))
        key = _norm_text(q.text)
        if key in texts:
            raise InputError(where, f"duplicate text (same words as line {texts[key]})", field="text",
                             expected="unique texts (ignoring case and punctuation)", got=repr(q.text))
        ids[q.id], texts[key] = lineno, lineno
        out.append(q)
    if not out:
        raise InputError(path, "no queries", expected="at least one query line", got="an empty file")
    return out


def select(queries: Sequence[PeopleQuery], subset: str) -> list[PeopleQuery]:
    """The ``dev`` or ``heldout`` half, or ``all`` queries."""
    if subset not in SUBSETS:
        raise DanceSearchError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    chosen = [q for q in queries if subset == "all" or q.split == subset]
    if not chosen:
        raise DanceSearchError(f"the query set has no {subset} queries")
    return chosen


def file_digest(path: str | Path) -> str:
    """First 12 hex of the file's sha256: which version of the set a report used."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# --- gallery and scoring ---------------------------------------------------------------------------------
@dataclass
class Gallery:
    """The clips of one catalog split, embedded by one model."""

    split: str
    model_id: str
    emb: np.ndarray              # (G, D)
    genres: list[str]
    keys: list[str]

    @property
    def size(self) -> int:
        return int(self.emb.shape[0])


def split_examples(workspace: Any, split: str) -> list[Any]:
    """The clips of ``split`` as ``ClipExample``s (``indexer.datasets``); an empty split is an error."""
    from indexer.datasets import examples_for_split

    examples = examples_for_split(workspace, split)
    if not examples:
        raise DanceSearchError(f"the {split} split has no clips: ingest data (dancesearch ingest ...) first")
    return examples


def embed_split(embedder: Any, workspace: Any, split: str, progress: bool = True,
                examples: Sequence[Any] | None = None) -> Gallery:
    """Every clip of ``split`` embedded with the same path as ``eval retrieval`` (``eval.suite``);
    ``examples``: that split's examples when the caller already has them."""
    from .retrieval import embed_gallery

    examples = list(examples) if examples is not None else split_examples(workspace, split)
    emb = embed_gallery(embedder, examples, progress)
    return Gallery(split, str(embedder.model_id), np.asarray(emb), [e.genre for e in examples],
                   [str(e.meta.get("key", e.clip_id)) for e in examples])


@dataclass
class QueryScores:
    """Per-query results, in query order."""

    genre_p: np.ndarray          # (Q,) genre P@k
    family_p: np.ndarray         # (Q,) family P@k
    top: np.ndarray              # (Q, k) gallery indices, best first
    k: int

    def metrics(self) -> dict[str, np.ndarray]:
        return {f"genre_P@{self.k}": self.genre_p, f"family_P@{self.k}": self.family_p}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def _share_in_top(sim_row: np.ndarray, correct: np.ndarray, k: int) -> float:
    """Share of correct items among the top k by score; at a tie, wrong items rank first (pessimistic)."""
    order = np.lexsort((correct.astype(np.int8), -sim_row))   # by score, then wrong before right
    return float(correct[order[:k]].mean())


def precision_at_k(query_emb: np.ndarray, gallery_emb: np.ndarray, query_genres: Sequence[str],
                   gallery_genres: Sequence[str], k: int = K) -> QueryScores:
    """Genre and family P@k of each query against the gallery (cosine; k capped at the gallery size)."""
    q, g = _unit(query_emb), _unit(gallery_emb)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise DanceSearchError(f"query and clip embeddings do not match: {q.shape} vs {g.shape}")
    if len(query_genres) != q.shape[0] or len(gallery_genres) != g.shape[0]:
        raise ValueError("one genre per query and per gallery clip")
    if g.shape[0] == 0:
        raise DanceSearchError("the gallery is empty")
    k = min(int(k), g.shape[0])
    sim = q @ g.T
    gal_genre = np.asarray(list(gallery_genres), dtype=object)
    gal_family = np.asarray([FAMILY_OF.get(x) for x in gallery_genres], dtype=object)
    genre_p = np.zeros(len(query_genres))
    family_p = np.zeros(len(query_genres))
    for i, qg in enumerate(query_genres):
        genre_p[i] = _share_in_top(sim[i], gal_genre == qg, k)
        family_p[i] = _share_in_top(sim[i], gal_family == FAMILY_OF.get(qg, object()), k)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return QueryScores(genre_p, family_p, top, k)


def score_queries(queries: Sequence[PeopleQuery], encode: Encode, gallery: Gallery, k: int = K) -> QueryScores:
    """Encode the query texts with ``encode`` (any ``texts -> (N, D)`` callable) and score them on ``gallery``."""
    emb = np.asarray(encode([q.text for q in queries]))
    if emb.shape[0] != len(queries):
        raise DanceSearchError(f"the query encoder returned {emb.shape[0]} vectors for {len(queries)} queries")
    return precision_at_k(emb, gallery.emb, [q.genre for q in queries], gallery.genres, k)


def query_encoder(embedder: Any, expand: bool | None = None) -> tuple[Encode, str]:
    """The query-encoding callable and its description.

    ``expand=None``: plain ``encode_text``. ``True``/``False``: ``encode_query(texts, expand=...)`` when the
    embedder has that method; without it ``False`` is plain ``encode_text`` and ``True`` is a usage error
    (numbers labelled "expanded" must come from expansion).
    """
    encode_query = getattr(embedder, "encode_query", None)
    if expand is None or (encode_query is None and not expand):
        return embedder.encode_text, "encode_text"
    if encode_query is None:
        raise UsageError("--expand: this model's embedder has no encode_query (query expansion is not available)")
    return (lambda texts: encode_query(list(texts), expand=bool(expand))), f"encode_query(expand={bool(expand)})"


# --- summaries -------------------------------------------------------------------------------------------
def _block(values: dict[str, np.ndarray], n_boot: int, seed: int) -> dict[str, Any]:
    """Mean of each per-query metric with its bootstrap interval (resampling queries)."""
    out: dict[str, Any] = {"queries": int(len(next(iter(values.values()))))}
    ci: dict[str, list[float]] = {}
    for name, v in values.items():
        out[name] = float(np.mean(v)) if len(v) else float("nan")
        ci.update(bootstrap_ci(v, lambda x, n=name: {n: float(np.mean(x))}, n_boot=n_boot, seed=seed))
    out["ci95"] = ci
    return out


def _groups(queries: Sequence[PeopleQuery]) -> list[tuple[str, str, np.ndarray]]:
    """(table, value, mask) for every genre (taxonomy order) and kind present in ``queries``."""
    genres = [q.genre for q in queries]
    kinds = [q.kind for q in queries]
    out = [("genre", g.name, np.array([x == g.name for x in genres])) for g in GENRES if g.name in genres]
    out += [("kind", kd, np.array([x == kd for x in kinds])) for kd in KINDS if kd in kinds]
    return out


def summarize(queries: Sequence[PeopleQuery], scores: QueryScores, gallery: Gallery,
              n_boot: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Overall, per-genre and per-kind means with intervals; chance and ceiling of the gallery; per query."""
    vals = scores.metrics()
    out: dict[str, Any] = {"overall": _block(vals, n_boot, seed), "by_genre": {}, "by_kind": {}}
    for table, value, mask in _groups(queries):
        out[f"by_{table}"][value] = _block({n: v[mask] for n, v in vals.items()}, n_boot, seed)
    k = scores.k
    gal_fam = [FAMILY_OF.get(x) for x in gallery.genres]
    n_genre = np.array([sum(x == q.genre for x in gallery.genres) for q in queries], dtype=np.float64)
    n_family = np.array([sum(x == q.family for x in gal_fam) for q in queries], dtype=np.float64)
    out["chance"] = {f"genre_P@{k}": float(np.mean(n_genre / gallery.size)),
                     f"family_P@{k}": float(np.mean(n_family / gallery.size))}
    out["ceiling"] = {f"genre_P@{k}": float(np.mean(np.minimum(n_genre, k) / k)),
                      f"family_P@{k}": float(np.mean(np.minimum(n_family, k) / k))}
    out["per_query"] = [{"id": q.id, f"genre_P@{k}": float(scores.genre_p[i]),
                         f"family_P@{k}": float(scores.family_p[i]),
                         "top_genres": [gallery.genres[int(j)] for j in scores.top[i]]}
                        for i, q in enumerate(queries)]
    return out


def paired_comparison(queries: Sequence[PeopleQuery], candidate: QueryScores, baseline: QueryScores,
                      n_boot: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Candidate minus baseline on the same queries: paired bootstrap per metric, overall and per kind."""
    if candidate.genre_p.shape != baseline.genre_p.shape or candidate.k != baseline.k:
        raise DanceSearchError("paired comparison needs both runs scored on the same queries with the same k")
    a, b = candidate.metrics(), baseline.metrics()

    def diff(mask: np.ndarray | None) -> dict[str, Any]:
        res: dict[str, Any] = {"queries": int(len(a[next(iter(a))]) if mask is None else mask.sum())}
        for name in a:
            va, vb = (a[name], b[name]) if mask is None else (a[name][mask], b[name][mask])
            res.update(paired_difference_ci(va, vb, lambda x, n=name: {n: float(np.mean(x))}, n_boot=n_boot, seed=seed))
        return res

    out: dict[str, Any] = {"overall": diff(None), "by_kind": {}}
    for table, value, mask in _groups(queries):
        if table == "kind":
            out["by_kind"][value] = diff(mask)
    return out


# --- report ------------------------------------------------------------------------------------------------
def _cell(block: dict[str, Any], name: str) -> str:
    ci = block.get("ci95", {}).get(name)
    return f"{block[name]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _diff_cell(d: dict[str, float]) -> str:
    return f"{d['diff']:+.3f}" + (f" [{d['lo']:+.3f}, {d['hi']:+.3f}]" if "lo" in d else "")


def people_markdown(payload: dict[str, Any]) -> str:
    """The markdown report of :func:`cmd_people_queries`'s payload."""
    k = payload["k"]
    gk, fk = f"genre_P@{k}", f"family_P@{k}"
    boot = payload["bootstrap"]
    lines = ["# Queries in people's words", "", "Produced by:", "", "```", payload["command"], "```", "",
             f"Query set `{payload['queries_file']}` (sha256 {payload['queries_sha256']}), "
             f"subset `{payload['subset']}`: "
             f"{payload['queries']} queries. Gallery: the {payload['gallery_size']} clips of the `{payload['split']}` "
             f"split of `{payload['catalog']}`. Each query ranks the gallery by cosine; genre P@{k} (family P@{k}) is "
             f"the share of its top {k} whose genre (genre family) is the query's; mean over queries. Ties at the cut "
             f"count against the model. Brackets: 95% percentile bootstrap over queries ({boot['replicates']} "
             f"replicates, seed {boot['seed']})."]
    if payload["subset"] != "dev":
        lines += ["", "Held-out queries are for measuring only: never tune anything on them (eval/queries/README.md)."]
    for m in payload["models"]:
        s = m["summary"]
        lines += ["", f"## {m['role'].capitalize()}: `{m['run']}`", "",
                  f"Model `{m['model']}`, queries encoded with `{m['encoder']}`. Random ranking would give "
                  f"{gk} {s['chance'][gk]:.3f}, {fk} {s['chance'][fk]:.3f}; the best possible ranking "
                  f"{s['ceiling'][gk]:.3f} and {s['ceiling'][fk]:.3f}.", "",
                  f"| group | queries | {gk} | {fk} |", "|---|---:|---|---|",
                  f"| **all** | {s['overall']['queries']} | **{_cell(s['overall'], gk)}** | "
                  f"**{_cell(s['overall'], fk)}** |"]
        for table in ("kind", "genre"):
            for value, block in s[f"by_{table}"].items():
                lines.append(f"| {table}: {value} | {block['queries']} | {_cell(block, gk)} | {_cell(block, fk)} |")
    paired = payload.get("paired")
    if paired:
        lines += ["", "## Paired difference (candidate minus baseline)", "",
                  "Same queries, same gallery split; each bootstrap replicate resamples the queries once for both "
                  "runs. An interval excluding 0 says the difference is not query-sampling noise (it says nothing "
                  "about training-seed noise).", "",
                  f"| group | queries | {gk} | {fk} |", "|---|---:|---|---|",
                  f"| **all** | {paired['overall']['queries']} | **{_diff_cell(paired['overall'][gk])}** | "
                  f"**{_diff_cell(paired['overall'][fk])}** |"]
        for value, d in paired["by_kind"].items():
            lines.append(f"| kind: {value} | {d['queries']} | {_diff_cell(d[gk])} | {_diff_cell(d[fk])} |")
    if payload["subset"] == "dev":
        cand = payload["models"][0]
        texts = {q["id"]: q for q in payload["query_list"]}
        misses = [p for p in cand["summary"]["per_query"] if p[gk] == 0.0]
        lines += ["", f"## Dev queries with no clip of their genre in the top {k} ({cand['role']})", ""]
        lines += [f"- `{p['id']}` {texts[p['id']]['genre']} ({texts[p['id']]['kind']}): \"{texts[p['id']]['text']}\" "
                  f"-> {', '.join(p['top_genres'])}" for p in misses] or ["none"]
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def cmd_people_queries(args: argparse.Namespace) -> int:
    """``dancesearch eval people-queries``: score a run (and a baseline) on the people's-words queries."""
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from indexer.workspace import Workspace

    from .suite_cli import _command_line, _write_out

    qfile = Path(args.queries) if args.queries is not None else DEFAULT_QUERIES
    queries = select(load_queries(qfile), args.subset)
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    ws = Workspace.from_args(args)
    progress = progress_enabled(args)
    examples = split_examples(ws, args.split)              # a missing catalog fails before any model loads
    cand = DanceEmbedder.from_run(args.run or DEFAULT_RUN_DIR, device=args.device)
    encode, how = query_encoder(cand, args.expand)
    base = DanceEmbedder.from_run(args.baseline_run, device=args.device) if args.baseline_run is not None else None
    gallery = embed_split(cand, ws, args.split, progress, examples)
    scores = score_queries(queries, encode, gallery)
    n_boot, seed = args.bootstrap, args.seed
    models = [{"role": "candidate", "run": str(args.run or "models/demo"), "model": cand.model_id, "encoder": how,
               "summary": summarize(queries, scores, gallery, n_boot, seed)}]
    paired = None
    if base is not None:
        bgal = gallery if base.model_id == cand.model_id else embed_split(base, ws, args.split, progress, examples)
        bscores = score_queries(queries, base.encode_text, bgal)
        models.append({"role": "baseline", "run": str(args.baseline_run), "model": base.model_id,
                       "encoder": "encode_text", "summary": summarize(queries, bscores, bgal, n_boot, seed)})
        paired = paired_comparison(queries, scores, bscores, n_boot, seed)
    payload: dict[str, Any] = {
        "queries_file": _shown(qfile), "queries_sha256": file_digest(qfile), "subset": args.subset,
        "queries": len(queries), "split": args.split, "gallery_size": gallery.size, "catalog": ws.db_url, "k": K,
        "bootstrap": {"replicates": n_boot, "seed": seed, "unit": "query"}, "models": models, "paired": paired,
        "command": _command_line(args), "query_list": [asdict(q) for q in queries],
    }
    md = people_markdown(payload)
    _write_out(args.out, payload, md)
    emit(args, payload, lambda: print(md))
    return EXIT_OK
