"""Persistence of an index beside the catalog: ``HOME/indexes/<name>/``.

Layout (one *generation* per save; the manifest names the generation that is live)::

    manifest.json            written LAST, atomically: backend, kind, dim, count, model id,
                             calibration (no-match threshold), files of the live generation
    index-<g>.faiss          FAISS index (faiss.write_index to an encoders.atomic_io temp file, then os.replace)
    vectors-<g>.npy          the full vectors (ivfpq re-ranking memory-maps it; rebuilds reuse it)
    attrs-<g>.npz            clip ids + filter columns, aligned with the vectors
    centroids-<g>.npz        per-genre sums and counts of clip embeddings (genre search)
    gate-<g>.npz             reference vectors of the query gate (query_gate.py; its parameters are the
                             manifest's ``query_gate``); absent in older indexes, which then keep the
                             score-threshold-only no-match flag

Because a new generation's files never overwrite the live ones and the manifest switches
generations in one rename, a crash or kill at any moment of a rebuild leaves the previous index
loadable; files of dead generations are removed after the switch (or by the next save).
Loading checks the model id the index was built with and refuses another model.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoders.atomic_io import atomic_path, atomic_save_npz, atomic_write_json, ensure_dir
from encoders.errors import DanceSearchError, ModelMismatchError

from .base import VectorIndex
from .faiss_index import FaissIndex, FaissParams
from .filters import ClipAttributes

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_INDEX_NAME = "default"
_GEN_FILE = re.compile(r"^(index|vectors|attrs|centroids|gate)-(\d+)\.(faiss|npy|npz)$")


class IndexNotFoundError(DanceSearchError):
    """No usable index in the workspace (never built, or the manifest is unreadable)."""


@dataclass
class GenreCentroids:
    """Running sums of clip embeddings per genre: the centroid is sum / count (normalised)."""

    names: list[str] = field(default_factory=list)
    sums: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, vectors: np.ndarray, genres: list[str | None]) -> None:
        vectors = np.asarray(vectors, dtype=np.float64)
        if len(vectors) == 0:
            return
        if self.sums.size == 0:
            self.sums = np.zeros((0, vectors.shape[1]), dtype=np.float64)
        for g in dict.fromkeys(x for x in genres if x):
            if g not in self.names:
                self.names.append(g)
                self.sums = np.vstack([self.sums, np.zeros((1, vectors.shape[1]))])
                self.counts = np.concatenate([self.counts, [0]])
        lookup = {g: i for i, g in enumerate(self.names)}
        for g, v in zip(genres, vectors):
            if g:
                self.sums[lookup[g]] += v
                self.counts[lookup[g]] += 1

    def centroid(self, genre: str) -> np.ndarray | None:
        """Unit-norm mean embedding of ``genre`` (None when the genre has no clip)."""
        if genre not in self.names:
            return None
        i = self.names.index(genre)
        if self.counts[i] == 0:
            return None
        c = self.sums[i] / self.counts[i]
        return (c / max(np.linalg.norm(c), 1e-12)).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"names": np.asarray(self.names, dtype=str), "sums": self.sums, "counts": self.counts}

    @classmethod
    def from_arrays(cls, z) -> "GenreCentroids":
        return cls([str(n) for n in z["names"]], np.asarray(z["sums"], dtype=np.float64),
                   np.asarray(z["counts"], dtype=np.int64))

    @classmethod
    def from_index(cls, index: VectorIndex, vectors: np.ndarray) -> "GenreCentroids":
        out = cls()
        out.add(vectors, index.attributes().values("genre"))
        return out


@dataclass
class LoadedIndex:
    """What :func:`load_index` returns: the index, its manifest and the genre centroids."""

    index: VectorIndex
    manifest: dict[str, Any]
    centroids: GenreCentroids
    directory: Path
    gate_arrays: dict[str, np.ndarray] | None = None

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id"))

    @property
    def threshold(self) -> float | None:
        cal = self.manifest.get("calibration") or {}
        t = cal.get("threshold")
        return None if t is None else float(t)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexNotFoundError(f"{path}: unreadable index manifest ({exc}); rebuild with `dancesearch index build`") from exc


def _write_faiss(index: FaissIndex, target: Path) -> None:
    """faiss.write_index through :func:`encoders.atomic_io.atomic_path` (temp file, fsync, os.replace).

    Why not a private ``mkstemp``: the temp file would keep mkstemp's mode 0600 while every other file
    of the workspace is 0644 (umask), and a full disk would surface as FAISS' bare RuntimeError.
    """
    with atomic_path(target, suffix=".tmp") as tmp:
        index.write_index_file(tmp)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array, dtype=np.float32))


def _cleanup(directory: Path, live: dict[str, str]) -> None:
    """Remove files of dead generations and temp files left by killed writers."""
    keep = set(live.values()) | {MANIFEST}
    for p in directory.iterdir():
        if p.name in keep:
            continue
        if _GEN_FILE.match(p.name) or (p.name.startswith(".") and ".tmp" in p.name):
            try:
                p.unlink()
            except OSError:
                pass


def save_index(index: VectorIndex, directory: Path, *, model_id: str, centroids: GenreCentroids,
               calibration: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
               gate: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Persist ``index`` as a new generation and switch the manifest to it; returns the manifest.

    ``gate``: the query gate's (parameters, reference arrays), see query_gate.py."""
    directory = ensure_dir(directory)
    old = read_manifest(directory) if (directory / MANIFEST).exists() else None
    gen = int(old.get("generation", 0)) + 1 if old else 1
    files: dict[str, str] = {"attrs": f"attrs-{gen}.npz", "centroids": f"centroids-{gen}.npz"}
    atomic_save_npz(directory / files["centroids"], compressed=False, **centroids.to_arrays())
    if isinstance(index, FaissIndex):
        if len(index) > 0 or index.kind != "ivfpq":
            files["index"] = f"index-{gen}.faiss"
            _write_faiss(index, directory / files["index"])
        files["vectors"] = f"vectors-{gen}.npy"
        _save_npy(directory / files["vectors"], index.vectors())
    atomic_save_npz(directory / files["attrs"], compressed=False, **index.attributes().to_arrays())
    if gate is not None:
        files["gate"] = f"gate-{gen}.npz"
        atomic_save_npz(directory / files["gate"], compressed=False, **gate[1])
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "generation": gen,
        "model_id": model_id,
        "created_at": (old or {}).get("created_at", now) if old and old.get("model_id") == model_id else now,
        "updated_at": now,
        "files": files,
        "calibration": calibration if calibration is not None else (old or {}).get("calibration"),
        **index.describe(),
        **(extra or {}),
    }
    if gate is not None:
        manifest["query_gate"] = gate[0]
    atomic_write_json(directory / MANIFEST, manifest)  # the switch: everything above is already on disk
    _cleanup(directory, files)
    return manifest


