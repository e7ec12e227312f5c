"""Recovery after a reconnect, for rooms of parties that keep history.

Such a room sends its broadcasts as ``{"type":"partydeco.message","offset":N,"data":...}``
envelopes and, on every connect, ``{"type":"partydeco.position","epoch":E,"offset":L}``
(after replaying what a reconnecting client missed) or
``{"type":"partydeco.resync",...}`` when it cannot. :class:`Recovery` keeps the last
epoch and offset, adds ``since`` and ``epoch`` to the query of the next attempt, and
turns each frame back into what the room broadcast, so an app reads the same messages
with history on or off.
"""

from __future__ import annotations

import msgspec

from partydeco.client.buffer import Message

__all__ = ["Recovery"]

_MESSAGE = '{"type":"partydeco.message",'
_POSITION = '{"type":"partydeco.position",'
_RESYNC = '{"type":"partydeco.resync",'


class _Frame(msgspec.Struct):
    type: str
    epoch: str = ""
    offset: int = 0
    data: msgspec.Raw = msgspec.Raw(b'""')


_decode = msgspec.json.Decoder(_Frame).decode
_decode_str = msgspec.json.Decoder(str).decode


class Recovery:
    """The history position of one ``PartySocket`` (see the module).

    Attributes:
        epoch: the room's epoch as last seen, or ``None`` before the first position.
        offset: the offset of the last broadcast received (or replayed).
    """

    __slots__ = ("epoch", "offset")

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.offset = 0

    def __repr__(self) -> str:
        return f"<Recovery epoch={self.epoch} offset={self.offset}>"

    def query(self) -> dict[str, str]:
        """The parameters that ask the room for what was missed (none before a position)."""
        if self.epoch is None:
            return {}
        return {"since": str(self.offset), "epoch": self.epoch}

    def receive(self, message: Message) -> Message | None:
        """What the app gets for one frame: the broadcast inside an envelope, a
        ``partydeco.resync`` frame as it is, ``None`` for a position, anything else
        unchanged.

        A position in another epoch than the one held means history was lost while
        the socket was away without the room knowing it (its owner died): the app gets
        a ``partydeco.resync`` frame with the reason ``history_lost``.
        """
        if type(message) is not str or not message.startswith('{"type":"partydeco.'):
            return message
        if message.startswith(_MESSAGE):
            try:
                frame = _decode(message)
            except msgspec.DecodeError:
                return message
            self.offset = frame.offset
            data = bytes(frame.data)
            return _decode_str(data) if data[:1] == b'"' else data.decode()
        if message.startswith((_POSITION, _RESYNC)):
            try:
                frame = _decode(message)
            except msgspec.DecodeError:
                return message
            lost = self.epoch is not None and frame.epoch != self.epoch
            self.epoch, self.offset = frame.epoch, frame.offset
            if frame.type == "partydeco.resync":
                return message
            if lost:
                return msgspec.json.encode(
                    {"type": "partydeco.resync", "epoch": frame.epoch, "offset": frame.offset,
                     "reason": "history_lost"}
                ).decode()  # fmt: skip
            return None
        return message
