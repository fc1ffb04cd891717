"""The research evaluation suite: one split embedded once, then every protocol, interval and report on it.

Embedding happens once per command (:func:`collect_suite_data`, built on ``eval.retrieval.embed_gallery``
and ``caption_queries``), then every protocol works on the same similarity matrix
(:func:`evaluate_protocol`). The command line around it (``dancesearch eval ...``) is ``eval.suite_cli``;
``eval.ablations`` and ``eval.seeds`` evaluate their runs through this module.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from encoders.cliutil import progress_enabled
from encoders.errors import DanceSearchError

from .bootstrap import DEFAULT_REPLICATES, bootstrap_ci
from .metrics import chance_metrics
from .protocols import (DEFAULT_TIES, THRESHOLD, THRESHOLD_TEXT_MODEL, ProtocolResult, caption_similarity,
                        dance_to_text, run_protocol, summarize_ranks)

METRICS: tuple[str, ...] = ("R@1", "R@5", "R@10", "MedR", "MnR")
MIN_BOOTSTRAP_GROUPS = 10  # fewer batches than this: resample queries (pooled) instead of batches
PROTOCOL_DOC = {
    "full": "full test gallery (CustomDancer): every caption ranks every clip of the split; its own clip is correct",
    "batch32": "shuffled batches of 32 (Guo et al.): one caption per clip, each batch ranks its 32 clips, "
               "metrics averaged over batches; incomplete last batch dropped; seeded",
    "threshold": f"TMR threshold: full gallery, and every clip with a caption of text cosine >= {THRESHOLD} "
                 f"to the query also counts as correct; text model {THRESHOLD_TEXT_MODEL}",
}
TIES_DOC = ("ties pessimistic: rank = 1 + wrong items scored >= the best correct item (a constant scorer "
            "gets the worst rank); R@K in percent; K >= gallery size gives 100")


@dataclass
class SuiteData:
    """One split embedded by one model: what every protocol, breakdown and report reads."""

    split: str
    model_id: str
    sim: np.ndarray                    # (Q, G) caption x clip cosine
    query_clip: np.ndarray             # (Q,) gallery index of each caption's clip
    query_texts: list[str]
    clips: list[dict[str, Any]]        # per gallery clip: id, key, genre, captions, tags, bpm
    gallery_emb: np.ndarray            # (G, D)
    _text_sim: np.ndarray | None = field(default=None, repr=False)

    @property
    def gallery_size(self) -> int:
        return int(self.sim.shape[1])

    @property
    def query_genres(self) -> list[str]:
        return [self.clips[int(c)]["genre"] for c in self.query_clip]

    def text_sim(self) -> np.ndarray:
        """Caption-caption MiniLM similarity (threshold protocol), computed once."""
        if self._text_sim is None:
            self._text_sim = caption_similarity(self.query_texts)
        return self._text_sim


def collect_suite_data(embedder: Any, workspace: Any, split: str, progress: bool = True,
                       expand: bool = False) -> SuiteData:
    """Embed every clip and caption of ``split`` (clips without captions stay in the gallery).

    ``expand`` encodes the captions as the search engine encodes queries (``encode_query``: dance jargon
    expanded, see ``indexer.index.embedder.encode_queries``) instead of the model's plain text encoder."""
    from encoders.training.data import caption_queries
    from indexer.datasets import examples_for_split

    from .retrieval import embed_gallery

    examples = examples_for_split(workspace, split)
    if not examples:
        raise DanceSearchError(f"the {split} split has no clips: ingest data (dancesearch ingest ...) first")
    texts, positives = caption_queries(examples)
    if not texts:
        raise DanceSearchError(f"no clip of the {split} split has a caption: nothing to query with")
    catalog = workspace.catalog(create=False)
    try:
        tags = {c.id: dict(c.tags or {}) for c in catalog.clips(split=split)}
    finally:
        catalog.close()
    gallery = embed_gallery(embedder, examples, progress)
    if expand:
        from indexer.index.embedder import encode_queries

        queries = encode_queries(embedder, texts)
    else:
        queries = embedder.encode_text(texts)
    clips = [{"id": e.clip_id, "key": e.meta.get("key", str(e.clip_id)), "genre": e.genre, "captions": list(e.captions),
              "tags": tags.get(e.clip_id, {}), "bpm": e.meta.get("bpm")} for e in examples]
    return SuiteData(split, embedder.model_id, np.asarray(queries, np.float64) @ np.asarray(gallery, np.float64).T,
                     np.asarray(positives, dtype=np.int64), list(texts), clips, np.asarray(gallery))


