"""Embed the catalog's clips with a model and build or update the workspace's index.

- ``build_index``: a new index of the requested kind / backend over every catalog clip.  Clip
  vectors already stored in the live index (same model) are reused instead of re-embedding.
- ``update_index``: adds the clips ingested since the last build (incremental); when clips were
  removed from the catalog, or an ivfpq index has grown well past the data its quantisers were
  trained on, it rebuilds from the stored vectors (no re-embedding).
Both recalibrate the no-match threshold and the query gate (query_gate.py: match / gap / not_dance,
refitted only when the model, the catalog's served genres - those of clips not of source ``generated`` -
or the labelled sets changed; when its data files are missing the build warns on stderr and in
``BuildReport.warnings``, naming them), tune an ANN index's search effort to its recall target
(``FaissParams.tune_target``, recall@10 against exact search) on the model's text embeddings of
sample captions, and save a new generation atomically (store.py).
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from encoders.errors import DanceSearchError, InputError

from .base import BACKENDS, KINDS, VectorIndex, auto_kind
from .calibration import calibrate
from .query_gate import (GATE_FORMAT, StaticSpace, calibrate_gate, labelled_hash, missing_gate_data, read_labelled,
                         read_lexicon, served_genres)
from .embedder import Embedder, encode_queries
from .faiss_index import FaissIndex, FaissParams
from .filters import ClipAttributes
from .store import DEFAULT_INDEX_NAME, GenreCentroids, LoadedIndex, load_index, read_manifest, save_index

ProgressFn = Callable[[int, int], None]
IVF_RETRAIN_GROWTH = 4  # retrain ivfpq quantisers once the index holds 4x what they were trained on
TUNE_QUERIES = 500      # captions whose text embeddings tune hnsw / ivfpq search effort


@dataclass
class BuildReport:
    """What a build / update did (printed by ``index build --json``)."""

    action: str          # "build" | "update" | "rebuild" | "recalibrate" (query gate only) | "unchanged"
    backend: str
    kind: str
    count: int
    embedded: int
    reused: int
    removed: int
    model_id: str
    threshold: float | None
    seconds: float
    directory: str
    warnings: list[str] = field(default_factory=list)  # e.g. the query gate could not be fitted, and why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stderr_progress(label: str) -> ProgressFn:
    """A one-line progress counter on stderr."""
    def report(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done}/{total} clips", end=end, file=sys.stderr, flush=True)
    return report


def _attrs(clips: Sequence[Any]) -> ClipAttributes:
    return ClipAttributes.from_rows([c.id for c in clips], [c.genre for c in clips], [c.bpm for c in clips],
                                    [c.split for c in clips], [c.source for c in clips])


def embed_clips(workspace: Any, embedder: Embedder, clips: Sequence[Any], batch_size: int = 64,
                progress: ProgressFn | None = None) -> np.ndarray:
    """(N, D) embeddings of catalog clips (motion record + music features read from the workspace)."""
    from encoders.api import DanceInput
    from encoders.motion.record import MotionRecord

    out = np.zeros((len(clips), embedder.dim), dtype=np.float32)
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        items = []
        for c in batch:
            motion = MotionRecord.load(workspace.resolve(c.motion_path))
            music = None
            if c.music_path:
                mpath = workspace.resolve(c.music_path)
                try:
                    music = np.load(mpath, allow_pickle=False).astype(np.float32)
                except (OSError, ValueError) as exc:
                    raise InputError(mpath, f"cannot read music features of clip {c.key}: {exc}") from exc
            items.append(DanceInput(motion=motion, music=music))
        out[start:start + len(batch)] = embedder.encode_dances(items)
        if progress:
            progress(min(start + batch_size, len(clips)), len(clips))
    return out


def _captions_by_split(catalog: Any, clips: Sequence[Any]) -> dict[str, dict[int, list[str]]]:
    caps = catalog.captions_for([c.id for c in clips])
    out: dict[str, dict[int, list[str]]] = {"all": {}}
    for c in clips:
        texts = caps.get(c.id, [])
        out.setdefault(c.split, {})[c.id] = texts
        out["all"][c.id] = texts
    return out


def _new_index(backend: str, kind: str, dim: int, uri: str | None, params: FaissParams | None) -> VectorIndex:
    if backend == "faiss":
        return FaissIndex(kind, dim, params)
    if backend == "milvus":
        from .milvus_index import MilvusIndex

        if not uri:
            raise InputError(None, "the milvus backend needs a URI", field="--uri",
                             expected="http://host:19530 or a local file path (Milvus Lite)", got="nothing")
        return MilvusIndex.create(uri, dim, kind)
    raise InputError(None, "unknown backend", field="--backend", expected=" | ".join(BACKENDS), got=backend)


def _stored_vectors(loaded: LoadedIndex | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) kept by the live index, to reuse instead of re-embedding."""
    if loaded is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    idx = loaded.index
    if isinstance(idx, FaissIndex):
        return idx.ids(), np.asarray(idx.vectors(), dtype=np.float32)
    return idx.all_vectors()  # milvus


