"""What processes of a cluster tell each other, as msgpack over Redis pub/sub.

Every process subscribes to its own channel. A PUBLISH carries a list of events
for that process, in the order they were posted, so the frames of one sender
stay in order. "Edge" is the process holding a client's socket, "owner" the one
running the room's handlers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from werkzeug.datastructures import Headers

from ...request import Request
from ...response import Response

__all__ = [
    "Accept",
    "AlarmCall",
    "Close",
    "Deny",
    "Event",
    "Fanout",
    "HttpCall",
    "Inspect",
    "Message",
    "Moved",
    "Open",
    "Reply",
    "Shut",
    "WireRequest",
    "decode_batch",
    "encode_batch",
]


class WireRequest(msgspec.Struct, array_like=True):
    """A :class:`~partydeco.Request` as the ``before_*`` hooks forwarded it."""

    method: str
    path: str
    raw_path: str
    query_string: bytes
    headers: list[tuple[str, str]]
    scheme: str
    remote_addr: str | None
    is_websocket: bool
    principal: str | None = None

    @classmethod
    def of(cls, request: Request) -> WireRequest:
        """Capture *request* (its body travels separately)."""
        return cls(
            request.method,
            request.path,
            request.raw_path,
            request.query_string,
            list(request.headers.items()),
            request.scheme,
            request.remote_addr,
            request.is_websocket,
            request.principal,
        )

    def build(self, body: bytes | None = None, max_body_size: int = 1 << 20) -> Request:
        """The request again, on the receiving side."""
        request = Request(
            self.method,
            self.path,
            raw_path=self.raw_path,
            query_string=self.query_string,
            headers=Headers(self.headers),
            scheme=self.scheme,
            remote_addr=self.remote_addr,
            is_websocket=self.is_websocket,
            body=b"" if body is None else body,
            max_body_size=max_body_size,
        )
        request.principal = self.principal
        return request


# -- edge -> owner ------------------------------------------------------------------------


class Open(msgspec.Struct, array_like=True, tag="o"):
    """A socket was accepted at the edge (or is re-attached after the owner moved)."""

    sock: str
    edge: str
    party: str
    room: str
    conn_id: str
    request: WireRequest


class Message(msgspec.Struct, array_like=True, tag="m"):
    """One frame from the client of *sock*."""

    sock: str
    data: Any  # str or bytes (msgpack keeps them apart; msgspec cannot type that union)


class Close(msgspec.Struct, array_like=True, tag="c"):
    """The socket closed at the edge."""

    sock: str
    code: int
    reason: str


class HttpCall(msgspec.Struct, array_like=True, tag="q"):
    """An HTTP request to the room; answered by a :class:`Reply` to *edge*."""

    call: str
    edge: str
    party: str
    room: str
    request: WireRequest
    body: bytes


class AlarmCall(msgspec.Struct, array_like=True, tag="a"):
    """Run the room's ``on_alarm``; answered by a :class:`Reply` (200 or 500)."""

    call: str
    edge: str
    party: str
    room: str


class Inspect(msgspec.Struct, array_like=True, tag="i"):
    """The admin API asks a process for the rooms it owns (*room* empty), or for one
    room's connections; answered by a :class:`Reply` with a JSON body, 404 when the
    room does not run there."""

    call: str
    edge: str
    party: str
    room: str
    limit: int


# -- owner -> edge ------------------------------------------------------------------------


class Accept(msgspec.Struct, array_like=True, tag="A"):
    """The owner accepted the socket (``on_connect`` runs next)."""

    sock: str


class Fanout(msgspec.Struct, array_like=True, tag="f"):
    """One frame for one or several sockets held by the same process (the receivers
    of one broadcast share one event)."""

    socks: list[str]
    frame: Any  # str or bytes


class Shut(msgspec.Struct, array_like=True, tag="x"):
    """Close the socket after the frames sent before."""

    sock: str
    code: int
    reason: str


class Deny(msgspec.Struct, array_like=True, tag="d"):
    """The owner could not take the socket: *owner* names the real owner when this
    process is not it (ask again), else the handshake fails with *status*."""

    sock: str
    status: int
    owner: str


class Moved(msgspec.Struct, array_like=True, tag="v"):
    """The owner gave the room up (it is stopping): find the new owner and re-attach."""

    sock: str


class Reply(msgspec.Struct, array_like=True, tag="r"):
    """The answer to an :class:`HttpCall` or :class:`AlarmCall`; status 0 means "not
    the owner, ask *owner*"."""

    call: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    owner: str = ""

    @classmethod
    def of(cls, call: str, response: Response) -> Reply:
        """The reply carrying *response*."""
        return cls(call, response.status, list(response.headers.items()), response.body)

    def response(self) -> Response:
        """The reply as a :class:`~partydeco.Response`."""
        return Response(self.body, self.status, headers=Headers(self.headers))


Event = (
    Open | Message | Close | HttpCall | AlarmCall | Accept | Fanout | Shut | Deny
    | Moved | Reply | Inspect
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Event])


def encode_batch(events: list[Any]) -> bytes:
    """Encode events for one PUBLISH."""
    return _encoder.encode(events)


def decode_batch(data: bytes) -> list[Event]:
    """Decode one PUBLISH payload.

    Raises:
        msgspec.DecodeError: the payload is not a batch of events.
    """
    return _decoder.decode(data)
