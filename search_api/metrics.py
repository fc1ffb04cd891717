"""Prometheus metrics: request latency histograms per route, search latency per mode, micro-batch sizes
and queue waits, the query-embedding cache's hits and misses, and the served workspace state (index
generation, catalog version, index entries hidden because their clip left the catalog, reloads).

Each app gets its own ``CollectorRegistry`` so several apps (tests) can live in one process.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024)


class CacheCollector:
    """Exports a cache's own counters at scrape time (the cache lives in the index layer and knows
    nothing of Prometheus; ``stats()`` returns hits, misses and entries)."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        s = self.stats()
        lookups = CounterMetricFamily("dancesearch_text_embedding_cache_lookups",
                                      "query-embedding cache lookups by result", labels=["result"])
        lookups.add_metric(["hit"], s["hits"])
        lookups.add_metric(["miss"], s["misses"])
        yield lookups
        yield GaugeMetricFamily("dancesearch_text_embedding_cache_entries", "query embeddings cached",
                                value=s["entries"])


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("dancesearch_http_request_duration_seconds", "HTTP request latency",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.search = Histogram("dancesearch_search_duration_seconds", "search latency inside the engine",
                                ["mode"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.no_match = Counter("dancesearch_search_no_match_total", "searches answered with no_match=true",
                                registry=self.registry)
        self.index_size = Gauge("dancesearch_index_vectors", "vectors in the loaded index", registry=self.registry)
        self.in_flight = Gauge("dancesearch_http_requests_in_flight", "requests being served", registry=self.registry)
        self.batch_size = Histogram("dancesearch_search_batch_size", "searches served together by one micro-batch",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram("dancesearch_search_queue_seconds",
                                    "how long the oldest search of a batch waited for the worker",
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        self.reloads = Counter("dancesearch_reloads_total", "switches to a new index / catalog state",
                               ["trigger", "result"], registry=self.registry)
        self.index_generation = Gauge("dancesearch_index_generation", "generation of the index being served",
                                      registry=self.registry)
        self.catalog_version = Gauge("dancesearch_catalog_version", "catalog change counter the server answers from",
                                     registry=self.registry)
        self.index_hidden = Gauge("dancesearch_index_hidden_vectors",
                                  "index entries left out because their clip is gone from the catalog "
                                  "(rebuild the index to drop them)", registry=self.registry)
        self.catalog_unindexed = Gauge("dancesearch_catalog_unindexed_clips",
                                       "catalog clips the served index does not have yet", registry=self.registry)

    def observe_state(self, trigger: str, info: dict[str, Any]) -> None:
        """Record a (re)load of the served state (``ApiService.on_change``)."""
        if trigger.endswith("-failed"):
            self.reloads.labels(trigger.removesuffix("-failed"), "error").inc()
            return
        if trigger != "start":
            self.reloads.labels(trigger, "ok").inc()
        self.index_size.set(info.get("searchable") or 0)
        self.index_generation.set(info.get("generation") or 0)
        self.catalog_version.set(info.get("catalog_version") or 0)
        self.index_hidden.set(info.get("hidden") or 0)
        self.catalog_unindexed.set(info.get("unindexed") or 0)

    def observe_batch(self, size: int, waited_s: float) -> None:
        self.batch_size.observe(size)
        self.queue_wait.observe(waited_s)

    def watch_cache(self, stats: Callable[[], dict[str, int]]) -> None:
        """Export the query-embedding cache's counters (see CacheCollector)."""
        self.registry.register(CacheCollector(stats))

    def observe_search(self, body: dict[str, Any]) -> None:
        self.search.labels(body.get("mode", "text")).observe(float(body.get("took_ms", 0.0)) / 1000.0)
        if body.get("no_match"):
            self.no_match.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): times every HTTP request by route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", "GET"), path, str(status["code"])).observe(
                time.perf_counter() - start)
