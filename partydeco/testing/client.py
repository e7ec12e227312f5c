"""The in-process test client: connect to rooms, send and receive, make HTTP requests.

Every wait is bounded by ``timeout`` (seconds, 5 by default), so a test that expects a message
that never comes fails with :class:`TimeoutError` instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import uuid
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from partydeco.client.url import QueryValue, RoomAddress, encode_query
from partydeco.errors import ConnectionClosedError, HandshakeRefusedError, PartydecoError
from partydeco.types import ASGIApp, Message, Receive, Send

__all__ = ["TestClient", "TestConnection", "TestResponse"]


_CLIENT_ADDR = ("127.0.0.1", 50000)


@dataclass
class TestResponse:
    """An HTTP response from the app."""

    __test__ = False  # not a pytest test class

    #: the HTTP status code
    status: int
    #: response headers in order, names lower-cased
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: the full response body
    body: bytes = b""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


def _headers(pairs: list[tuple[bytes, bytes]] | None) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in pairs or ()]


def _raw_headers(host: str, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    raw = [(b"host", host.encode())]
    for key, value in (headers or {}).items():
        raw.append((key.lower().encode("latin-1"), value.encode("latin-1")))
    return raw


class TestConnection:
    """One in-process WebSocket connection to the app, open after the handshake."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        id: str,
        to_app: asyncio.Queue[Message],
        from_app: asyncio.Queue[Message],
        task: asyncio.Task[None],
        timeout: float,
    ) -> None:
        #: the connection id sent as ``_pk`` (what the app sees as ``connection.id``)
        self.id = id
        #: the subprotocol the app accepted, if any
        self.subprotocol: str | None = None
        #: headers the app sent with its accept, names lower-cased
        self.accept_headers: list[tuple[str, str]] = []
        #: set once the app closed the connection: ``(code, reason)``
        self.close_code: int | None = None
        self.close_reason = ""
        self._to_app = to_app
        self._from_app = from_app
        self._task = task
        self._timeout = timeout
        self._client_closed = False

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) frame to the app."""
        if self._client_closed or self.close_code is not None:
            raise ConnectionClosedError(self.close_code or 1000, self.close_reason)
        key = "text" if isinstance(message, str) else "bytes"
        await self._to_app.put({"type": "websocket.receive", key: message})

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as a JSON text frame."""
        await self.send(jsonlib.dumps(value))

    async def receive(self) -> str | bytes:
        """The next frame the app sent: ``str`` for text, ``bytes`` for binary.

        Raises:
            ConnectionClosedError: the app closed the connection instead (see its
                ``code`` and ``reason``).
            TimeoutError: nothing came within the client's ``timeout``.
        """
        if self.close_code is not None:
            raise ConnectionClosedError(self.close_code, self.close_reason)
        message = await _next_message(self._from_app, self._task, self._timeout)
        if message["type"] == "websocket.send":
            if message.get("bytes") is not None:
                return bytes(message["bytes"])
            return str(message.get("text") or "")
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            self.close_reason = str(message.get("reason") or "")
            raise ConnectionClosedError(self.close_code, self.close_reason)
        raise AssertionError(f"unexpected ASGI message from the app: {message['type']}")

    async def receive_text(self) -> str:
        """The next frame, which must be text."""
        message = await self.receive()
        if not isinstance(message, str):
            raise AssertionError(f"expected a text frame, got binary {message[:50]!r}")
        return message

    async def receive_bytes(self) -> bytes:
        """The next frame, which must be binary."""
        message = await self.receive()
        if not isinstance(message, bytes):
            raise AssertionError(f"expected a binary frame, got text {message[:50]!r}")
        return message

    async def receive_json(self) -> Any:
        """The next text frame, parsed as JSON."""
        return jsonlib.loads(await self.receive_text())

    async def wait_closed(self) -> tuple[int, str]:
        """Read (and discard) frames until the app closes; return ``(code, reason)``."""
        while self.close_code is None:
            with contextlib.suppress(ConnectionClosedError):
                await self.receive()
        return self.close_code, self.close_reason

    async def close(self, code: int = 1000) -> None:
        """Close from the client side and wait until the app has finished with the connection.

        After this the app's close handler has run, so a test can assert on its effects.
        """
        if not self._client_closed:
            self._client_closed = True
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        async with asyncio.timeout(self._timeout):
            await asyncio.wait({self._task})
        if not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]


