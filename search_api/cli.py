"""``dancesearch serve``: the JSON search API (OpenAPI docs at /docs).

The model and the index are loaded before the port is opened, so a missing index or a model
mismatch is reported as ``error: ...`` (exit 1) instead of a server that answers 5xx.

Concurrent searches are micro-batched (one text-encoder pass and one index scan for many
requests; see search_api/batching.py): --max-batch, --batch-window-ms and --batch-workers tune
it, --max-batch 1 turns it off.  Left out, these flags (and --workers-threads, --embedding-cache,
--keep-alive, --reload-check) fall back to DANCESEARCH_MAX_BATCH, DANCESEARCH_BATCH_WINDOW_MS,
DANCESEARCH_BATCH_WORKERS, DANCESEARCH_TORCH_THREADS, DANCESEARCH_EMBEDDING_CACHE_SIZE,
DANCESEARCH_KEEP_ALIVE_S and DANCESEARCH_RELOAD_CHECK_S, then to the defaults.

The server follows its workspace: a rebuilt index or a changed catalog is picked up within
--reload-check seconds, without a restart.  docs/OPERATIONS.md covers deployment: keep-alive behind
proxies, the API key, body limits, monitoring.

Generation (POST /v1/generate, /v1/jobs): --generator-run, --generate-workers and --generate-queue (or
DANCESEARCH_GENERATOR_RUN, DANCESEARCH_GENERATE_WORKERS, DANCESEARCH_GENERATE_QUEUE_LIMIT);
--generator-backend gcrm|diffusion|auto and --gs-run (DANCESEARCH_GENERATOR_BACKEND, DANCESEARCH_GS_RUN):
auto (default) stitches dances with GCRM when a GS network is available (models/gs), else plain diffusion.
The models load in the background at start (--no-generate-warm-up: on the first job).

API key: routes that change state (generate, job cancel, admin reload) need DANCESEARCH_API_KEY when it is
set. Binding beyond the loopback interface (e.g. --host 0.0.0.0) without a key is refused (exit 2) unless
--allow-no-key is given, which then prints a warning: anyone who can reach the port could start jobs.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from encoders.cliutil import (EXIT_OK, UsageError, add_common_options, bounded_number, info, port_available,
                              port_number)
from encoders.errors import DanceSearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the JSON search API", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=port_number, default=8000, help="TCP port (default 8000)")
    p.add_argument("--run", type=Path, default=None, metavar="DIR", help="model run folder (default: models/demo)")
    p.add_argument("--text-encoder", choices=("full", "fast"), default=None,
                   help="query encoder: full (default, the trained one) or fast (its distilled stand-in in "
                        "RUN/fast_text, for throughput on a CPU; see `dancesearch distill-text`)")
    p.add_argument("--query-expansion", action=argparse.BooleanOptionalAction, default=None,
                   help="expand dance jargon, step names and typos with the catalog genre they point to before "
                        "encoding (default on; $DANCESEARCH_QUERY_EXPANSION)")
    p.add_argument("--db", metavar="URL", default=None, help="catalog SQLAlchemy URL (default: HOME/catalog.sqlite)")
    p.add_argument("--index", dest="index_name", default="default", help="index name under HOME/indexes/")
    p.add_argument("--milvus-uri", default=None, help="override the Milvus URI of a milvus index")
    p.add_argument("--workers-threads", dest="torch_threads", type=bounded_number(int, 1, 256, "--workers-threads"),
                   default=None, help="torch threads of the text encoder (default: every core with micro-batching, "
                                      "1 without)")
    p.add_argument("--max-batch", type=bounded_number(int, 1, 1024, "--max-batch"), default=None, metavar="N",
                   help="most concurrent searches served by one text-encoder pass and index scan "
                        "(default 64, $DANCESEARCH_MAX_BATCH; 1 turns micro-batching off)")
    p.add_argument("--batch-window-ms", type=bounded_number(float, 0, 100, "--batch-window-ms"), default=None,
                   metavar="MS",
                   help="under load, how long a batch waits for more searches (default 2; a lone request never waits)")
    p.add_argument("--batch-workers", type=bounded_number(int, 1, 64, "--batch-workers"), default=None, metavar="N",
                   help="threads serving micro-batches (default 1)")
    p.add_argument("--embedding-cache", dest="embedding_cache_size",
                   type=bounded_number(int, 0, None, "--embedding-cache"), default=None, metavar="N",
                   help="query embeddings kept in an LRU cache (default 1024; 0 turns it off)")
    p.add_argument("--keep-alive", dest="keep_alive_s", type=bounded_number(float, 0.1, 3600, "--keep-alive"),
                   default=None, metavar="S",
                   help="seconds an idle keep-alive connection stays open (default 75, $DANCESEARCH_KEEP_ALIVE_S); "
                        "keep it above the idle timeout of the clients and proxies in front")
    p.add_argument("--reload-check", dest="reload_check_s", type=bounded_number(float, 0, 3600, "--reload-check"),
                   default=None, metavar="S",
                   help="how often to look for a rebuilt index or a changed catalog and switch to it "
                        "(default 1, $DANCESEARCH_RELOAD_CHECK_S; 0 turns it off)")
    p.add_argument("--generator-run", dest="generator_run", type=Path, default=None, metavar="DIR",
                   help="generator run folder for POST /v1/generate (default: models/generator)")
    p.add_argument("--generate-workers", dest="generate_workers", type=bounded_number(int, 1, 64, "--generate-workers"),
                   default=None, metavar="N", help="generation jobs run at once (default 1)")
    p.add_argument("--generate-queue", dest="generate_queue_limit",
                   type=bounded_number(int, 0, 10000, "--generate-queue"), default=None, metavar="N",
                   help="generation jobs that may wait for a worker; more are refused with 429 (default 8)")
    p.add_argument("--generator-backend", dest="generator_backend", choices=("auto", "gcrm", "diffusion"),
                   default=None, help="what makes the dances: gcrm (candidates from diffusion and the catalog, chosen "
                                      "by GS + coherence, stitched), diffusion (plain long-term sampling), auto "
                                      "(default, $DANCESEARCH_GENERATOR_BACKEND: gcrm when a GS network is at --gs-run)")
    p.add_argument("--gs-run", dest="gs_run", type=Path, default=None, metavar="DIR",
                   help="GS network run folder for gcrm (default: models/gs)")
    p.add_argument("--no-generate-warm-up", dest="generate_warm_up", action="store_false", default=None,
                   help="load the generation models on the first job instead of in the background at start")
    p.add_argument("--allow-no-key", action="store_true",
                   help="allow --host beyond 127.0.0.1 without DANCESEARCH_API_KEY (write routes are then open "
                        "to anyone who can reach the port; a warning is printed)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app, load_engine
    from .serving import uvicorn_config
    from .settings import ApiSettings

    given = {name: getattr(args, name) for name in ("torch_threads", "max_batch", "batch_window_ms", "batch_workers",
                                                    "embedding_cache_size", "text_encoder", "query_expansion",
                                                    "keep_alive_s",
                                                    "reload_check_s", "generator_run", "generate_workers",
                                                    "generate_queue_limit", "generator_backend", "gs_run",
                                                    "generate_warm_up")
             if getattr(args, name, None) is not None}  # flags left out: $DANCESEARCH_* or the defaults
    if "generate_warm_up" not in given and "DANCESEARCH_GENERATE_WARM_UP" not in os.environ:
        given["generate_warm_up"] = True      # a server warms its generator up; tests building apps do not
    settings = ApiSettings(home=args.home, db=args.db, run=args.run, index_name=args.index_name,
                           milvus_uri=args.milvus_uri, host=args.host, port=args.port, log_level=args.log_level,
                           api_key=os.environ.get("DANCESEARCH_API_KEY") or None, **given)
    from .auth import is_loopback

    if settings.api_key is None and not is_loopback(settings.host):
        if not args.allow_no_key:
            raise UsageError(f"refusing to serve on {settings.host} without an API key: anyone who can reach it could "
                             "start generation jobs and cancel them. Set DANCESEARCH_API_KEY (clients send it as "
                             "X-API-Key), bind --host 127.0.0.1, or pass --allow-no-key to accept the risk")
        info(f"WARNING: serving on {settings.host} WITHOUT an API key (--allow-no-key): POST /v1/generate and "
             "DELETE /v1/jobs/{id} are open to anyone who can reach this port")
    if settings.port and not port_available(settings.host, settings.port):   # before loading or printing anything
        raise DanceSearchError(f"port {settings.port} is in use on {settings.host}: stop the server using it "
                               "or pass --port to choose another")
    engine = load_engine(settings)  # errors here exit 1 with a message, before binding the port
    app = create_app(settings, engine=engine)
    info(f"DanceSearch API on http://{settings.host}:{settings.port} (docs: /docs; model {engine.model_id}, "
         f"{len(engine.index)} clips)")
    handler = logging.StreamHandler()  # reloads and broken media: one line each, beside uvicorn's own lines
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    ours = logging.getLogger("dancesearch")
    ours.addHandler(handler)
    ours.setLevel(settings.log_level.upper())
    ours.propagate = False
    uvicorn.Server(uvicorn_config(app, settings)).run()
    return EXIT_OK
