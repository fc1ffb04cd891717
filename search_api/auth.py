"""The API key of routes that change server state (generate, job cancel, admin reload).

When the server has a key (``DANCESEARCH_API_KEY``), a write request must send it, as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY``; it is compared in constant time (:func:`hmac.compare_digest`, which is what
:func:`secrets.compare_digest` is). A missing or wrong key is 401 ``unauthorized`` (field ``x-api-key``,
header ``WWW-Authenticate: Bearer``). Without a configured key the generation routes are open, which is
why ``dancesearch serve`` refuses to bind beyond the loopback interface without one (see
:func:`is_loopback` and ``search_api.cli``). ``POST /v1/admin/reload`` stays off without a key (403).
"""
from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated, Any, Callable

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from encoders.errors import DanceSearchError

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="the server's DANCESEARCH_API_KEY (needed when one is configured)")
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer",
                    description="the server's DANCESEARCH_API_KEY as a bearer token (same as X-API-Key)")

UNAUTHORIZED_MESSAGE = ("missing or wrong API key: send the server's DANCESEARCH_API_KEY in the X-API-Key header "
                        "(or as Authorization: Bearer KEY)")


class AuthError(DanceSearchError):
    """A write request without the right API key (API: 401)."""


def key_matches(given: str | None, expected: SecretStr | str) -> bool:
    secret = expected.get_secret_value() if isinstance(expected, SecretStr) else str(expected)
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


def presented_key(x_api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    if x_api_key:
        return x_api_key
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return bearer.credentials
    return None


def require_api_key(get_key: Callable[[], SecretStr | None]) -> Any:
    """A FastAPI dependency: passes when no key is configured or the request presents it; else AuthError."""

    def check(x_api_key: Annotated[str | None, Depends(API_KEY_HEADER)] = None,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None) -> None:
        expected = get_key()
        if expected is None:
            return
        if not key_matches(presented_key(x_api_key, bearer), expected):
            raise AuthError(UNAUTHORIZED_MESSAGE)

    return check


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
