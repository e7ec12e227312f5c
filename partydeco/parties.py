"""Room-to-room calls inside one app: ``room.parties["user"].get("alice")``.

A call goes straight to the target room in this process, with no network hop and
no ``before_request``/``before_connect`` hook (PartyKit's hooks run at the edge, and
its room-to-room stubs skip them too): ``fetch`` reaches the room's ``on_request``,
``socket`` opens a connection that the room sees like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from werkzeug.datastructures import Headers

from .errors import ConnectionClosedError, SocketClosed
from .outbox import Outbox
from .request import Request
from .types import HeadersLike, Message

if TYPE_CHECKING:
    from .backplane.base import Backplane, RoomHandle
    from .config import Config
    from .connection import Connection
    from .dispatch import Dispatch
    from .response import Response

__all__ = ["Parties", "PartyStub", "RoomSocket", "RoomStub", "SocketClosed"]


_HOST = "localhost"


class Parties(Mapping[str, "PartyStub"]):
    """The parties of an app, by name: ``room.parties["user"]``.

    Args:
        backplane: where the rooms live.
        dispatch: the handler tables, by party (their names are the parties).
        config: the app's configuration (body size and outbox bounds).
    """

    __slots__ = ("_backplane", "_config", "_dispatch")

    def __init__(
        self, backplane: Backplane, dispatch: Mapping[str, Dispatch], config: Config
    ) -> None:
        self._backplane = backplane
        self._dispatch = dispatch
        self._config = config

    def __getitem__(self, name: str) -> PartyStub:
        if name not in self._dispatch:
            known = ", ".join(sorted(self._dispatch))
            raise KeyError(f"no party named {name!r} (this app has: {known})")
        return PartyStub(self._backplane, self._config, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dispatch)

    def __len__(self) -> int:
        return len(self._dispatch)

    def __repr__(self) -> str:
        return f"<Parties {sorted(self._dispatch)}>"


class PartyStub:
    """One party of the app; :meth:`get` addresses one of its rooms."""

    __slots__ = ("_backplane", "_config", "name")

    def __init__(self, backplane: Backplane, config: Config, name: str) -> None:
        self._backplane = backplane
        self._config = config
        self.name = name

    def get(self, room_id: str) -> RoomStub:
        """The room *room_id* of this party (it is created on first use, as by a client)."""
        if not isinstance(room_id, str) or not room_id or "/" in room_id:
            raise ValueError(f"room id must be a non-empty string without '/', not {room_id!r}")
        return RoomStub(self._backplane, self._config, self.name, room_id)

    def __repr__(self) -> str:
        return f"<PartyStub {self.name!r}>"


class RoomStub:
    """A handle on another room: ``fetch`` its ``on_request`` or open a ``socket``."""

    __slots__ = ("_backplane", "_config", "party", "room_id")

    def __init__(self, backplane: Backplane, config: Config, party: str, room_id: str) -> None:
        self._backplane = backplane
        self._config = config
        self.party = party
        self.room_id = room_id

    def __repr__(self) -> str:
        return f"<RoomStub {self.party}/{self.room_id}>"

    def _request(
        self,
        path: str,
        method: str,
        headers: HeadersLike | None,
        body: bytes | None,
        websocket: bool = False,
    ) -> Request:
        if path and not path.startswith(("/", "?")):
            raise ValueError(f"path must start with '/' (or be empty), not {path!r}")
        rest, _, query = path.partition("?")
        raw = f"/parties/{self.party}/{self.room_id}{rest}"
        hdrs = Headers(headers) if headers is not None else Headers()
        hdrs.setdefault("Host", _HOST)
        return Request(
            method.upper(),
            unquote(raw),
            raw_path=quote(raw, safe="/%:@!$&'()*+,;=-._~"),
            query_string=query.encode("utf-8"),
            headers=hdrs,
            scheme="ws" if websocket else "http",
            is_websocket=websocket,
            body=b"" if body is None else body,
            max_body_size=self._config.max_body_size,
        )

    def _room(self) -> RoomHandle:
        return self._backplane.room(self.party, self.room_id)

    async def fetch(
        self,
        path: str = "",
        *,
        method: str = "GET",
        headers: HeadersLike | None = None,
        body: bytes | str | None = None,
    ) -> Response:
        """Send a request to the room's ``on_request`` and return its response.

        Example::

            r = await room.parties["user"].get("alice").fetch(
                "/inbox", method="POST", body=b"hello"
            )
            assert r.status == 200

        Args:
            path: appended to the room URL (``/parties/<party>/<room>``); starts
                with ``/`` and may carry a ``?query``.
            method: the HTTP method.
            headers: request headers.
            body: the request body (``str`` is sent as UTF-8).
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        return await self._room().request(self._request(path, method, headers, data))

    async def socket(self, path: str = "", *, headers: HeadersLike | None = None) -> RoomSocket:
        """Open a connection to the room, as a WebSocket client would.

        The room runs ``connection_tags`` and ``on_connect`` for it; frames the room
        sends arrive through :meth:`RoomSocket.recv`. Close it when done.

        Example::

            sock = await room.parties["main"].get("lobby").socket("?_pk=bot")
            await sock.send("hello")
            reply = await sock.recv()
            await sock.close()
        """
        request = self._request(path, "GET", headers, None, websocket=True)
        config = self._config
        sock = RoomSocket(
            self._room(), config.max_pending_messages, config.max_pending_bytes,
            config.close_timeout,
        )
        await sock._open(request)
        return sock


class RoomSocket:
    """An in-process connection to a room (see :meth:`RoomStub.socket`).

    Attributes:
        id: the connection id the room sees.
    """

    def __init__(
        self, room: RoomHandle, max_messages: int, max_bytes: int, close_timeout: float
    ) -> None:
        self._room = room
        self._incoming: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox = Outbox(
            self._deliver, max_messages=max_messages, max_bytes=max_bytes,
            close_timeout=close_timeout,
        )
        self._conn: Connection | None = None
        self._closed: ConnectionClosedError | None = None
        self.id = ""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RoomSocket {self._room.party}/{self._room.id} {self.id!r} {state}>"

    async def _deliver(self, message: Message) -> None:
        self._incoming.put_nowait(message)

    async def _open(self, request: Request) -> None:
        self._conn = await self._room.connect(request, self._outbox)
        self.id = self._conn.id

    @property
    def closed(self) -> bool:
        """Whether the socket is closed (by either side)."""
        return self._closed is not None

    async def send(self, message: str | bytes) -> None:
        """Deliver one frame to the room's ``on_message`` handlers (awaits them)."""
        if self._closed is not None:
            raise self._closed
        assert self._conn is not None
        await self._room.message(self._conn, message)

    async def recv(self) -> str | bytes:
        """The next frame the room sent.

        Raises:
            ConnectionClosedError: the socket closed.
        """
        while self._closed is None:
            message = await self._incoming.get()
            kind = message["type"]
            if kind == "websocket.send":
                text = message.get("text")
                return text if text is not None else message.get("bytes") or b""
            if kind == "websocket.close":
                await self._finish(message.get("code", 1000), message.get("reason") or "")
        raise self._closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; the room runs ``on_close`` before this returns."""
        if self._closed is None:
            await self._finish(code, reason)

    async def _finish(self, code: int, reason: str) -> None:
        self._closed = ConnectionClosedError(code, reason)
        self._outbox.finish()
        if self._conn is not None:
            await self._room.disconnect(self._conn, code, reason)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    async def __aenter__(self) -> RoomSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
