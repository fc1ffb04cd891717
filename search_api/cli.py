"""``dancesearch serve``: the JSON search API (OpenAPI docs at /docs).

The model and the index are loaded before the port is opened, so a missing index or a model
mismatch is reported as ``error: ...`` (exit 1) instead of a server that answers 5xx.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from encoders.cliutil import EXIT_OK, EXIT_USAGE, add_common_options, info, port_number


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the JSON search API", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=port_number, default=8000, help="TCP port (default 8000)")
    p.add_argument("--run", type=Path, default=None, metavar="DIR", help="model run folder (default: models/demo)")
    p.add_argument("--db", metavar="URL", default=None, help="catalog SQLAlchemy URL (default: HOME/catalog.sqlite)")
    p.add_argument("--index", dest="index_name", default="default", help="index name under HOME/indexes/")
    p.add_argument("--milvus-uri", default=None, help="override the Milvus URI of a milvus index")
    p.add_argument("--workers-threads", dest="torch_threads", type=int, default=1,
                   help="torch threads per text encoding (default 1: best throughput under load)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app, load_engine
    from .settings import ApiSettings

    if args.torch_threads < 1:
        info("error: --workers-threads must be at least 1")
        return EXIT_USAGE
    settings = ApiSettings(home=args.home, db=args.db, run=args.run, index_name=args.index_name,
                           milvus_uri=args.milvus_uri, host=args.host, port=args.port,
                           torch_threads=args.torch_threads, log_level=args.log_level,
                           api_key=os.environ.get("DANCESEARCH_API_KEY") or None)
    engine = load_engine(settings)  # errors here exit 1 with a message, before binding the port
    app = create_app(settings, engine=engine)
    info(f"DanceSearch API on http://{settings.host}:{settings.port} (docs: /docs; model {engine.model_id}, "
         f"{len(engine.index)} clips)")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    return EXIT_OK
