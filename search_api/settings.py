"""Server settings: command-line flags override ``DANCESEARCH_*`` environment variables and defaults."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Everything ``create_app`` needs; one instance per server."""

    model_config = SettingsConfigDict(env_prefix="DANCESEARCH_", extra="ignore")

    home: Path | None = Field(None, description="workspace (default: $DANCESEARCH_HOME or ./.dancesearch)")
    db: str | None = Field(None, description="catalog SQLAlchemy URL (default: HOME/catalog.sqlite)")
    run: Path | None = Field(None, description="model run folder (default: models/demo)")
    text_encoder: Literal["full", "fast"] = Field(
        "full", description="query encoder: the run's trained text encoder, or its distilled fast stand-in "
                            "(RUN/fast_text: ~25x cheaper per query on a CPU, about one point of R@10 lower)")
    query_expansion: bool = Field(
        True, description="expand dance jargon, step names and typos in queries with the catalog genre they point "
                          "to before encoding (encoders/text_vocabulary.py; the response's expanded_query shows it)")
    index_name: str = "default"
    milvus_uri: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = Field(None, description="required by routes that change server state")
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads of the text encoder; default: the cores shared out among the "
                                "batch workers when batching (one worker on a 2-core machine encodes with both "
                                "cores), 1 without (requests then encode in parallel threads)")
    faiss_threads: int | None = Field(1, ge=1, description="OpenMP threads per FAISS search (1: requests run in parallel)")
    faiss_blas_threshold: int | None = Field(
        4, ge=1, description="batches of at least this many queries are scored by FAISS as one matrix product "
                             "(faiss' default, 20 or far more depending on the build, leaves micro-batches on its "
                             "one-query-at-a-time scan, ~8x slower per query at 32)")
    max_batch: int = Field(64, ge=1, le=1024, description="most searches served by one encoder pass and index scan; "
                                                          "1 turns batching off (one search per thread-pool thread)")
    batch_window_ms: float = Field(2.0, ge=0, le=100, description="under load, how long a batch waits for "
                                                                   "stragglers; a lone request never waits")
    batch_workers: int = Field(1, ge=1, le=64, description="threads serving batches, each with its own batch")
    embedding_cache_size: int = Field(1024, ge=0, description="query embeddings kept in an LRU cache (0: off)")
    backbone_memo_size: int = Field(0, ge=0, description="frozen text-backbone features the full encoder memoises; "
                                                           "the server's own query cache sits in front of it, so it "
                                                           "is off by default (it would grow with every new query)")
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed to call the API")
    log_level: str = "info"
    keep_alive_s: float = Field(
        75.0, gt=0, le=3600,
        description="seconds an idle keep-alive connection stays open; longer than the idle timeout of the clients "
                    "and proxies in front (httpx 5 s, the UI's client 30 s, nginx upstream 60 s, AWS ALB 60 s), so the "
                    "client always closes first and never sends a request on a connection the server is closing "
                    "(uvicorn's default of 5 s raced httpx's 5 s pool expiry: dropped requests under load)")
    reload_check_s: float = Field(
        1.0, ge=0, le=3600,
        description="how often the server checks whether the index (its manifest) or the catalog (its change "
                    "counter) changed, and switches to the new state; 0 turns the automatic reload off")
    max_search_body_bytes: int = Field(64 * 1024, ge=1024, description="largest accepted body of POST /v1/search "
                                                                       "(a full request is well under 2 KiB)")
    max_body_bytes: int = Field(64 * 1024, ge=0, description="largest accepted request body of every other route")
    # --- generation (POST /v1/generate, /v1/jobs) --------------------------------------------------------
    generator_run: Path | None = Field(None, description="generator run folder (default: models/generator)")
    generate_workers: int = Field(1, ge=1, le=64, description="generation jobs run at the same time (threads)")
    generate_queue_limit: int = Field(8, ge=0, le=10000, description="jobs that may wait for a worker; one more "
                                                                     "is refused with 429 and Retry-After")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest POST /v1/generate or /v1/videos "
                                                                         "body (an uploaded audio file or photo and "
                                                                         "its form)")
    generate_max_seconds: float = Field(60.0, ge=4.0, le=300.0, description="longest dance one request may ask for")
    generate_max_candidates: int = Field(4, ge=1, le=32, description="most candidates one request may ask for")
    generate_not_dance_threshold: float = Field(
        0.9, ge=0.0, le=1.0,
        description="a generation request whose genre comes from its text is declined (422 not_a_dance_query) only "
                    "when the search's query gate gives the text at least this not_dance probability; the gate "
                    "misreads some genuine dance texts with middling probabilities (e.g. 0.64), which go through")
    generator_backend: Literal["auto", "gcrm", "diffusion"] = Field(
        "auto", description="what makes the dances: gcrm (FineNet's GCRM: 4-s candidates from diffusion and from "
                            "catalog windows retrieved by text and music, chosen by GS + coherence and stitched), "
                            "diffusion (plain long-term sampling), auto (gcrm when a GS network is at gs_run)")
    gs_run: Path | None = Field(None, description="GS network run folder for gcrm (default: models/gs)")
    gcrm_diffusion_candidates: int = Field(2, ge=0, le=16, description="gcrm: diffusion samples per 4-s segment "
                                                                        "(all sampled in one batch)")
    gcrm_catalog_candidates: int = Field(2, ge=0, le=16, description="gcrm: catalog windows per 4-s segment "
                                                                      "(train split, retrieved by text and music)")
    generate_warm_up: bool = Field(False, description="load the generation models in a background thread at start, "
                                                      "so the first job does not wait for them (`dancesearch serve` "
                                                      "turns it on unless --no-generate-warm-up)")

    def encoder_threads(self) -> int:
        """``torch_threads``, or its default for the batching mode (see the field)."""
        if self.torch_threads:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // self.batch_workers) if self.max_batch > 1 else 1