def load_suite_data(args: argparse.Namespace, run: Any = None) -> SuiteData:
    """Model + workspace from the command line (``--run``, ``--home``/``--db``, ``--split``, ``--device``,
    ``--expand``); ``run`` overrides ``--run`` (the baseline of a paired comparison)."""
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
    from indexer.workspace import Workspace

    embedder = DanceEmbedder.from_run(run or getattr(args, "run", None) or DEFAULT_RUN_DIR,
                                      device=getattr(args, "device", None),
                                      text_encoder=getattr(args, "text_encoder", None) or "full")
    return collect_suite_data(embedder, Workspace.from_args(args), getattr(args, "split", "test"),
                              progress_enabled(args), expand=bool(getattr(args, "expand", False)))



def evaluate_protocol(data: SuiteData, protocol: str, seed: int = 0, n_boot: int = DEFAULT_REPLICATES,
                      ties: str = DEFAULT_TIES, threshold: float = THRESHOLD) -> tuple[dict[str, Any], ProtocolResult]:
    """The JSON payload of one protocol (figures, gallery size, CIs, dance-to-text diagnostic) and its ranks."""
    text_sim = data.text_sim() if protocol == "threshold" else None
    res = run_protocol(protocol, data.sim, data.query_clip, data.query_texts, seed=seed, ties=ties,
                       threshold=threshold, text_sim=text_sim)
    # batches are the resampling unit only when there are enough of them for a percentile interval
    by_batch = res.groups is not None and np.unique(res.groups).size >= MIN_BOOTSTRAP_GROUPS
    ci = bootstrap_ci(res.ranks, summarize_ranks, n_boot=n_boot, seed=seed, groups=res.groups if by_batch else None)
    d2t = dance_to_text(data.sim, data.query_clip, ties)
    d2t_ci = bootstrap_ci(d2t.ranks, summarize_ranks, n_boot=n_boot, seed=seed)
    payload: dict[str, Any] = {k: res.metrics[k] for k in METRICS}
    payload.update({
        "protocol": protocol, "protocol_description": PROTOCOL_DOC[protocol], "gallery_size": res.gallery_size,
        "queries": res.n_queries, "ci95": ci, "bootstrap": {"replicates": n_boot, "seed": seed,
                                                            "unit": "batch" if by_batch else "query"},
        "ties": ties, "tie_handling": TIES_DOC if ties == "pessimistic" else f"ties {ties} (see eval/protocols.py)",
        "details": res.details, "split": data.split, "model": data.model_id,
        "chance": {k: v for k, v in chance_metrics(res.gallery_size).items() if k in METRICS},
        "dance_to_text": {**{k: d2t.metrics[k] for k in METRICS}, "gallery_size": d2t.gallery_size,
                          "queries": d2t.n_queries, "ci95": d2t_ci,
                          "note": "diagnostic: each captioned clip ranks all captions of the split (full gallery)"},
    })
    return payload, res


def metric_cell(m: dict[str, Any], key: str) -> str:
    """One figure as text: R@K with two decimals, ranks with one, then its 95% interval when there is one."""
    v = m[key]
    ci = m.get("ci95", {}).get(key)
    txt = f"{v:.2f}" if key.startswith("R@") else f"{v:.1f}"
    return txt + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and key.startswith("R@") else
                  f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def protocols_markdown(payloads: Sequence[dict[str, Any]], title: str, command: str | None = None) -> str:
    """Markdown table of protocol payloads (value [95% CI]), the gallery size on every row."""
    lines = [f"# {title}", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    if payloads:
        p0 = payloads[0]
        lines += [f"Split `{p0['split']}`, model `{p0['model']}`. {TIES_DOC}. Brackets: bootstrap 95% interval "
                  f"({p0['bootstrap']['replicates']} replicates over queries; over batches for batch32 when it has "
                  f"at least {MIN_BOOTSTRAP_GROUPS} batches; seed {p0['bootstrap']['seed']}).", ""]
    lines += ["| protocol | direction | gallery | queries | " + " | ".join(METRICS) + " |",
              "|---|---|---:|---:|" + "---|" * len(METRICS)]
    for p in payloads:
        lines.append(f"| {p['protocol']} | text->dance | {p['gallery_size']} | {p['queries']} | "
                     + " | ".join(metric_cell(p, k) for k in METRICS) + " |")
    if payloads:
        d = payloads[0]["dance_to_text"]
        lines.append(f"| full (diagnostic) | dance->text | {d['gallery_size']} captions | {d['queries']} | "
                     + " | ".join(metric_cell(d, k) for k in METRICS) + " |")
    lines += ["", "Protocols:", ""] + [f"- `{p['protocol']}`: {p['protocol_description']}" for p in payloads]
    for p in payloads:
        if p["protocol"] == "threshold":
            det = p["details"]
            lines.append(f"- threshold protocol: {det['queries_with_extra_correct']} of {p['queries']} queries gained "
                         f"extra correct clips; mean correct clips per query {det['mean_correct_per_query']:.2f}")
        if p["protocol"] == "batch32":
            det = p["details"]
            lines.append(f"- batch32: {det['batches']} batches of {det['batch_size']}, {det['pairs_dropped']} pairs "
                         f"dropped (incomplete last batch)")
    return "\n".join(lines) + "\n"
