"""Thread settings of a serving process: torch intra-op threads, FAISS OpenMP threads and FAISS' BLAS
threshold, and how they reach the threads that actually search.

Why a module of its own: FAISS' OpenMP thread count is a per-thread setting, and a fresh thread
(the batch worker, a thread-pool thread) starts with one OpenMP thread per core whatever the main
thread chose.  On 2 busy cores those spinning OpenMP teams made a 32-query FAISS batch ~10x slower
in the worker than in the main thread.  So the process is configured once (``configure_process``,
from the settings, in ``load_engine``), the app snapshots the result (``ThreadSettings.capture``)
and every searching thread applies the snapshot once (``ThreadSettings.wrap``).  An app built in a
process configured elsewhere (tests) thus leaves that process's choices alone.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .settings import ApiSettings


def configure_process(settings: ApiSettings) -> None:
    """Apply the settings to this process (and the calling thread): torch threads, FAISS threads,
    and the batch size from which FAISS scores queries as one matrix product (a FAISS global)."""
    import faiss
    import torch

    torch.set_num_threads(settings.encoder_threads())
    if settings.faiss_threads:
        faiss.omp_set_num_threads(settings.faiss_threads)  # spinning OpenMP teams starve concurrent requests
    if settings.faiss_blas_threshold:
        faiss.cvar.distance_compute_blas_threshold = settings.faiss_blas_threshold


@dataclass
class ThreadSettings:
    """The calling thread's torch / FAISS thread counts, to re-apply in other threads."""

    torch_threads: int
    faiss_threads: int
    _applied: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @classmethod
    def capture(cls) -> "ThreadSettings":
        import faiss
        import torch

        return cls(int(torch.get_num_threads()), int(faiss.omp_get_max_threads()))

    def apply(self) -> None:
        """Apply to the calling thread (once per thread)."""
        if getattr(self._applied, "done", False):
            return
        import faiss
        import torch

        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        faiss.omp_set_num_threads(self.faiss_threads)
        self._applied.done = True

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` that first applies these settings in whichever thread runs it."""
        def run(*args: Any) -> Any:
            self.apply()
            return fn(*args)
        return run
