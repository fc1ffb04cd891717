"""Generation jobs: a bounded worker pool, job records in the catalog database, results stored as clips.

Back-end interface (what a job runs, replaceable: a retrieval-augmented stitcher can take the place of the
plain diffusion pipeline):

    backend(request: GenerationRequest, progress: Callable[[float, str], None], cancelled: Callable[[], bool])
        -> GenerationResult(record: MotionRecord, genre, model_id, provenance: dict with "segments")
    backend.genres() -> list[str]          (the genres it can dance; used to validate a request's genre)

``progress(fraction, stage)`` reports the back-end's own progress in [0, 1]; ``cancelled()`` turns True when
the job was cancelled or the server is stopping: the back-end should then raise :class:`JobCancelled` (or
return; the runner checks again). :class:`DiffusionBackend` is the default: ``DancePipeline`` (long-term
sampling: 4-s windows every 2 s, chained), loaded lazily once per process, with a per-DDIM-step hook for
progress and cancellation.

Job life: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``. Records live in the catalog's
``generation_jobs`` table, so they survive a restart. On start (:meth:`JobManager.start`):

- a job still ``running`` (the server stopped or crashed under it) is marked ``failed`` with error code
  ``interrupted`` (it is not re-run: its partial output is discarded; submit it again);
- a job still ``queued`` is queued again and runs.

A graceful stop interrupts running jobs at their next step the same way (``failed`` / ``interrupted``) and
leaves queued ones queued for the next start; ``start()`` after ``stop()`` works (a fresh queue each time), and
the uploads of jobs that ended (interrupted ones included) are deleted on start. One failing job never stops a
worker: every exception ends as that job's ``error`` (``{code, message}``), and unexpected ones are logged with
their traceback.

Results: each candidate becomes a clip of source ``generated`` (sequence = the job id, clip index = the
candidate), split ``gen`` (never train / val / test), captions = the request text (origin ``request``),
media under ``HOME/media/generated/<job>/`` laid out like ingested clips (``<i>.motion.npz``,
``<i>.music.npy``, ``<i>.ogg`` when the music has audio), and a ``clip_provenance`` row (model id, seed,
first_rank, parameters, music origin, segment origins). The seed is the one that reproduces the dance: the job's
seed + i for back-ends called once per candidate, the job's seed for GCRM (whose dances share one candidate pool
and differ by their first choice, ``first_rank``). A back-end may make fewer dances than asked (GCRM: one per
distinct first-segment candidate): the result then says so (``candidates_made``, ``notes``). The catalog's
change counter moves, so the server's watcher notices the new clips like any ingest.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from sqlalchemy.exc import OperationalError, ProgrammingError

from encoders.errors import DanceSearchError, InputError
from encoders.motion.record import MotionRecord
from indexer.catalog import (GENERATED_SOURCE, GENERATED_SPLIT, JOB_FINAL_STATES, Catalog, CatalogError, ClipRow,
                             SequenceRow)
from indexer.workspace import Workspace

log = logging.getLogger("dancesearch.api")

FPS = 30
MIN_MUSIC_SECONDS = 4.0   # one generator window
UPLOADS_DIR = "uploads"   # HOME/uploads/<job>/ (a queued job's audio), HOME/uploads/.incoming/ (requests)
Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


class JobCancelled(Exception):
    """Raised inside a job when ``cancelled()`` turned True (cancel request or server stop)."""


class QueueFull(DanceSearchError):
    def __init__(self, retry_after: int, waiting: int, limit: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"the generation queue is full ({waiting} jobs waiting, limit {limit}); "
                         f"retry in about {retry_after} s")


class JobNotFound(DanceSearchError):
    pass


class JobConflict(DanceSearchError):
    pass


@dataclass
class GenerationRequest:
    """What a back-end gets for one candidate."""

    music: np.ndarray          # (T, 35) float32 music features at 30 fps; the dance has T frames
    genre: str
    text: str | None
    seed: int
    steps: int = 20
    guidance: float = 2.0
    candidate: int = 0
    audio: tuple[np.ndarray, int] | None = None   # (y, sr) of the music when it has audio (GCRM's GS needs it)


@dataclass
class GenerationResult:
    record: MotionRecord
    genre: str
    model_id: str
    provenance: dict[str, Any] = field(default_factory=dict)   # backend facts, incl. "segments": [...]
    seed: int | None = None         # the seed that reproduces this dance (None: the job's seed + candidate)
    first_rank: int | None = None   # GCRM: rank of the dance's first-segment choice (with ``seed``, reproduces it)


class GenerationBackend(Protocol):
    def genres(self) -> list[str]: ...

    def __call__(self, request: GenerationRequest, progress: Progress, cancelled: Cancelled) -> GenerationResult: ...


def genre_key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace(" ", "")


class _HookedScheduler:
    """Wraps the pipeline's DDIM scheduler: every ``step`` first calls the calling thread's hook (progress,
    cancellation), so several worker threads can share one pipeline."""

    def __init__(self, inner: Any, hooks: threading.local) -> None:
        self._inner = inner
        self._hooks = hooks

    def step(self, *args: Any, **kwargs: Any) -> Any:
        hook = getattr(self._hooks, "on_step", None)
        if hook is not None:
            hook()
        return self._inner.step(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class DiffusionBackend:
    """The shipped generator (``generation.diffusion.DancePipeline``), loaded on first use, once per process."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        if run_dir is None:
            from generation.diffusion.cli import DEFAULT_RUN
            run_dir = DEFAULT_RUN
        self.run_dir = Path(run_dir)
        self._pipe: Any = None
        self._lock = threading.Lock()
        self._hooks = threading.local()

    def pipeline(self) -> Any:
        with self._lock:
            if self._pipe is None:
                from generation.diffusion.pipeline import DancePipeline

                if not (self.run_dir / "model.pt").is_file():
                    raise DanceSearchError(f"no generator at {self.run_dir} (needs model.pt): set "
                                           "DANCESEARCH_GENERATOR_RUN to a generator run folder")
                pipe = DancePipeline.from_pretrained(self.run_dir)
                pipe.scheduler = _HookedScheduler(pipe.scheduler, self._hooks)
                self._pipe = pipe
            return self._pipe

    def genres(self) -> list[str]:
        return list(self.pipeline().genres)

    def __call__(self, request: GenerationRequest, progress: Progress, cancelled: Cancelled) -> GenerationResult:
        pipe = self.pipeline()
        done = [0]

        def on_step() -> None:
            if cancelled():
                raise JobCancelled()
            done[0] += 1
            progress(min(1.0, done[0] / max(1, request.steps)), f"denoising step {done[0]}/{request.steps}")

        if cancelled():
            raise JobCancelled()
        self._hooks.on_step = on_step
        try:
            out = pipe(request.music, request.genre, seed=request.seed, steps=request.steps, guidance=request.guidance)
        finally:
            self._hooks.on_step = None
        n = int(out.record.num_frames)
        timing = dict(out.timing)
        timing.update({"candidates_s": timing.get("sample_s", 0.0), "scoring_s": 0.0,
                       "stitch_s": timing.get("assemble_s", 0.0)})
        return GenerationResult(out.record, out.genre, pipe.model_id, {
            "backend": "diffusion", "windows": int(out.windows), "timing": timing,
            "segments": [{"start_frame": 0, "end_frame": n, "origin": "generated", "method": "diffusion",
                          "clip_id": None}]}, seed=int(request.seed))


