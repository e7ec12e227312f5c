"""permessage-deflate on Hypercorn as partydeco serves it: inflation bounded, and each
outgoing message framed (and compressed) once for all the sockets it goes to.

Hypercorn negotiates permessage-deflate with every client that offers it, through
wsproto, which has two costs a server of rooms cannot afford:

- inflation without a limit: a 100 KB frame of compressed zeros becomes 100 MB in
  memory before Hypercorn's message-size check runs. :class:`RoomDeflate` stops
  inflating at the app's ``max_message_size`` and fails the connection with 1009.
- compression per receiver: wsproto keeps one compressor per socket, whose output
  depends on everything that socket was sent before ("context takeover"), so a
  broadcast to N sockets is compressed N times. :class:`RoomDeflate` answers every
  offer with ``server_no_context_takeover`` (RFC 7692 lets a server add it
  unasked), which makes a message's compressed form depend on the message alone;
  :func:`frame` then builds each outgoing frame once, compressed or not, and hands
  the same bytes to every socket a broadcast reaches. Messages under
  :data:`MIN_COMPRESSED` bytes go uncompressed (RFC 7692 decides per message):
  deflate cannot make them smaller, only slower.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, ClassVar

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

__all__ = ["MIN_COMPRESSED", "STATS", "RoomDeflate", "frame"]

#: Messages shorter than this (in bytes) are sent uncompressed.
MIN_COMPRESSED = 256

#: How many recent messages keep their frames, for the other receivers of a broadcast.
CACHED = 4

#: Counters for tests and benchmarks: messages framed, and how many of them compressed.
STATS = {"framed": 0, "compressed": 0}

# (id(message), window bits; 0 for uncompressed) -> (message, frame). The message is
# held so that its id cannot be reused while the entry lives.
_frames: dict[tuple[int, int], tuple[object, bytes]] = {}


class RoomDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with inflation bounded, and without server context
    takeover when :attr:`shared` is on (see the module)."""

    #: the largest inflated message, in bytes (set by ``apply``).
    max_message_size: ClassVar[int] = 1 << 20
    #: whether outgoing messages are compressed once for all receivers (set by ``apply``).
    shared: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inflated = 0

    def accept(self, offer: str) -> bool | str | None:
        if self.shared:
            self.server_no_context_takeover = True
        return super().accept(offer)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        room = self.max_message_size - self._inflated
        try:
            out = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_message_size:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        result = super().frame_inbound_complete(proto, fin)
        if fin:
            self._inflated = 0
        return result


def frame(message: str | bytes, deflate: RoomDeflate | None) -> bytes:
    """The server frame carrying *message* whole: text for ``str``, binary for
    ``bytes``, compressed when *deflate* (negotiated without server context
    takeover) is given and the message is long enough.

    The last few frames are remembered by message identity, so the receivers of
    one broadcast share one frame.
    """
    bits = deflate.server_max_window_bits if deflate is not None else 0
    key = (id(message), bits)
    cached = _frames.get(key)
    if cached is not None and cached[0] is message:
        return cached[1]
    if type(message) is str:
        opcode = 0x81  # FIN + text
        payload = message.encode()
    else:
        opcode = 0x82  # FIN + binary
        payload = bytes(message)  # type: ignore[arg-type]  # bytes, bytearray or memoryview
    STATS["framed"] += 1
    if bits and len(payload) >= MIN_COMPRESSED:
        STATS["compressed"] += 1
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
        payload = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        opcode |= 0x40  # RSV1: this message is compressed
    size = len(payload)
    if size < 126:
        head = bytes((opcode, size))
    elif size < 65536:
        head = struct.pack("!BBH", opcode, 126, size)
    else:
        head = struct.pack("!BBQ", opcode, 127, size)
    data = head + payload
    if len(_frames) >= CACHED:
        del _frames[next(iter(_frames))]
    _frames[key] = (message, data)
    return data