def tuning_texts(captions: Sequence[str], count: int = TUNE_QUERIES, seed: int = 0) -> list[str]:
    """``count`` texts to tune on: half captions, half query-like variants of them.

    Why both: tuning on captions alone left a 100k HNSW index at recall@10 0.975 on the prefixed and
    modified texts people type ("show me ... with lots of spins"), against 0.988 on captions
    (bench/results/api_recall.json); the variants (``augment_queries``) cover that shift.
    """
    from encoders.training.distill import augment_queries

    pool = list(dict.fromkeys(t for t in captions if t.strip()))
    if not pool:
        return []
    rng = np.random.default_rng(seed)
    n_caps = min(len(pool), (count + 1) // 2)
    picked = [pool[i] for i in sorted(rng.choice(len(pool), n_caps, replace=False).tolist())]
    return picked + augment_queries(pool, min(count - n_caps, n_caps), seed=seed)


def tune_search(index: VectorIndex, embedder: Embedder, captions: dict[int, list[str]],
                queries: int = TUNE_QUERIES, seed: int = 0) -> dict[str, Any] | None:
    """Tune a FAISS hnsw / ivfpq index's search effort to ``params.tune_target`` (see ``FaissIndex.tune``).

    Queries: the model's text embeddings of ``queries`` texts from :func:`tuning_texts` (captions of
    ``captions``, clip id -> texts, and query-like variants of them), i.e. the kind of query the
    index serves.  None (nothing changed) for flat, Milvus, ``tune_target`` None, or a catalog
    without captions.
    """
    if not isinstance(index, FaissIndex) or index.kind == "flat" or index.params.tune_target is None:
        return None
    texts = tuning_texts([t for cid in sorted(captions) for t in captions[cid]], queries, seed)
    if not texts or len(index) == 0:
        return None
    q = np.concatenate([encode_queries(embedder, texts[s:s + 256]) for s in range(0, len(texts), 256)])
    report = index.tune(q, k=10)
    return {k: v for k, v in report.items() if k != "tried"}


def _warn(warnings: list[str] | None, message: str) -> None:
    """A build warning: printed on stderr (the build's output) and kept for the BuildReport (``--json``)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
    if warnings is not None and message not in warnings:
        warnings.append(message)


def _missing_data_message(missing: Sequence[Path]) -> str:
    return ("query gate not fitted: its data is missing: " + ", ".join(str(p) for p in missing)
            + " (a non-editable install without the package data, or a wrong $DANCESEARCH_GATE_QUERIES); "
            "searches answer match / gap from the score threshold only")


def _save(embedder: Embedder, index: VectorIndex, directory: Path, catalog: Any, clips: Sequence[Any],
          centroids: GenreCentroids, extra: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """Tune, calibrate and save a new generation."""
    captions = _captions_by_split(catalog, clips)
    tuning = tune_search(index, embedder, captions["all"])
    cal = calibrate(embedder, index, captions)
    if tuning is not None:
        extra = {**extra, "tuning": tuning}
    encoding = getattr(embedder, "query_encoding", None)
    if encoding is not None:   # the threshold and the gate below are fitted on vectors encoded this way
        extra = {**extra, "query_encoding": encoding}
    gate = _gate(embedder, index, directory, clips, captions["all"], warnings)
    if gate is None:  # remembered, so that `index build` does not retry the fit on every run
        extra = {**extra, "query_gate_skipped": _gate_key(index)}
    return save_index(index, directory, model_id=embedder.model_id, centroids=centroids, calibration=cal, extra=extra,
                      gate=gate)


def _gate_stale(manifest: dict[str, Any], embedder: Embedder, index: VectorIndex) -> bool:
    """Whether an index build should (re)fit the query gate although no clip changed: the manifest has
    none (an index from before the gate) or one fitted on other labelled data / genres; False when the
    gate cannot be fitted here anyway (no labelled data). Also True when the manifest's threshold and gate were
    fitted on queries encoded otherwise than this embedder encodes them (query expansion on / off, another
    vocabulary): they are refitted then."""
    encoding = getattr(embedder, "query_encoding", None)
    if encoding is not None and manifest.get("query_encoding") != encoding:
        return True
    try:
        labelled = [r for r in read_labelled() if r["split"] == "calib"]
        lexicon = read_lexicon()
    except (OSError, ValueError):
        return False
    if not labelled:
        return False
    prev = manifest.get("query_gate") or {}
    genres = served_genres(index.attributes())
    if manifest.get("query_gate_skipped") == _gate_key(index):
        return False
    return not (prev.get("format") == GATE_FORMAT and prev.get("genres") == genres
                and prev.get("labelled_hash") == labelled_hash(labelled, lexicon))


def _gate_key(index: VectorIndex) -> str:
    """Identity of what a gate fit depends on besides the model: labelled data, lexicon, genres."""
    try:
        labelled = [r for r in read_labelled() if r["split"] == "calib"]
        lexicon = read_lexicon()
    except (OSError, ValueError):
        labelled, lexicon = [], []
    genres = served_genres(index.attributes())
    return labelled_hash(labelled, list(lexicon) + ["|"] + genres)


def _previous_gate(directory: Path, model_id: str, genres: list[str],
                   labelled_key: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The live generation's gate when it was fitted with this model, these served genres and (unless
    ``labelled_key`` is None) these labelled data; None otherwise."""
    old = read_manifest(directory)
    prev = (old or {}).get("query_gate")
    if not (prev and old.get("model_id") == model_id and prev.get("format") == GATE_FORMAT
            and prev.get("genres") == genres and (labelled_key is None or prev.get("labelled_hash") == labelled_key)):
        return None
    try:
        with np.load(directory / old["files"]["gate"], allow_pickle=False) as z:
            return prev, {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
    except (KeyError, OSError, ValueError):
        return None


def _gate(embedder: Embedder, index: VectorIndex, directory: Path, clips: Sequence[Any],
          captions: dict[int, list[str]],
          warnings: list[str] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The query gate for this generation: the live one when model, served genres and labelled data are
    the same (an incremental update does not pay the refit), else a new fit; None when it cannot be fitted
    (with a warning saying why).  Served genres: those of clips not of source ``generated``."""
    genres = served_genres(index.attributes())
    missing = missing_gate_data()
    if missing:
        _warn(warnings, _missing_data_message(missing))
        kept = _previous_gate(directory, embedder.model_id, genres, None)
        if kept is not None:
            _warn(warnings, "query gate: kept the live generation's fit (same model and served genres)")
        return kept
    try:
        labelled = read_labelled()
        lexicon = read_lexicon()
    except (OSError, ValueError) as exc:
        _warn(warnings, f"query gate not fitted: its labelled data or lexicon is unreadable ({exc})")
        return None
    kept = _previous_gate(directory, embedder.model_id, genres,
                          labelled_hash([r for r in labelled if r["split"] == "calib"], lexicon))
    if kept is not None:
        return kept
    gate = calibrate_gate(embedder, clips, captions, genres, labelled=labelled, lexicon=lexicon)
    if gate is None:
        calib = {r["label"] for r in labelled if r["split"] == "calib"}
        if not StaticSpace.available():
            why = "the static text space (MiniLM word-piece table) does not load"
        elif len(calib) < 3:
            why = f"the labelled sets have calib rows of {sorted(calib)} only (all of match, gap, not_dance needed)"
        else:
            why = "no captioned train / val clips (other than generated ones) to take the catalog's vocabulary from"
        _warn(warnings, f"query gate not fitted: {why}; searches answer match / gap from the score threshold only")
    return gate


def _finish(workspace: Any, embedder: Embedder, index: VectorIndex, directory: Path, catalog: Any,
            clips: Sequence[Any], vectors_for_centroids: np.ndarray, extra: dict[str, Any],
            warnings: list[str] | None = None) -> dict[str, Any]:
    centroids = GenreCentroids()
    centroids.add(vectors_for_centroids, index.attributes().values("genre"))
    return _save(embedder, index, directory, catalog, clips, centroids, extra, warnings)


def _drop_previous_collection(old_manifest: dict[str, Any] | None, new_manifest: dict[str, Any]) -> None:
    """After a Milvus rebuild switched collections, drop the old one (best effort)."""
    if not old_manifest or old_manifest.get("backend") != "milvus":
        return
    old = old_manifest.get("milvus", {})
    new = new_manifest.get("milvus", {})
    if old.get("collection") and old.get("collection") != new.get("collection"):
        try:
            from .milvus_index import _client

            client = _client(old["uri"])
            if client.has_collection(old["collection"]):
                client.drop_collection(old["collection"])
        except DanceSearchError:
            pass


def build_index(workspace: Any, embedder: Embedder, *, kind: str = "auto", backend: str = "faiss",
                uri: str | None = None, name: str = DEFAULT_INDEX_NAME, batch_size: int = 64,
                progress: ProgressFn | None = None, params: FaissParams | None = None,
                reuse: bool = True) -> BuildReport:
    """Build a fresh index over every catalog clip and switch the workspace to it."""
    t0 = time.perf_counter()
    if kind != "auto" and kind not in KINDS:
        raise InputError(None, "unknown index kind", field="--kind", expected="auto | " + " | ".join(KINDS), got=kind)
    directory = workspace.index_dir(name)
    catalog = workspace.catalog(create=False)
    clips = catalog.clips()
    if not clips:
        raise DanceSearchError(f"the catalog at {workspace.db_url} has no clips: run `dancesearch ingest` first")
    kind = auto_kind(len(clips)) if kind == "auto" else kind
    old_manifest = read_manifest(directory)
    loaded = None
    if reuse and old_manifest and old_manifest.get("model_id") == embedder.model_id:
        try:
            loaded = load_index(directory, embedder.model_id)
        except DanceSearchError:
            loaded = None
    old_ids, old_vecs = _stored_vectors(loaded)
    vectors, embedded, reused = _vectors_for(workspace, embedder, clips, old_ids, old_vecs, batch_size, progress)
    if loaded is not None:
        loaded.index.close()
    if backend == "milvus" and uri and not _is_url(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    index = _new_index(backend, kind, embedder.dim, uri, params)
    index.add(vectors, _attrs(clips))
    warnings: list[str] = []
    manifest = _finish(workspace, embedder, index, directory, catalog, clips, vectors, {"name": name}, warnings)
    _drop_previous_collection(old_manifest, manifest)
    index.close()
    return BuildReport("build", backend, kind, len(index), embedded, reused, 0, embedder.model_id,
                       (manifest.get("calibration") or {}).get("threshold"), time.perf_counter() - t0, str(directory),
                       warnings)


def _is_url(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _vectors_for(workspace: Any, embedder: Embedder, clips: Sequence[Any], old_ids: np.ndarray, old_vecs: np.ndarray,
                 batch_size: int, progress: ProgressFn | None) -> tuple[np.ndarray, int, int]:
    """Vectors for ``clips``: reused from ``old_*`` where present, embedded otherwise."""
    vectors = np.zeros((len(clips), embedder.dim), dtype=np.float32)
    where = {int(i): p for p, i in enumerate(old_ids.tolist())}
    todo = [i for i, c in enumerate(clips) if c.id not in where]
    for i, c in enumerate(clips):
        if c.id in where:
            vectors[i] = old_vecs[where[c.id]]
    if todo:
        vectors[todo] = embed_clips(workspace, embedder, [clips[i] for i in todo], batch_size, progress)
    return vectors, len(todo), len(clips) - len(todo)


def update_index(workspace: Any, embedder: Embedder, *, name: str = DEFAULT_INDEX_NAME, batch_size: int = 64,
                 progress: ProgressFn | None = None, milvus_uri: str | None = None) -> BuildReport:
    """Add newly ingested clips to the live index (rebuilding from stored vectors when clips were removed)."""
    t0 = time.perf_counter()
    directory = workspace.index_dir(name)
    loaded = load_index(directory, embedder.model_id, milvus_uri=milvus_uri)
    index = loaded.index
    catalog = workspace.catalog(create=False)
    clips = catalog.clips()
    catalog_ids = np.asarray([c.id for c in clips], dtype=np.int64)
    in_index = np.isin(catalog_ids, index.ids())
    new_clips = [c for c, present in zip(clips, in_index) if not present]
    removed = int((~np.isin(index.ids(), catalog_ids)).sum())
    kind, backend = index.kind, index.backend
    grew = (isinstance(index, FaissIndex) and kind == "ivfpq" and index.params.trained_on
            and len(index) + len(new_clips) > IVF_RETRAIN_GROWTH * index.params.trained_on)
    warnings: list[str] = []
    if not new_clips and not removed and not _gate_stale(loaded.manifest, embedder, index):
        index.close()
        missing = missing_gate_data()
        if missing:  # nothing to do, but say why the gate is not (re)fitted
            _warn(warnings, _missing_data_message(missing))
        return BuildReport("unchanged", backend, kind, len(index), 0, len(index), 0, embedder.model_id, loaded.threshold,
                           time.perf_counter() - t0, str(directory), warnings)
    if not new_clips and not removed:  # only the query gate is missing or out of date: save a new generation
        manifest = _save(embedder, index, directory, catalog, clips, loaded.centroids, {"name": name}, warnings)
        index.close()
        return BuildReport("recalibrate", backend, kind, len(index), 0, len(index), 0, embedder.model_id,
                           (manifest.get("calibration") or {}).get("threshold"), time.perf_counter() - t0, str(directory),
                           warnings)
    if removed or grew:
        index.close()
        uri = milvus_uri or (loaded.manifest.get("milvus") or {}).get("uri")
        params = None
        if isinstance(index, FaissIndex):
            params = FaissParams.from_dict(index.params.to_dict())
            params.nlist, params.pq_m, params.trained_on = None, None, 0
        report = build_index(workspace, embedder, kind=kind, backend=backend, uri=uri, name=name,
                             batch_size=batch_size, progress=progress, params=params, reuse=True)
        report.action, report.removed = "rebuild", removed
        return report
    new_vecs = embed_clips(workspace, embedder, new_clips, batch_size, progress)
    index.add(new_vecs, _attrs(new_clips))
    centroids = loaded.centroids
    centroids.add(new_vecs, [c.genre for c in new_clips])
    manifest = _save(embedder, index, directory, catalog, clips, centroids, {"name": name}, warnings)  # re-tunes
    index.close()
    return BuildReport("update", backend, kind, len(index), len(new_clips), len(index) - len(new_clips), 0,
                       embedder.model_id, (manifest.get("calibration") or {}).get("threshold"),
                       time.perf_counter() - t0, str(directory), warnings)


def build_or_update(workspace: Any, embedder: Embedder, *, kind: str = "auto", backend: str = "faiss",
                    uri: str | None = None, name: str = DEFAULT_INDEX_NAME, rebuild: bool = False,
                    batch_size: int = 64, progress: ProgressFn | None = None) -> BuildReport:
    """What ``index build`` does: update in place when the live index matches model, backend and kind."""
    manifest = read_manifest(workspace.index_dir(name))
    same = (manifest is not None and not rebuild and manifest.get("model_id") == embedder.model_id
            and manifest.get("backend") == backend and (kind == "auto" or manifest.get("kind") == kind)
            and (backend != "milvus" or not uri or (manifest.get("milvus") or {}).get("uri") == uri))
    if same:
        return update_index(workspace, embedder, name=name, batch_size=batch_size, progress=progress, milvus_uri=uri)
    return build_index(workspace, embedder, kind=kind, backend=backend, uri=uri, name=name, batch_size=batch_size,
                       progress=progress)