def default_gs_run() -> Path:
    """The GS network's default run folder (``models/gs``), as ``generation.genre_match`` defines it."""
    from generation.genre_match.scorer import DEFAULT_GS_DIR

    return Path(DEFAULT_GS_DIR)


def gs_available(gs_run: str | Path | None) -> bool:
    return (Path(gs_run or default_gs_run()) / "model.pt").is_file()


class GCRMBackend:
    """FineNet's GCRM (``generation.stitching``) as the job back-end: per 4-s segment, ``diffusion_candidates``
    diffusion samples (all segments x seeds in one batched sampler run) and ``catalog_candidates`` train-split
    windows retrieved by the request text (the served index and text encoder) and the music (GS encoders),
    chosen by alpha GS + beta CS and stitched. One request asking for N candidates gets N dances from distinct
    first choices of the same candidate pool (``generate_many``).

    The generator is the :class:`DiffusionBackend`'s (one copy per process); the GS network and the catalog
    windows (their GS embeddings cached under ``HOME/cache/generation/stitching``) load on first use, once.
    Music without audio has no mel for GS: such a job falls back to plain long-term sampling (said in its
    provenance)."""

    name = "gcrm"

    def __init__(self, diffusion: DiffusionBackend, gs_run: str | Path | None = None,
                 workspace: Workspace | None = None, engine_fn: Callable[[], Any] | None = None,
                 diffusion_candidates: int = 2, catalog_candidates: int = 2) -> None:
        self.diffusion = diffusion
        self.gs_run = Path(gs_run or default_gs_run())
        self.ws = workspace
        self.engine_fn = engine_fn
        self.diffusion_candidates = int(diffusion_candidates)
        self.catalog_candidates = int(catalog_candidates)
        self._scorer: Any = None
        self._catalog: Any = None
        self._catalog_model: str | None = None
        self._catalog_error: str | None = None
        self._lock = threading.Lock()

    def genres(self) -> list[str]:
        return self.diffusion.genres()

    def warm(self) -> None:
        """Load everything a job needs (generator, GS network, catalog windows), e.g. at server start."""
        self.diffusion.pipeline()
        scorer, _ = self._parts()
        sr = 22050     # the first mel of a process pays librosa's one-time set-up (~3 s on 2 busy cores)
        scorer.mel(np.random.default_rng(0).normal(scale=0.1, size=sr).astype(np.float32), sr)

    def _parts(self) -> tuple[Any, Any]:
        with self._lock:
            if self._scorer is None:
                from generation.genre_match.scorer import GSScorer

                if not gs_available(self.gs_run):
                    raise DanceSearchError(f"no GS network at {self.gs_run} (needs model.pt): set "
                                           "DANCESEARCH_GS_RUN or use DANCESEARCH_GENERATOR_BACKEND=diffusion")
                self._scorer = GSScorer.from_pretrained(self.gs_run)
            engine = self.engine_fn() if self.engine_fn is not None else None
            model = getattr(engine, "model_id", None)
            if self.catalog_candidates > 0 and self.ws is not None and (self._catalog is None
                                                                        or model != self._catalog_model):
                self._catalog, self._catalog_model = self._load_catalog(engine), model
            return self._scorer, self._catalog

    def _load_catalog(self, engine: Any) -> Any:
        """Train-split windows; the text side is the served index's clip vectors and the served text encoder."""
        from generation.metrics.catalog_source import window_store
        from generation.stitching import CatalogCandidates

        assert self.ws is not None
        try:
            store = window_store(self.ws.home, self.ws.db_url, stride_seconds=2.0)
        except Exception as exc:  # noqa: BLE001 - no usable train windows: diffusion candidates only
            self._catalog_error = f"catalog windows unavailable: {exc}"
            log.warning("GCRM: %s", self._catalog_error)
            return None
        text_vectors, encoder = None, None
        if engine is not None:
            try:
                index_ids = set(int(i) for i in engine.index.ids())
                ids = np.array(sorted({int(c["id"]) for c in store.clips("train")} & index_ids), dtype=np.int64)
                if len(ids):
                    text_vectors = {int(i): v for i, v in zip(ids, engine.index.vectors_for(ids))}
                    encoder = lambda texts, e=engine: e.encode_many(texts)  # noqa: E731
            except Exception as exc:  # noqa: BLE001 - music-only retrieval
                log.warning("GCRM: catalog retrieval without its text side: %s", exc)
        return CatalogCandidates(store, self._scorer, "train", text_vectors, encoder,
                                 self.ws.cache_dir / "generation" / "stitching")

    def __call__(self, request: GenerationRequest, progress: Progress, cancelled: Cancelled) -> GenerationResult:
        return self.generate_many(request, 1, progress, cancelled)[0]

    def generate_many(self, request: GenerationRequest, count: int, progress: Progress,
                      cancelled: Cancelled) -> list[GenerationResult]:
        if request.audio is None:
            res = []
            for i in range(count):
                r = self.diffusion(GenerationRequest(request.music, request.genre, request.text, request.seed + i,
                                                     request.steps, request.guidance, i), progress, cancelled)
                r.provenance["note"] = "the music has no audio, so GCRM (GS needs the mel) was not used"
                r.seed, r.first_rank = request.seed + i, None
                res.append(r)
            return res
        from generation.stitching import GCRMPipeline, GenerationCancelled

        pipe_gen = self.diffusion.pipeline()
        scorer, catalog = self._parts()
        k_cat = self.catalog_candidates if catalog is not None else 0
        gcrm = GCRMPipeline(pipe_gen, scorer, catalog, steps=request.steps, guidance=request.guidance)
        frames = len(request.music)
        try:
            out = gcrm(request.music, request.genre, audio=request.audio, text=request.text,
                       seed=request.seed, candidates=self.diffusion_candidates, catalog_candidates=k_cat,
                       dances=count, progress=progress, cancelled=cancelled)
        except GenerationCancelled as exc:
            raise JobCancelled() from exc
        timing = dict(out.timing)
        timing["candidates_s"] = timing.get("candidates_s", 0.0)
        results = []
        for d in out.dances:
            segments = []
            for p in d.provenance:
                a, b = int(round(p["start_s"] * FPS)), int(round(p["end_s"] * FPS))
                seg = {"start_frame": a, "end_frame": min(b, frames), "origin": p["source"], "method": "gcrm",
                       "seed": p.get("seed"), "clip_id": p.get("clip_id"), "gs": p.get("gs"), "cs": p.get("cs")}
                if p["source"] == "catalog":
                    seg.update({"clip_key": p.get("clip_key"), "window_start_s": p.get("window_start_s"),
                                "window_end_s": round(float(p.get("window_start_s") or 0.0)
                                                      + gcrm.segment_frames / FPS, 3),
                                "retrieval_score": p.get("retrieval_score")})
                segments.append(seg)
            prov = {"backend": "gcrm", "timing": timing, "segments": segments, "gs": d.gs,
                    "gcrm": {"alpha": gcrm.alpha, "beta": gcrm.beta, "cut": gcrm.cut,
                             "segment_frames": gcrm.segment_frames, "diffusion_candidates": self.diffusion_candidates,
                             "catalog_candidates": k_cat, "first_rank": d.selection.first_rank,
                             "gs_model": getattr(scorer, "model_digest", None),
                             "text_retrieval": bool(catalog is not None and catalog.text_matrix is not None)},
                    "notes": list(out.notes) + ([self._catalog_error] if self._catalog_error else [])}
            if len(out.dances) < count:
                prov["notes"].append(
                    f"{count} dances were asked for, {len(out.dances)} made: GCRM makes one dance per distinct "
                    f"first-segment candidate, and this music's first segment had {len(out.dances)} "
                    f"({self.diffusion_candidates} diffusion + up to {k_cat} catalog per segment: "
                    "DANCESEARCH_GCRM_DIFFUSION_CANDIDATES, DANCESEARCH_GCRM_CATALOG_CANDIDATES)")
            # every dance comes from the same candidate pool (one seed); it is reproduced by the request's seed
            # and the rank of its first choice, not by seed + i
            results.append(GenerationResult(d.record, out.genre, pipe_gen.model_id, prov, seed=int(request.seed),
                                            first_rank=int(d.selection.first_rank)))
        return results


