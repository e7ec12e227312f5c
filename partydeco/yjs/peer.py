"""One connection's side of the sync protocol: its messages, its rights, its batches.

y-partykit's provider splits a message over 1,000,000 bytes into binary chunks
between two text markers, ``y-pk-batch#{"id":..,"type":"start","size":..,"count":..}``
and the same with ``"type":"end"``; :class:`Peer` joins them (up to
``max_batch_bytes``) and handles the result like any other message.
"""

from __future__ import annotations

import msgspec

from partydeco import Connection, closecodes

from .document import Document
from .errors import ProtocolError
from .protocol import (
    MESSAGE_AUTH,
    MESSAGE_AWARENESS,
    MESSAGE_QUERY_AWARENESS,
    MESSAGE_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    awareness_message,
    permission_denied,
    sync_message,
)

__all__ = ["BATCH_SENTINEL", "Peer"]

BATCH_SENTINEL = "y-pk-batch#"
READ_ONLY_REASON = "read-only: this connection may not change the document"


class _Marker(msgspec.Struct):
    id: str
    type: str
    size: int
    count: int


_markers = msgspec.json.Decoder(_Marker)


class Peer:
    """The protocol state of one connection.

    Args:
        read_only: refuse the connection's updates (they are answered with a
            permission-denied message, once, and never applied).
        max_batch_bytes: the largest message y-partykit may send in chunks.
    """

    __slots__ = ("_batch", "_batch_bytes", "_marker", "_told", "max_batch_bytes", "read_only")

    def __init__(self, *, read_only: bool, max_batch_bytes: int) -> None:
        self.read_only = read_only
        self.max_batch_bytes = max_batch_bytes
        self._told = False
        self._marker: _Marker | None = None
        self._batch: list[bytes] = []
        self._batch_bytes = 0

    def receive(self, document: Document, connection: Connection, data: str | bytes) -> None:
        """Handle one frame from *connection*.

        Raises:
            ProtocolError: the frame breaks the protocol or a limit; close with its code.
        """
        if isinstance(data, str):
            self._marker_frame(document, connection, data)
        elif self._marker is not None:
            self._batch_bytes += len(data)
            if self._batch_bytes > self._marker.size or len(self._batch) >= self._marker.count:
                raise ProtocolError("chunked message larger than announced")
            self._batch.append(data)
        else:
            self.handle(document, connection, data)

    def _marker_frame(self, document: Document, connection: Connection, text: str) -> None:
        if not text.startswith(BATCH_SENTINEL):
            raise ProtocolError(
                "text frames are not part of the Yjs protocol", closecodes.UNSUPPORTED_DATA
            )
        try:
            marker = _markers.decode(text[len(BATCH_SENTINEL) :])
        except msgspec.DecodeError:
            raise ProtocolError("malformed chunk marker") from None
        if marker.type == "start":
            if self._marker is not None:
                raise ProtocolError("chunked message started twice")
            if marker.size > self.max_batch_bytes:
                raise ProtocolError(
                    f"chunked message over {self.max_batch_bytes} bytes",
                    closecodes.MESSAGE_TOO_BIG,
                )
            self._marker = marker
            return
        start = self._marker
        if marker.type != "end" or start is None:
            raise ProtocolError("unexpected chunk marker")
        if (
            marker.id != start.id
            or marker.size != start.size
            or marker.count != start.count
            or self._batch_bytes != start.size
            or len(self._batch) != start.count
        ):
            raise ProtocolError("chunked message does not match its markers")
        data = b"".join(self._batch)
        self._marker = None
        self._batch = []
        self._batch_bytes = 0
        self.handle(document, connection, data)

    def handle(self, document: Document, connection: Connection, data: bytes) -> None:
        """Handle one whole y-websocket message.

        Raises:
            ProtocolError: malformed, or a message type servers do not accept.
        """
        reader = Reader(data)
        kind = reader.uint()
        if kind == MESSAGE_SYNC:
            step = reader.uint()
            payload = reader.bytes()
            if step == SYNC_STEP1:
                connection.send(sync_message(SYNC_STEP2, document.update_since(payload)))
            elif step in (SYNC_STEP2, SYNC_UPDATE):
                self._update(document, connection, payload)
            else:
                raise ProtocolError(f"unknown sync step {step}")
        elif kind == MESSAGE_AWARENESS:
            document.relay_awareness(reader.bytes(), connection)
        elif kind == MESSAGE_QUERY_AWARENESS:
            states = document.all_awareness()
            if states is not None:
                connection.send(awareness_message(states))
        elif kind == MESSAGE_AUTH:
            raise ProtocolError(
                "auth messages go from server to client", closecodes.UNSUPPORTED_DATA
            )
        else:
            raise ProtocolError(f"unknown Yjs message type {kind}", closecodes.UNSUPPORTED_DATA)

    def _update(self, document: Document, connection: Connection, update: bytes) -> None:
        if not self.read_only:
            document.apply_update(update, connection)
        elif update != b"\x00\x00" and not self._told:  # an empty step 2 is no edit
            self._told = True
            connection.send(permission_denied(READ_ONLY_REASON))
