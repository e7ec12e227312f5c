"""The y-websocket wire format: lib0 variable-length integers and the message kinds.

Every binary frame is one message: a varuint message type, then its body.

- ``0`` sync: a varuint step, then a length-prefixed byte array: step 1 carries a
  state vector (the sender asks for what it lacks), step 2 and update carry a Yjs
  update (v1 encoding).
- ``1`` awareness: a length-prefixed awareness update (see :mod:`.awareness`).
- ``2`` auth: ``0`` (permission denied) and a reason string; sent by servers only.
- ``3`` query awareness: no body; the answer is every known awareness state.

Integers are lib0 varuints: 7 bits per byte, low bits first, the high bit set on every
byte but the last; byte arrays and strings are a varuint length and the bytes.
"""

from __future__ import annotations

from .errors import ProtocolError

__all__ = [
    "AUTH_PERMISSION_DENIED",
    "MESSAGE_AUTH",
    "MESSAGE_AWARENESS",
    "MESSAGE_QUERY_AWARENESS",
    "MESSAGE_SYNC",
    "SYNC_STEP1",
    "SYNC_STEP2",
    "SYNC_UPDATE",
    "Reader",
    "awareness_message",
    "permission_denied",
    "sync_message",
    "write_bytes",
    "write_uint",
]

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0

# JavaScript numbers are exact up to 2**53 - 1: lib0 refuses larger integers, so do we.
_MAX_UINT = 2**53 - 1


class Reader:
    """Reads lib0-encoded values from one message; every read is bounds-checked.

    Args:
        data: the message.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        """Read a varuint.

        Raises:
            ProtocolError: the message ends inside it, or it is above 2**53 - 1.
        """
        data = self.data
        pos = self.pos
        value = 0
        shift = 0
        while True:
            if pos >= len(data):
                raise ProtocolError("truncated Yjs message")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 53:
                raise ProtocolError("integer out of range in Yjs message")
        if value > _MAX_UINT:
            raise ProtocolError("integer out of range in Yjs message")
        self.pos = pos
        return value

    def bytes(self) -> bytes:
        """Read a length-prefixed byte array.

        Raises:
            ProtocolError: the length runs past the end of the message.
        """
        length = self.uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("truncated Yjs message")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def string(self) -> str:
        """Read a length-prefixed UTF-8 string.

        Raises:
            ProtocolError: truncated, or not valid UTF-8.
        """
        raw = self.bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in Yjs message") from None


def write_uint(out: bytearray, value: int) -> None:
    """Append *value* (0 <= value < 2**53) as a varuint."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_bytes(out: bytearray, value: bytes) -> None:
    """Append a length-prefixed byte array."""
    write_uint(out, len(value))
    out += value


def sync_message(step: int, payload: bytes) -> bytes:
    """A sync message: *step* is :data:`SYNC_STEP1` (a state vector),
    :data:`SYNC_STEP2` or :data:`SYNC_UPDATE` (an update)."""
    out = bytearray((MESSAGE_SYNC, step))
    write_bytes(out, payload)
    return bytes(out)


def awareness_message(update: bytes) -> bytes:
    """An awareness message carrying an encoded awareness update."""
    out = bytearray((MESSAGE_AWARENESS,))
    write_bytes(out, update)
    return bytes(out)


def permission_denied(reason: str) -> bytes:
    """The auth message that tells a client it may not do what it tried, and why."""
    out = bytearray((MESSAGE_AUTH, AUTH_PERMISSION_DENIED))
    write_bytes(out, reason.encode("utf-8"))
    return bytes(out)