def load_index(directory: Path, expected_model_id: str | None = None, *, milvus_uri: str | None = None) -> LoadedIndex:
    """Load the live generation; refuse an index built with another model than ``expected_model_id``."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise IndexNotFoundError(f"no index at {directory}: build one with `dancesearch index build`")
    if expected_model_id is not None and manifest.get("model_id") != expected_model_id:
        raise ModelMismatchError(
            f"the index at {directory} was built with model '{manifest.get('model_id')}' but the loaded model is "
            f"'{expected_model_id}'; its vectors are not comparable. Rebuild it with "
            f"`dancesearch index build --run <model run>` (or load the model it was built with)")
    files = manifest.get("files", {})
    try:
        with np.load(directory / files["attrs"], allow_pickle=False) as z:
            attrs = ClipAttributes.from_arrays(z)
        with np.load(directory / files["centroids"], allow_pickle=False) as z:
            centroids = GenreCentroids.from_arrays(z)
        backend = manifest.get("backend", "faiss")
        if backend == "faiss":
            params = FaissParams.from_dict(manifest.get("params"))
            idx_file = directory / files["index"] if "index" in files else None
            index: VectorIndex = FaissIndex.from_parts(manifest["kind"], int(manifest["dim"]), params, idx_file, attrs,
                                                       directory / files["vectors"])
        elif backend == "milvus":
            from .milvus_index import MilvusIndex  # optional dependency

            index = MilvusIndex.open(milvus_uri or manifest["milvus"]["uri"], manifest["milvus"]["collection"],
                                     int(manifest["dim"]), manifest["kind"], attrs)
        else:
            raise IndexNotFoundError(f"{directory}: unknown index backend '{backend}'")
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        raise IndexNotFoundError(f"{directory}: the index files are incomplete or unreadable ({exc}); "
                                 f"rebuild with `dancesearch index build`") from exc
    if len(index) != int(manifest.get("count", len(index))):
        raise IndexNotFoundError(f"{directory}: manifest says {manifest.get('count')} vectors, files hold {len(index)}")
    gate_arrays = None
    if "gate" in files:
        try:
            with np.load(directory / files["gate"], allow_pickle=False) as z:
                gate_arrays = {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
        except (OSError, ValueError) as exc:  # the gate is optional: search still works without it
            import logging

            logging.getLogger("dancesearch.index").warning("%s: query gate not loaded (%s)", directory, exc)
    return LoadedIndex(index, manifest, centroids, directory, gate_arrays)