def make_backend(settings: Any, workspace: Workspace | None = None,
                 engine_fn: Callable[[], Any] | None = None) -> GenerationBackend:
    """The back-end the settings choose: ``generator_backend`` ``gcrm``, ``diffusion``, or ``auto`` (GCRM when a
    GS network is available at ``gs_run``, else plain diffusion)."""
    diffusion = DiffusionBackend(settings.generator_run)
    choice = getattr(settings, "generator_backend", "auto")
    if choice == "diffusion" or (choice == "auto" and not gs_available(settings.gs_run)):
        return diffusion
    return GCRMBackend(diffusion, settings.gs_run, workspace, engine_fn, settings.gcrm_diffusion_candidates,
                       settings.gcrm_catalog_candidates)


class TextGenre:
    """Text -> (genre, confidence) with the shipped text genre classifier, loaded on first use."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = run_dir
        self._clf: Any = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> tuple[str, float | None]:
        with self._lock:
            if self._clf is None:
                from generation.genre import GenreClassifier
                self._clf = GenreClassifier.from_pretrained(self.run_dir)
            pred = self._clf.predict_query([text])[0]
        return pred.genre, float(pred.confidence)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class JobManager:
    """Queue + ``workers`` threads + the job records; see the module docstring."""

    def __init__(self, workspace: Workspace, backend: GenerationBackend, genre_fn: Callable[[str], tuple[str, Any]],
                 workers: int = 1, queue_limit: int = 8, progress_interval_s: float = 0.25,
                 warm_up: bool = False) -> None:
        self.ws = workspace
        self.warm_up = warm_up
        self.backend = backend
        self.genre_fn = genre_fn
        self.workers = max(1, int(workers))
        self.queue_limit = max(0, int(queue_limit))
        self.progress_interval_s = progress_interval_s
        # create=True: adds the job / provenance tables if missing; CatalogError when that needs a write the
        # catalog refuses (read-only file, a role without CREATE): the server then runs without generation
        self.catalog = Catalog(workspace.db_url)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._warm_thread: threading.Thread | None = None
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._durations: deque[float] = deque(maxlen=20)
        self.started = False

    # --- paths ---------------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        return self.ws.home / UPLOADS_DIR

    @property
    def incoming_dir(self) -> Path:
        return self.uploads_dir / ".incoming"

    def job_upload_dir(self, job_id: str) -> Path:
        return self.uploads_dir / job_id

    def media_dir(self, job_id: str) -> Path:
        return self.ws.sequence_media_dir(GENERATED_SOURCE, job_id)

    # --- life ----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        self.started = True
        # a fresh queue and stop event per start: a previous stop() may have left stop markers in the old queue
        # (workers that exit while holding a job do not consume theirs), and a worker of a previous start that
        # outlived stop()'s timeout keeps its own (set) event and queue, so it ends instead of joining this pool
        self._queue = queue.Queue()
        self._stopping = threading.Event()
        _rmtree(self.incoming_dir)      # half-received uploads of a previous process
        try:
            self.recover()
        except (OperationalError, ProgrammingError) as exc:    # a catalog this process cannot write
            log.warning("generation jobs of a previous process could not be recovered: %s", exc)
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, args=(self._queue, self._stopping),
                                 name=f"dancesearch-generate-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.warm_up and hasattr(self.backend, "warm"):
            self._warm_thread = threading.Thread(target=self._warm, name="dancesearch-generate-warm", daemon=True)
            self._warm_thread.start()

    def _warm(self) -> None:
        """Load the back-end's models before the first job (the first click then does not pay for them)."""
        try:
            self.backend.warm()   # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - the first job reports the real error
            log.warning("generation back-end warm-up failed (the first job will retry): %s", exc)

    def recover(self) -> dict[str, int]:
        """Running jobs of a previous process -> failed (interrupted); queued ones -> queued again."""
        now = time.time()
        interrupted = 0
        for job in self.catalog.jobs(["running"]):
            if self.catalog.update_job(job["id"], only_if_state=["running"], state="failed", stage="interrupted",
                                       finished_at=now, error={
                                           "code": "interrupted",
                                           "message": "the server stopped while this job was running; it was not "
                                                      "resumed: submit the request again"}):
                interrupted += 1
                self._discard_outputs(job["id"])
                _rmtree(self.job_upload_dir(job["id"]))
        requeued = 0
        for job in self.catalog.jobs(["queued"]):
            self._queue.put(job["id"])
            requeued += 1
        self._sweep_uploads()
        if interrupted or requeued:
            log.warning("generation jobs after restart: %d interrupted (marked failed), %d queued again",
                        interrupted, requeued)
        return {"interrupted": interrupted, "requeued": requeued}

    def _sweep_uploads(self) -> None:
        """Upload folders of jobs that already ended (a process that died between a job's end and its clean-up)."""
        try:
            entries = [p for p in self.uploads_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return
        for path in entries:
            job = self.catalog.job(path.name)
            if job is not None and job["state"] in JOB_FINAL_STATES:
                _rmtree(path)

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt running jobs at their next step, leave queued ones queued, join the workers."""
        if not self.started:
            return
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        # A warm-up still loading models (torch, numba) when the interpreter exits aborts the process
        # ("terminate called without an active exception"): let it finish, within the same deadline.
        if self._warm_thread is not None:
            self._warm_thread.join(max(0.0, deadline - time.monotonic()))
            self._warm_thread = None
        self.started = False
        self.catalog.close()

    # --- requests ------------------------------------------------------------------------------------
    def retry_after(self, waiting: int) -> int:
        avg = sum(self._durations) / len(self._durations) if self._durations else 10.0
        return int(min(600, max(1, math.ceil(avg * (waiting + 1) / self.workers))))

    def submit(self, params: dict[str, Any], upload: Path | None = None) -> dict[str, Any]:
        """Record a queued job (moving ``upload`` into the job's folder) and queue it; QueueFull when
        ``running + queued >= workers + queue_limit``."""
        with self._lock:
            running = self.catalog.count_jobs(["running"])
            waiting = self.catalog.count_jobs(["queued"])
            if running + waiting >= self.workers + self.queue_limit:
                raise QueueFull(self.retry_after(waiting), waiting, self.queue_limit)
            job_id = uuid.uuid4().hex
            params = dict(params)
            if upload is not None:
                target = self.job_upload_dir(job_id) / f"music{upload.suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(upload, target)
                params["_upload_path"] = self.ws.relative(target)
            try:
                job = self.catalog.add_job(job_id, params, time.time())
            except (OperationalError, ProgrammingError) as exc:   # a read-only catalog that had the job table
                _rmtree(self.job_upload_dir(job_id))
                raise CatalogError(f"the catalog cannot record the job: {exc.orig}") from exc
            except BaseException:
                _rmtree(self.job_upload_dir(job_id))
                raise
        self._queue.put(job_id)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.catalog.job(job_id)
        if job is None:
            raise JobNotFound(f"no generation job with id {job_id}")
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel: a queued job at once, a running one at its next step (``cancel_requested``); JobConflict
        for a job that already finished (done or failed); a cancelled one is returned as it is."""
        job = self.job(job_id)
        if job["state"] == "cancelled":
            return job
        if job["state"] in JOB_FINAL_STATES:
            raise JobConflict(f"job {job_id} already finished ({job['state']}); there is nothing to cancel")
        if self.catalog.update_job(job_id, only_if_state=["queued"], state="cancelled", stage="cancelled",
                                   finished_at=time.time(), cancel_requested=True):
            _rmtree(self.job_upload_dir(job_id))
            return self.job(job_id)
        with self._lock:     # the worker's clean-up (discarding the id) takes this lock too
            # The record first, then the id the worker polls: the other order let the worker cancel the job
            # between the two, and the request then saw a finished job instead of an accepted cancel.
            if self.catalog.update_job(job_id, only_if_state=["running"], cancel_requested=True):
                self._cancel.add(job_id)
                return self.job(job_id)
        job = self.job(job_id)
        if job["state"] == "cancelled":
            return job
        raise JobConflict(f"job {job_id} already finished ({job['state']}); there is nothing to cancel")

    # --- the workers ---------------------------------------------------------------------------------
    def _worker(self, jobs: queue.Queue[str | None], stopping: threading.Event) -> None:
        while True:
            job_id = jobs.get()
            if job_id is None or stopping.is_set():
                return
            try:
                self._run(job_id, stopping)
            except BaseException:  # noqa: BLE001 - a worker never dies of one job
                log.exception("generation job %s: the worker caught an unexpected error", job_id)

    def _run(self, job_id: str, stopping: threading.Event | None = None) -> None:
        stopping = stopping if stopping is not None else self._stopping
        t0 = time.time()
        if not self.catalog.update_job(job_id, only_if_state=["queued"], state="running", started_at=t0,
                                       stage="starting", progress=0.0):
            return   # cancelled (or claimed) before it started
        job = self.job(job_id)
        last = [0.0]

        def progress(fraction: float, stage: str, force: bool = False) -> None:
            now = time.monotonic()
            if force or now - last[0] >= self.progress_interval_s:
                last[0] = now
                self.catalog.update_job(job_id, only_if_state=["running"], progress=round(float(fraction), 4),
                                        stage=stage[:64])

        def cancelled() -> bool:
            return stopping.is_set() or job_id in self._cancel

        stored = False
        try:
            result = self._execute(job, progress, cancelled)
            stored = True
            self.catalog.update_job(job_id, state="done", progress=1.0, stage="done", result=result,
                                    finished_at=time.time())
            self._durations.append(time.time() - t0)
        except JobCancelled:
            if job_id in self._cancel:
                self.catalog.update_job(job_id, state="cancelled", stage="cancelled", finished_at=time.time())
            else:
                self.catalog.update_job(job_id, state="failed", stage="interrupted", finished_at=time.time(), error={
                    "code": "interrupted", "message": "the server stopped while this job was running; submit the "
                                                     "request again"})
        except InputError as exc:
            self._fail(job_id, "invalid_input", _input_message(exc))
        except DanceSearchError as exc:
            self._fail(job_id, "generation_failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug or an exhausted resource: this job fails, the server lives
            log.exception("generation job %s failed", job_id)
            self._fail(job_id, "internal_error", f"generation failed: {type(exc).__name__}: {exc} (the operator's "
                                                 "log has the traceback)")
        finally:
            with self._lock:
                self._cancel.discard(job_id)
            if not stored:
                self._discard_outputs(job_id)
            _rmtree(self.job_upload_dir(job_id))

    def _fail(self, job_id: str, code: str, message: str) -> None:
        self.catalog.update_job(job_id, state="failed", stage="failed", finished_at=time.time(),
                                error={"code": code, "message": message})

    def _discard_outputs(self, job_id: str) -> None:
        """Media of a job that did not reach the catalog (its clips, if any, are kept)."""
        if self.catalog.clip_by_key(f"{GENERATED_SOURCE}/{job_id}#0") is None:
            _rmtree(self.media_dir(job_id))

    # --- one job -------------------------------------------------------------------------------------
    def _music(self, params: dict[str, Any]) -> tuple[np.ndarray, tuple[np.ndarray, int] | None, float | None,
                                                     dict[str, Any]]:
        """(features (T, 35), audio (y, sr) or None, bpm, provenance of the music)."""
        from encoders.music.audio import load_audio
        from encoders.training.data import load_music

        music = params["music"]
        if music["kind"] == "clip":
            clip = self.catalog.clip(int(music["clip_id"]))
            if clip is None or not clip.music_path:
                raise InputError(None, f"clip {music['clip_id']} is gone from the catalog or has no music",
                                 field="clip_id")
            features = load_music(self._inside(clip.music_path))
            audio = load_audio(self._inside(clip.audio_path)) if clip.audio_path else None
            return features, audio, clip.bpm, {"kind": "clip", "clip_id": clip.id, "clip_key": clip.key}
        from encoders.music.features import analyse_signal

        y, sr = load_audio(self._inside(params["_upload_path"]))
        analysis = analyse_signal(y, sr)
        if float(np.abs(analysis.features[:, 0]).max(initial=0.0)) < 1e-6 or analysis.bpm <= 0:
            raise InputError(None, "the uploaded music has no pulse to dance to", field="audio",
                             expected="audible music with a beat", got=f"tempo {analysis.bpm:g} BPM")
        return analysis.features, (y, sr), float(analysis.bpm), {
            "kind": "upload", "filename": music.get("filename"), "sha1": music.get("sha1"),
            "content_type": music.get("content_type")}

    def _inside(self, relative: str) -> Path:
        from .media import contained_path

        return contained_path(self.ws.home, relative, "media")

    def _execute(self, job: dict[str, Any], progress: Callable[..., None], cancelled: Cancelled) -> dict[str, Any]:
        from encoders.atomic_io import atomic_save_npy, atomic_write_bytes
        from encoders.music.audio import audio_segment, write_audio

        from .service import media_urls

        job_id, p = job["id"], job["params"]
        t_start = time.perf_counter()
        started = job.get("started_at") or time.time()
        timing: dict[str, float] = {"queue_s": round(max(0.0, float(started) - float(job["created_at"])), 3)}
        progress(0.0, "reading the music", True)
        features, audio, bpm, music_info = self._music(p)
        frames = int(round(float(p["seconds"]) * FPS))
        if len(features) < frames:
            raise InputError(None, "the music is shorter than the requested seconds", field="seconds",
                             expected=f"<= {len(features) / FPS:.1f}", got=f"{p['seconds']:g}")
        features = np.ascontiguousarray(features[:frames], dtype=np.float32)
        timing["music_s"] = round(time.perf_counter() - t_start, 3)
        if cancelled():
            raise JobCancelled()
        genre, confidence, genre_source = p.get("genre"), None, "request"
        if not genre:
            t = time.perf_counter()
            progress(0.05, "reading the text", True)
            genre, confidence = self.genre_fn(p["text"])
            genre_source = "text"
            timing["genre_s"] = round(time.perf_counter() - t, 3)
        n = int(p["candidates"])
        t_gen = time.perf_counter()
        results: list[GenerationResult] = []
        many = getattr(self.backend, "generate_many", None)
        if many is not None:     # one call makes every candidate (GCRM: dances from distinct first choices)
            def sub_all(fraction: float, stage: str) -> None:
                progress(0.1 + 0.85 * min(1.0, max(0.0, fraction)), stage)

            req = GenerationRequest(features, str(genre), p.get("text"), int(p["seed"]), int(p["steps"]),
                                    float(p["guidance"]), 0, audio)
            results = list(many(req, n, sub_all, cancelled))
        for i in range(n if many is None else 0):
            if cancelled():
                raise JobCancelled()
            share = 0.85 / n

            def sub(fraction: float, stage: str, i: int = i, share: float = share) -> None:
                progress(0.1 + share * (i + min(1.0, max(0.0, fraction))), f"candidate {i + 1}/{n}: {stage}")

            req = GenerationRequest(features, str(genre), p.get("text"), int(p["seed"]) + i, int(p["steps"]),
                                    float(p["guidance"]), i, audio)
            results.append(self.backend(req, sub, cancelled))
        if not results:
            raise DanceSearchError("the generator made no dance for this music")
        timing["generate_s"] = round(time.perf_counter() - t_gen, 3)
        parts = _backend_parts([r.provenance.get("timing") or {} for r in results], many is not None)
        timing.update(parts)
        if cancelled():
            raise JobCancelled()
        progress(0.95, "storing the clips", True)
        t_store = time.perf_counter()
        media = self.media_dir(job_id)
        audio_bytes: bytes | None = None
        if audio is not None:
            y, sr = audio
            seg = audio_segment(y, sr, 0.0, frames / FPS)
            first = media / "0.ogg"
            write_audio(first, seg, sr, format="ogg")
            audio_bytes = first.read_bytes()
        rows, provs = [], []
        created = time.time()
        for i, res in enumerate(results):
            rec = res.record.slice(0, min(frames, res.record.num_frames))
            rec.save(media / f"{i}.motion.npz")
            atomic_save_npy(media / f"{i}.music.npy", features[:rec.num_frames])
            audio_rel = None
            if audio_bytes is not None:
                if i:
                    atomic_write_bytes(media / f"{i}.ogg", audio_bytes)
                audio_rel = self.ws.relative(media / f"{i}.ogg")
            seed = int(res.seed) if res.seed is not None else int(p["seed"]) + i
            text = p.get("text")
            rows.append(ClipRow(i, 0, rec.num_frames, rec.num_frames / FPS, self.ws.relative(media / f"{i}.motion.npz"),
                                self.ws.relative(media / f"{i}.music.npy"), audio_rel,
                                {"generated": True, "job": job_id, "candidate": i, "seed": seed,
                                 "first_rank": res.first_rank},
                                [(text, "request")] if text else []))
            provs.append({**res.provenance, "model_id": res.model_id, "job_id": job_id, "candidate": i,
                          "seed": seed, "first_rank": res.first_rank, "created_at": created, "music": music_info,
                          "parameters": {"text": text, "genre": res.genre, "genre_source": genre_source,
                                         "genre_confidence": confidence, "seconds": p["seconds"],
                                         "steps": p["steps"], "guidance": p["guidance"], "candidates": n,
                                         "seed": p["seed"]}})
        first = results[0]
        seq = SequenceRow(GENERATED_SOURCE, job_id, None, str(first.genre).lower(), None, float(FPS), frames, bpm,
                          audio_bytes is not None, GENERATED_SPLIT,
                          {"job_id": job_id, "text": p.get("text"), "model_id": first.model_id})
        ids = self.catalog.add_generated(seq, rows, provs, job_id=job_id)
        clips = []
        for i, (cid, row, res) in enumerate(zip(ids, rows, results)):
            clips.append({"id": cid, "key": f"{GENERATED_SOURCE}/{job_id}#{i}", "candidate": i,
                          "seed": int(row.tags["seed"]), "first_rank": res.first_rank,
                          "genre": str(res.genre).lower(), "duration_s": row.duration_s,
                          "media": media_urls(cid, row.audio_path is not None),
                          "provenance": f"/v1/clips/{cid}/provenance"})
        timing["store_s"] = round(time.perf_counter() - t_store, 3)
        timing["run_s"] = round(time.perf_counter() - t_start, 3)
        timing["total_s"] = round(timing["queue_s"] + timing["run_s"], 3)
        notes: list[str] = []
        for res in results:     # the back-end's own notes (e.g. why fewer dances, no audio, no catalog windows)
            for note in [res.provenance.get("note"), *(res.provenance.get("notes") or [])]:
                if note and str(note) not in notes:
                    notes.append(str(note))
        short = f"{n} dances were asked for, {len(results)} made"
        if len(results) < n and not any(note.startswith(short) for note in notes):
            notes.insert(0, f"{short}: the back-end's candidate pool for this music allows only {len(results)}")
        return {"clips": clips, "genre": str(first.genre).lower(), "genre_source": genre_source,
                "genre_confidence": confidence, "model_id": first.model_id, "seconds": frames / FPS,
                "backend": str(first.provenance.get("backend", "unknown")), "timing": timing,
                "candidates_requested": n, "candidates_made": len(clips), "notes": notes}


PARTS = ("mel_s", "diffusion_s", "retrieval_s", "candidates_s", "scoring_s", "stitch_s")


def _backend_parts(timings: list[dict[str, Any]], shared: bool) -> dict[str, float]:
    """The back-end's parts of a job (candidate generation, GS scoring, stitching, ...): summed over
    candidates made one by one, taken once when one call made them all (``shared``)."""
    use = timings[:1] if shared else timings
    out: dict[str, float] = {}
    for key in PARTS:
        vals = [float(t[key]) for t in use if key in t]
        if vals:
            out[key] = round(sum(vals), 3)
    return out


def _input_message(exc: InputError) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    expected, got = getattr(exc, "expected", None), getattr(exc, "got", None)
    return reason + (f" (expected {expected}, got {got})" if expected or got else "")
