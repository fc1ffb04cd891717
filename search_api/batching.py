"""Request micro-batching: concurrent searches share one text-encoder pass and one index scan.

Why: on a CPU, encoding 30 short queries in one MiniLM forward pass costs a few times one query,
not 30 times, and an exact (flat) index search of 30 queries is one matrix product over the same
vectors.  Serving each HTTP request on its own wastes that; serving them in batches is how one
2-core process reaches hundreds of queries per second.

Design ("natural batching"): one worker thread owns the heavy work (torch and FAISS release the
GIL, so the event loop keeps accepting and answering requests meanwhile).  Handlers ``await``
:meth:`MicroBatcher.submit`; the worker takes everything queued (up to ``max_batch``) and hands it
to the batch handler in one call.  An isolated request finds the worker idle and is served at
once; under load, requests pile up while a batch runs and form the next batch by themselves.
``window_s`` only matters under load: when the previous batch had several requests, the worker
lingers up to that long until the new batch is as large as the previous one (stragglers whose
HTTP parsing is still in progress), which keeps batch sizes even under a steady load instead of
alternating between one early request and the rest; a lone request never waits for it.

The handler returns one result per item, or the exception for that item: the other items of the
batch are answered normally.  Plain calls (:meth:`MicroBatcher.call`) run alone on the same worker
so that every index search of the process happens on the batch thread.  ``workers > 1`` runs that
many batch threads on the one queue (each takes its own batch): an alternative to one thread with
multi-threaded torch when OpenMP teams suffer from a busy machine.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

from encoders.errors import DanceSearchError

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatcherClosedError(DanceSearchError):
    """The server is shutting down: requests still queued are answered 503."""


@dataclass
class _Job:
    """One queued unit: a batchable ``item`` or a plain ``fn`` to call, and where its answer goes."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    item: Any = None
    fn: Callable[[], Any] | None = None
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[Item, Result]):
    """Gathers items submitted from asyncio handlers and serves them in batches on worker threads.

    ``handler(items) -> [result or exception per item]`` runs on a worker thread.  ``on_batch``
    (size, oldest queue wait in seconds) is called on the worker after each batch, for metrics.
    Workers start on the first submission (so apps used without their lifespan still work) and
    stop with :meth:`close`.
    """

    def __init__(self, handler: Callable[[list[Item]], Sequence[Result | BaseException]], max_batch: int = 64,
                 window_s: float = 0.002, on_batch: Callable[[int, float], None] | None = None,
                 workers: int = 1, name: str = "search-batcher") -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be at least 1")
        self.handler = handler
        self.max_batch = int(max_batch)
        self.window_s = max(0.0, float(window_s))
        self.on_batch = on_batch
        self.workers = int(workers)
        self.name = name
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # --- asyncio side ---------------------------------------------------------------------------------
    async def submit(self, item: Item) -> Result:
        """The handler's result for ``item`` (its exception is raised here)."""
        return await self._enqueue(item=item)

    async def call(self, fn: Callable[[], Result]) -> Result:
        """Run ``fn()`` alone on a worker thread (between batches) and return its result."""
        return await self._enqueue(fn=fn)

    async def _enqueue(self, item: Any = None, fn: Callable[[], Any] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        job = _Job(loop, loop.create_future(), item=item, fn=fn)
        with self._cond:
            if self._closed:
                raise BatcherClosedError("the server is shutting down")
            if not self._threads:
                self._threads = [threading.Thread(target=self._run, name=f"{self.name}-{i}", daemon=True)
                                 for i in range(self.workers)]
                for t in self._threads:
                    t.start()
            self._queue.append(job)
            self._cond.notify()
        return await job.future

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers after the batches in progress; jobs still queued fail with BatcherClosedError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        self._resolve([(j, BatcherClosedError("the server is shutting down")) for j in left])

    @property
    def closed(self) -> bool:
        return self._closed

    # --- worker side ----------------------------------------------------------------------------------
    def _take(self, last: int) -> list[_Job] | None:
        """The next batch (None when closed): a plain call alone, else up to ``max_batch`` items;
        ``last`` is the size of this worker's previous batch."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            if self._queue[0].fn is not None:
                return [self._queue.popleft()]
            batch = self._drain([])
            expected = min(self.max_batch, last)
            if len(batch) < expected and self.window_s > 0:
                deadline = time.perf_counter() + self.window_s
                while len(batch) < expected and not self._closed:
                    if self._queue and self._queue[0].fn is None:
                        batch = self._drain(batch)
                        continue
                    left = deadline - time.perf_counter()
                    if left <= 0 or self._queue:  # time is up, or a plain call waits: go
                        break
                    self._cond.wait(left)
            return batch

    def _drain(self, batch: list[_Job]) -> list[_Job]:
        while self._queue and len(batch) < self.max_batch and self._queue[0].fn is None:
            job = self._queue.popleft()
            if not job.future.cancelled():  # the client went away: skip its work
                batch.append(job)
        return batch

    def _run(self) -> None:
        last = 0
        while True:
            batch = self._take(last)
            if batch is None:
                return
            if not batch:
                continue
            started = time.perf_counter()
            if batch[0].fn is not None:
                try:
                    answers: list[Any] = [batch[0].fn()]
                except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting handler
                    answers = [exc]
            else:
                last = len(batch)
                try:
                    answers = list(self.handler([j.item for j in batch]))
                    if len(answers) != len(batch):
                        raise RuntimeError(f"batch handler returned {len(answers)} answers for {len(batch)} items")
                except BaseException as exc:  # noqa: BLE001 - a handler bug fails this batch, not the worker
                    answers = [exc] * len(batch)
                if self.on_batch is not None:
                    try:
                        self.on_batch(len(batch), started - min(j.queued_at for j in batch))
                    except Exception:  # noqa: BLE001 - metrics must never break serving
                        pass
            self._resolve(list(zip(batch, answers)))

    @staticmethod
    def _resolve(pairs: list[tuple[_Job, Any]]) -> None:
        """Hand answers to their event loops: one thread-safe wake-up per loop, not one per request."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
        for job, answer in pairs:
            by_loop.setdefault(job.loop, []).append((job, answer))

        def deliver(items: list[tuple[_Job, Any]]) -> None:
            for job, answer in items:
                if job.future.done():
                    continue
                if isinstance(answer, BaseException):
                    job.future.set_exception(answer)
                else:
                    job.future.set_result(answer)

        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(deliver, items)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
