"""An HTTP request to a party URL, from the ``Origin`` check to the answer.

In order: the client's address through trusted proxies, the origin allow-list
(403), a CORS preflight answered before any hook, the party's ``before_request``
hooks (which may answer instead), then the room's ``on_request`` handlers.

The server's own scope loses its query string once the request has read it
(:func:`hide_query`): servers that log the query (Uvicorn) then never log a
``?token=``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..dispatch import run_hooks
from ..errors import BodyTooLargeError
from ..request import Request
from ..response import Response
from ..room import Lobby
from ..security.limits import header
from ..security.origins import cors_preflight_headers

if TYPE_CHECKING:
    from ..routing import Route
    from ..types import Receive, Scope, Send
    from .runtime import Runtime

__all__ = ["hide_query", "not_found", "send_response", "serve_http"]

_HTTP_RESPONSE = ("http.response.start", "http.response.body")
_WEBSOCKET_DENIAL = ("websocket.http.response.start", "websocket.http.response.body")


def hide_query(scope: Scope) -> None:
    """Empty the query string of the server's *scope*, after partydeco has read it.

    Servers log a request from the scope they passed the app: Uvicorn logs the path
    with its query (``"WebSocket /parties/main/lobby?token=secret"``), and the query
    is where browsers put tokens. Nothing reads the scope's query after the
    :class:`~partydeco.Request` is built from it.
    """
    if scope.get("query_string"):
        scope["query_string"] = b""


def not_found(party: str) -> Response:
    """The answer for a party the app does not have."""
    return Response(f"Party {party} not found", 404)


async def serve_http(
    runtime: Runtime, route: Route, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer an HTTP request to a party URL (see the module)."""
    config = runtime.config_for(route.party)
    guard = runtime.guard
    # records the client: behind a trusted proxy, remote_addr is the client's
    origin = guard.client_and_origin(scope)[1]
    request = Request.from_scope(scope, receive, config.max_body_size, runtime.principal_header)
    hide_query(scope)
    extra: list[tuple[str, str]] | None = None
    if origin is not None:
        if not guard.origin_allowed(scope, config, origin):
            await send_response(send, Response("Origin not allowed", 403))
            return
        if config.cors:
            if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
                # a preflight carries no credentials: answer it before any hook
                allow = cors_preflight_headers(
                    origin, header(scope, b"access-control-request-headers"), config.cors_max_age
                )
                await send_response(send, Response(status=204), extra=allow)
                return
            extra = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    watch = runtime.ops.watch_request(route, scope)  # None unless metrics, traces or JSON logs
    try:
        dispatch = runtime.dispatch.get(route.party)
        if dispatch is None:
            response = not_found(route.party)
        else:
            if watch is not None:
                watch.begin()
            try:
                lobby = Lobby(route.room, route.party, runtime.env)
                forwarded = await run_hooks(
                    dispatch.before_request, request, lobby, config.principal_header
                )
                if isinstance(forwarded, Response):
                    response = forwarded
                else:
                    if watch is not None:
                        watch.identified(forwarded.principal)
                    room = runtime.backplane.room(route.party, route.room)
                    response = await room.request(forwarded)
            except BodyTooLargeError as exc:
                response = Response(str(exc), 413)
        if watch is not None:
            watch.answered(response.status)
        await send_response(send, response, head=scope["method"] == "HEAD", extra=extra)
    finally:
        if watch is not None:
            watch.end()


async def send_response(
    send: Send,
    response: Response,
    *,
    head: bool = False,
    websocket: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Send *response* over ASGI, as an HTTP answer or a WebSocket denial.

    *extra* headers (CORS) replace any of the same name the response has.
    """
    start, body = _WEBSOCKET_DENIAL if websocket else _HTTP_RESPONSE
    headers = response.header_list()
    if extra:
        names = {name.lower().encode("latin-1") for name, _ in extra}
        headers = [pair for pair in headers if pair[0] not in names]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": start, "status": response.status, "headers": headers})
    await send({"type": body, "body": b"" if head else response.body})
