"""One client's WebSocket inside a room."""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from .codec import encode_frame
from .errors import PartydecoError, StateTooLargeError

if TYPE_CHECKING:
    from .backplane.base import Sink
    from .request import Request
    from .room import Room

__all__ = [
    "MAX_TAGS", "MAX_TAG_LENGTH", "QUEUED", "ConnectContext", "Connection", "Queued", "check_tags",
]  # fmt: skip

#: Most tags of one connection, its id included (as on PartyKit).
MAX_TAGS = 10
#: Longest tag, in characters.
MAX_TAG_LENGTH = 256

_state_encoder = msgspec.json.Encoder()

# RFC 6455 codes an endpoint may put in a close frame (1004-1006 and 1015 are reserved).
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))


class Queued:
    """What ``send``, ``broadcast`` and ``close`` return: the frame is already queued.

    They need no ``await``. Code written for ``await websocket.send(...)`` (Quart,
    Starlette, websockets) works too: awaiting the result returns at once, without
    waiting for the client to receive anything.
    """

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator that ends at once: ``await`` returns without suspending

    def __repr__(self) -> str:
        return "<Queued>"


#: The one :class:`Queued` instance.
QUEUED = Queued()


class ConnectContext:
    """What ``on_connect`` learns about how the connection was opened.

    Attributes:
        request: the upgrade request as the ``before_connect`` hooks forwarded it.
    """

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request

    def __repr__(self) -> str:
        return f"<ConnectContext {self.request!r}>"


class Connection:
    """A client's WebSocket in a room.

    ``send`` and ``close`` return at once: a frame is written to an idle socket
    straight away, or queued behind a slow one, so a slow client never holds up
    a handler.

    Attributes:
        id: the ``_pk`` query parameter the client sent, else a fresh UUID4.
        uri: the URL the client connected to, as the hooks forwarded it.
        room: the :class:`~partydeco.Room` the connection belongs to.
        sink: where its frames go: its socket's outbox, or a relay to the process
            that holds the socket (see :class:`partydeco.backplane.Sink`).
        tags: the connection's tags, its id first; the room sets them from the
            ``connection_tags`` handlers as the connection joins.
        principal: who the hooks authenticated it as (``request.principal``), or
            ``None``. Only server code sets it; it decides whether a new socket with
            the same id may replace this one.
        closed: whether the room ran ``on_close`` for it.
    """

    __slots__ = (
        "_state", "_state_limit", "closed", "id", "principal", "room", "sink", "tags", "uri",
    )

    def __init__(
        self, id: str, uri: str, room: Room, sink: Sink, state_limit: int = 2048
    ) -> None:
        self.id = id
        self.uri = uri
        self.room = room
        self.sink = sink
        self._state: Any = None
        self._state_limit = state_limit
        self.tags: tuple[str, ...] = (id,)
        self.principal: str | None = None
        self.closed = False

    @property
    def open(self) -> bool:
        """Whether the connection is open: neither closed nor closing."""
        return self.sink.accepted and not self.sink.closing

    @property
    def state(self) -> Any:
        """Per-connection state set with :meth:`set_state` (``None`` at first)."""
        return self._state

    def set_state(self, value: Any | Callable[[Any], Any]) -> Any:
        """Replace the connection's state and return it.

        *value* may be a function of the previous state. The state lives as long
        as the connection; use room storage for what must last.

        Raises:
            StateTooLargeError: the state is over the cap (2 KB by default) once
                encoded as JSON; the old state is kept.
            TypeError: msgspec cannot encode the value.
        """
        new = value(self._state) if callable(value) else value
        try:
            size = len(_state_encoder.encode(new))
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"connection state must be encodable as JSON: {exc}") from None
        if size > self._state_limit:
            raise StateTooLargeError(size, self._state_limit)
        self._state = new
        return new

    def send(self, message: Any) -> Queued:
        """Queue a message for this client; no ``await`` needed.

        ``str`` goes as a text frame, ``bytes`` as a binary frame, anything else
        is encoded as JSON text with msgspec. Sending on a closed connection
        does nothing. While a storage write of the room is in flight, the frame
        waits until the write is durable (see :mod:`partydeco.gate`).

        Returns:
            :data:`QUEUED`: ``await connection.send(...)`` works too and returns at
            once (see :class:`Queued`).
        """
        frame = encode_frame(message)
        gate = self.room.gate
        if gate.writes:
            gate.hold(partial(self.sink.put, frame))
        else:
            self.sink.put(frame)
        return QUEUED

    def close(self, code: int = 1000, reason: str = "") -> Queued:
        """Close the connection after what was already queued is sent.

        Like :meth:`send` it returns at once; awaiting the result works too.

        Args:
            code: 1000, a protocol code a server may send (1001-1003, 1007-1014:
                see :mod:`partydeco.closecodes`), or an application code from 3000
                to 4999.
            reason: a short text, at most 123 bytes in UTF-8.

        Raises:
            ValueError: the code or reason is not allowed on the wire.
        """
        if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
            raise ValueError(
                f"close code must be 1000-1003, 1007-1014 or in 3000-4999, not {code}"
            )
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("close reason must be at most 123 bytes in UTF-8")
        gate = self.room.gate
        if gate.writes:  # after the frames the gate holds
            gate.hold(partial(self.sink.close, code, reason))
        else:
            self.sink.close(code, reason)
        return QUEUED

    def __repr__(self) -> str:
        return f"<Connection {self.id!r} room={self.room.id!r}>"


def check_tags(tags: list[str]) -> tuple[str, ...]:
    """A connection's tags (its id first) without duplicates.

    Raises:
        PartydecoError: more than :data:`MAX_TAGS`, or a tag that is not a non-empty
            string of at most :data:`MAX_TAG_LENGTH` characters.
    """
    if len(tags) > MAX_TAGS:
        raise PartydecoError(f"a connection may have at most {MAX_TAGS - 1} tags")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            raise PartydecoError(
                f"tags must be non-empty strings of at most {MAX_TAG_LENGTH} characters"
            )
    return tuple(dict.fromkeys(tags))
