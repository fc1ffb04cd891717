"""Vector indexes over clip embeddings (FAISS, Milvus), their persistence, and the shared search logic.

Public API: :class:`VectorIndex` (base), :class:`FaissIndex`, :class:`MilvusIndex` (milvus_index,
imported lazily: pymilvus is optional), :class:`ClipFilter`, :func:`save_index` / :func:`load_index`,
:func:`build_index` / :func:`update_index` (builder), :class:`SearchEngine` (service).
"""
from .base import KINDS, Hits, VectorIndex, auto_kind, normalise
from .faiss_index import FaissIndex, FaissParams, gpu_available
from .filters import ClipAttributes, ClipFilter
from .store import DEFAULT_INDEX_NAME, GenreCentroids, IndexNotFoundError, LoadedIndex, load_index, save_index

__all__ = ["KINDS", "Hits", "VectorIndex", "auto_kind", "normalise", "FaissIndex", "FaissParams", "gpu_available",
           "ClipAttributes", "ClipFilter", "DEFAULT_INDEX_NAME", "GenreCentroids", "IndexNotFoundError",
           "LoadedIndex", "load_index", "save_index"]
