"""Ready-made ``before_connect`` / ``before_request`` hooks: verify a token, forward
chosen claims as request headers, or answer 401 with a ``WWW-Authenticate`` challenge.

Example::

    verifier = auth.JWTVerifier.from_issuer("https://clerk.example.com")
    party.before_connect(auth.before_connect_hook(verifier))   # ?token=...
    party.before_request(auth.before_request_hook(verifier))   # Authorization: Bearer ...

``on_connect`` then reads the user from ``ctx.request.headers["X-User-ID"]``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from partydeco.observability.verification import observer
from partydeco.observability.verification import verify as observed
from partydeco.request import Request
from partydeco.response import Response
from partydeco.room import Lobby
from partydeco.types import Refresher

from .errors import InvalidTokenError
from .verifier import TokenVerifier

__all__ = [
    "DEFAULT_FORWARD",
    "AuthHook",
    "bearer_token",
    "before_connect_hook",
    "before_request_hook",
    "challenge",
]

logger = logging.getLogger("partydeco.auth")

#: Forward the ``sub`` claim as ``X-User-ID``.
DEFAULT_FORWARD: Mapping[str, str] = {"X-User-ID": "sub"}

AuthHook = Callable[[Request, Lobby], Awaitable[Request | Response]]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is exactly one."""
    values = request.header_values("Authorization")
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def challenge(error: InvalidTokenError | None = None, *, realm: str = "partydeco") -> Response:
    """The response refusing a request: 401 with ``WWW-Authenticate: Bearer``.

    Without ``error`` (no token was sent) the challenge carries no error code
    (RFC 6750 section 3.1); with one it says ``error="invalid_token"`` and the
    error's reason. An error whose status is 503 (keys or introspection
    unavailable) answers 503 instead.
    """
    if error is not None and error.status != 401:
        return Response(f"Service Unavailable: {error.reason}", status=error.status)
    parts = [f'Bearer realm="{_quote(realm)}"']
    body = "Unauthorized"
    if error is not None:
        parts.append('error="invalid_token"')
        parts.append(f'error_description="{_quote(error.reason)}"')
        body = f"Unauthorized: {error.reason}"
    return Response(body, status=401, headers={"WWW-Authenticate": ", ".join(parts)})


def _quote(text: str) -> str:
    return _UNSAFE.sub("", text).replace("\\", "").replace('"', "'")


def _header_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    # printable ASCII holds no control character: the usual claim skips the regex
    if not (text.isascii() and text.isprintable()) and _UNSAFE.search(text):
        raise InvalidTokenError("claim not usable as a header value")
    return text


def _make_hook(
    verifier: TokenVerifier,
    read_token: Callable[[Request], str | None],
    forward: Mapping[str, str],
    realm: str,
) -> AuthHook:
    names = tuple(forward)
    if len({name.lower() for name in names}) < len(names):
        raise ValueError(f"forward names one header twice (names ignore case): {names}")
    pairs = tuple(forward.items())
    # the header carrying ``sub`` already holds what the principal is set to
    subject_header = next((name for name, claim in pairs if claim == "sub"), None)

    async def hook(request: Request, lobby: Lobby) -> Request | Response:
        # a client must never choose these headers itself, whatever happens next
        for name in names:
            request.remove_header(name)
        try:
            token = read_token(request)
        except InvalidTokenError as error:
            return challenge(error, realm=realm)
        if token is None:
            return challenge(realm=realm)
        try:
            if observer.get() is None:  # ``observed()`` without its coroutine
                claims = await verifier.verify(token)
            else:
                claims = await observed(verifier, token)
            values = {}
            for name, claim in pairs:
                value = claims.get(claim)
                if value is not None:
                    values[name] = _header_value(value)
        except InvalidTokenError as error:
            return challenge(error, realm=realm)
        except Exception as error:  # a verifier bug must not let the request through
            logger.error("token verifier failed unexpectedly: %s", type(error).__name__)
            return Response("Internal Server Error", status=500)
        for name, text in values.items():
            request.add_header(name, text)  # removed above: nothing to replace
        request.expires_at = _expiry(claims)
        subject = claims.get("sub")
        request.token_refresher = _refresher(verifier, subject)
        if subject is not None:
            request.principal = (
                values[subject_header] if subject_header is not None else _header_value(subject)
            )
        return request

    return hook


def _expiry(claims: Mapping[str, Any]) -> float | None:
    exp = claims.get("exp")
    if type(exp) is int:  # what JSON decodes a NumericDate to, most often
        return float(exp)
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


def _refresher(verifier: TokenVerifier, subject: Any) -> Refresher:
    """Check a token sent over the open socket: valid for *verifier*, same ``sub``."""

    async def refresh(token: str) -> float | None:
        if not isinstance(token, str) or not token:
            raise InvalidTokenError("no token")
        claims = await verifier.verify(token)
        if claims.get("sub") != subject:
            raise InvalidTokenError("token is for a different subject")
        return _expiry(claims)

    return refresh


def _query_reader(param: str | None, header: bool) -> Callable[[Request], str | None]:
    def read(request: Request) -> str | None:
        if param is not None:
            values = request.args.getlist(param)
            if len(values) > 1:
                raise InvalidTokenError(f"more than one {param!r} parameter")
            if values and values[0]:
                return values[0]
        return bearer_token(request) if header else None

    return read


def before_connect_hook(
    verifier: TokenVerifier,
    *,
    query_param: str | None = "token",
    bearer_header: bool = True,
    forward: Mapping[str, str] = DEFAULT_FORWARD,
    realm: str = "partydeco",
) -> AuthHook:
    """A ``before_connect`` hook: verify ``?token=`` (browsers cannot set WebSocket headers).

    Without the query parameter, an ``Authorization: Bearer`` header is used
    (server-side clients can send one). On success each ``forward`` header is set
    from its claim and the request is returned; otherwise the handshake is
    refused with 401 (503 when keys are unavailable). Headers named in
    ``forward`` that the client sent are always removed.

    The hook also sets ``request.principal`` to the ``sub`` claim (who the socket
    belongs to), ``request.expires_at`` from the ``exp`` claim, so the
    socket is closed with 3005 when the token expires, and
    ``request.token_refresher``, which accepts a new token over the open socket
    (with ``token_refresh=True``) if it verifies and has the same ``sub``.

    Example::

        party.before_connect(auth.before_connect_hook(verifier))

    Args:
        verifier: anything with ``async verify(token) -> claims``.
        query_param: the query parameter holding the token (None to ignore the query).
        bearer_header: also accept ``Authorization: Bearer``.
        forward: header name -> claim name; values that are not strings are sent as JSON.
        realm: the ``realm`` of the ``WWW-Authenticate`` challenge.

    Raises:
        ValueError: two ``forward`` names are one header (they differ only in case).
    """
    return _make_hook(verifier, _query_reader(query_param, bearer_header), forward, realm)


def before_request_hook(
    verifier: TokenVerifier,
    *,
    query_param: str | None = None,
    forward: Mapping[str, str] = DEFAULT_FORWARD,
    realm: str = "partydeco",
) -> AuthHook:
    """A ``before_request`` hook: verify ``Authorization: Bearer <token>``.

    The query string is not read unless ``query_param`` is given (HTTP clients
    can send headers, and URLs end up in logs). Success and failure work as in
    :func:`before_connect_hook`.

    Example::

        party.before_request(auth.before_request_hook(verifier))
    """
    return _make_hook(verifier, _query_reader(query_param, True), forward, realm)
