"""The uvicorn configuration of ``dancesearch serve`` (and of the tests' real servers).

Keep-alive: uvicorn closes an idle connection after ``timeout_keep_alive`` seconds, 5 by default,
which is also httpx's default pool expiry.  A client that reuses a pooled connection at the moment
the server closes it loses the request (``httpx.ReadError`` / ``RemoteProtocolError``): 5 of 11
bursts of 64 keep-alive clients lost 2-27 requests that way.  The server therefore keeps idle
connections open for ``ApiSettings.keep_alive_s`` (75 s by default), longer than the idle timeouts of
common clients and proxies, so the client side always closes first.
"""
from __future__ import annotations

from typing import Any

from .settings import ApiSettings


def uvicorn_config(app: Any, settings: ApiSettings, **overrides: Any) -> Any:
    """A ``uvicorn.Config`` for ``app`` with the settings' host, port, log level and keep-alive."""
    import uvicorn

    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": settings.log_level,
                               "access_log": False, "timeout_keep_alive": settings.keep_alive_s}
    options.update(overrides)
    return uvicorn.Config(app, **options)