async def _call_app(
    app: ASGIApp, scope: MutableMapping[str, Any], receive: Receive, send: Send
) -> None:
    await app(scope, receive, send)


async def _next_message(
    queue: asyncio.Queue[Message], task: asyncio.Task[None], limit: float
) -> Message:
    """The next message the app sent; re-raise the app's exception if it crashed instead."""
    async with asyncio.timeout(limit):
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    if task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    raise AssertionError("the app finished without answering")


class TestClient:
    """Drive an ASGI app (a partydeco ``App`` or any ASGI callable) from async tests.

    Use it as ``async with TestClient(app) as client:`` so the app's lifespan (startup and
    shutdown hooks) runs around the test; without ``async with``, lifespan is not run.

    Args:
        app: a partydeco ``App`` (its ASGI callable is used) or an ASGI 3 application.
        host: the ``Host`` header sent with every request.
        timeout: seconds any single wait may take before :class:`TimeoutError`.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, *, host: str = "testserver", timeout: float = 5.0) -> None:
        self.app: ASGIApp = _asgi_callable(app)
        self.host = host
        self.timeout = timeout
        self._state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_in: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[Message] = asyncio.Queue()

    # ------------------------------------------------------------------ lifespan
    async def __aenter__(self) -> TestClient:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
        self._lifespan = asyncio.create_task(
            _call_app(self.app, scope, self._lifespan_in.get, self._lifespan_out.put)
        )
        await self._lifespan_in.put({"type": "lifespan.startup"})
        try:
            reply = await _next_message(self._lifespan_out, self._lifespan, self.timeout)
        except Exception:
            # An app without lifespan support raises on the scope type: nothing to run.
            self._lifespan = None
            return self
        if reply["type"] == "lifespan.startup.failed":
            raise PartydecoError(f"app startup failed: {reply.get('message', '')}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lifespan is None:
            return
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        reply = await _next_message(self._lifespan_out, self._lifespan, self.timeout)
        if reply["type"] == "lifespan.shutdown.failed":
            raise PartydecoError(f"app shutdown failed: {reply.get('message', '')}")
        async with asyncio.timeout(self.timeout):
            await self._lifespan

    # ------------------------------------------------------------------ HTTP
    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        json: Any = None,
    ) -> TestResponse:
        """Make an HTTP request to ``path`` (``/parties/<party>/<room>[/...]`` or any route)."""
        path, _, query_string = path.partition("?")
        if query:
            extra = encode_query(None, query)
            query_string = f"{query_string}&{extra}" if query_string else extra
        all_headers = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json)
            all_headers.setdefault("content-type", "application/json")
        data = body.encode() if isinstance(body, str) else body
        if data:
            all_headers.setdefault("content-length", str(len(data)))
        scope = self._scope("http", path, query_string, all_headers)
        scope["method"] = method.upper()
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Message] = asyncio.Queue()
        await to_app.put({"type": "http.request", "body": data, "more_body": False})
        task = asyncio.create_task(_call_app(self.app, scope, to_app.get, from_app.put))
        try:
            start = await _next_message(from_app, task, self.timeout)
            if start["type"] != "http.response.start":
                raise AssertionError(f"expected http.response.start, got {start['type']}")
            response = TestResponse(int(start["status"]), _headers(start.get("headers")))
            while True:
                chunk = await _next_message(from_app, task, self.timeout)
                response.body += bytes(chunk.get("body", b""))
                if not chunk.get("more_body"):
                    break
        finally:
            await to_app.put({"type": "http.disconnect"})
            async with asyncio.timeout(self.timeout):
                await asyncio.wait({task})
        return response

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        """``request("GET", path, ...)``."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        """``request("POST", path, ...)``."""
        return await self.request("POST", path, **kwargs)

    async def fetch(
        self, room: str, *, party: str = "main", path: str | None = None, **kwargs: Any
    ) -> TestResponse:
        """An HTTP request to a room (its ``on_request``), like ``PartySocket.fetch``.

        ``method`` defaults to ``GET``; the other keywords are those of :meth:`request`.
        """
        method = kwargs.pop("method", "GET")
        return await self.request(method, _room_path(party, room, path), **kwargs)

    # ------------------------------------------------------------------ WebSocket
    @contextlib.asynccontextmanager
    async def connect(
        self,
        room: str,
        *,
        party: str = "main",
        path: str | None = None,
        id: str | None = None,
        query: Mapping[str, QueryValue] | None = None,
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] = (),
    ) -> AsyncIterator[TestConnection]:
        """Open a WebSocket to a room the way partysocket does (``_pk`` first, then ``query``).

        Raises :class:`HandshakeRefusedError` when the app refuses. On leaving the block the client
        disconnects (code 1000) and waits for the app's close handling to finish.
        """
        pk = id if id is not None else str(uuid.uuid4())
        query_string = encode_query(pk, query)
        async with self.websocket(
            _room_path(party, room, path),
            query_string=query_string,
            headers=headers,
            subprotocols=subprotocols,
            id=pk,
        ) as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def websocket(
        self,
        path: str,
        *,
        query_string: str = "",
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] = (),
        id: str = "",
    ) -> AsyncIterator[TestConnection]:
        """Open a WebSocket to any ``path`` with a raw query string (see :meth:`connect`)."""
        path, _, inline = path.partition("?")
        query_string = "&".join(q for q in (inline, query_string) if q)
        scope = self._scope("websocket", path, query_string, dict(headers or {}))
        scope["subprotocols"] = list(subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Message] = asyncio.Queue()
        await to_app.put({"type": "websocket.connect"})
        task = asyncio.create_task(_call_app(self.app, scope, to_app.get, from_app.put))
        connection = TestConnection(id, to_app, from_app, task, self.timeout)
        try:
            await self._handshake(connection, from_app, task)
            yield connection
        finally:
            if not task.done():
                await connection.close()

    async def _handshake(
        self,
        connection: TestConnection,
        from_app: asyncio.Queue[Message],
        task: asyncio.Task[None],
    ) -> None:
        first = await _next_message(from_app, task, self.timeout)
        kind = first["type"]
        if kind == "websocket.accept":
            connection.subprotocol = first.get("subprotocol")
            connection.accept_headers = _headers(first.get("headers"))
            return
        if kind == "websocket.close":
            raise HandshakeRefusedError(403, [], b"")
        if kind == "websocket.http.response.start":
            status = int(first["status"])
            headers = _headers(first.get("headers"))
            body = b""
            while True:
                chunk = await _next_message(from_app, task, self.timeout)
                body += bytes(chunk.get("body", b""))
                if not chunk.get("more_body"):
                    break
            raise HandshakeRefusedError(status, headers, body)
        raise AssertionError(f"unexpected ASGI message during the handshake: {kind}")

    # ------------------------------------------------------------------ helpers
    def _scope(
        self, kind: str, path: str, query_string: str, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        scheme = "ws" if kind == "websocket" else "http"
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": scheme,
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query_string.encode(),
            "root_path": "",
            "headers": _raw_headers(self.host, headers),
            "client": _CLIENT_ADDR,
            "server": (self.host.partition(":")[0], 80),
            "state": dict(self._state),
        }


def _room_path(party: str, room: str, path: str | None) -> str:
    return RoomAddress("testserver", room, party, path=path, protocol="ws").route


def _asgi_callable(app: Any) -> ASGIApp:
    """The ASGI callable of a partydeco ``App`` (or ``app`` itself when it is one)."""
    for attribute in ("asgi", "asgi_app"):
        candidate = getattr(app, attribute, None)
        if callable(candidate):
            return candidate  # type: ignore[no-any-return]
    if callable(app):
        return app  # type: ignore[no-any-return]
    raise TypeError(f"{app!r} is neither a partydeco App nor an ASGI application")
