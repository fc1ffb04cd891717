"""Request-body limits, enforced before anything reads the body.

Without a limit a 200 MB ``POST /v1/search`` was read into memory and parsed as JSON before the
schema rejected it (RSS 708 MB -> 1.25 GB).  :class:`BodyLimitMiddleware` is a pure ASGI middleware in
front of the app: a declared ``Content-Length`` over the route's limit is answered 413 at once, without
reading a byte; a body without one (chunked transfer) is counted while the app reads it, and the
first chunk past the limit ends the request with the same 413 (the app is told the client went away,
and whatever it would still send is dropped).  The error names the limit and the setting that
raises it, in the API's usual ``{"error": {code, field, message}}`` shape.

Before answering, a body of at most :data:`DRAIN_BYTES` is read and discarded. Why: a server that answers
and closes while the client is still sending makes the client's TCP stack receive a reset, and the client
sees "connection reset" instead of the 413 (measured: intermittent ``ReadError`` for a body one byte over
64 KiB). Larger bodies are refused at once, as their whole point is not to be read; such a client may see
the reset.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Mapping

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DRAIN_BYTES = 1 << 20


def too_large_body(limit: int, route: str, setting: str) -> bytes:
    return json.dumps({"error": {
        "code": "body_too_large", "field": "body",
        "message": f"the request body is larger than {limit} bytes, the limit of {route} "
                   f"(raise it with {setting} if you really need more)"}}).encode()


class BodyLimitMiddleware:
    """413 for request bodies over the limit of their path (``limits``: exact path -> (bytes, setting))."""

    def __init__(self, app: Any, limits: Mapping[str, tuple[int, str]], default: tuple[int, str]) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit, setting = self.limits.get(path, self.default)
        route = f"{scope.get('method', 'POST')} {path}"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= DRAIN_BYTES:
                await _drain(receive, 0)
            await _reject(send, limit, route, setting)
            return

        seen = 0
        state = {"rejected": False, "started": False}

        async def counted_receive() -> Message:
            nonlocal seen
            if state["rejected"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    state["rejected"] = True
                    if message.get("more_body", False):
                        await _drain(receive, seen)
                    if not state["started"]:
                        await _reject(send, limit, route, setting)
                        state["started"] = True
                    return {"type": "http.disconnect"}  # the app stops reading: "the client went away"
            return message

        async def guarded_send(message: Message) -> None:
            if state["rejected"]:
                return  # the 413 is already out; the app's own answer to the disconnect is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


async def _drain(receive: Receive, already: int) -> None:
    """Read and drop the rest of a request body, up to DRAIN_BYTES in all (see the module docstring)."""
    total = already
    while total <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, limit: int, route: str, setting: str) -> None:
    body = too_large_body(limit, route, setting)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
