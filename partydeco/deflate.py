"""permessage-deflate with a bound on how far one message may inflate.

Hypercorn always negotiates permessage-deflate, and wsproto inflates each
frame without a size limit: a 100 KB frame of compressed zeros becomes 100 MB
in memory before Hypercorn's message-size check runs. This extension stops
inflating at the app's ``max_message_size`` and fails the connection instead.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

__all__ = ["BoundedPerMessageDeflate", "install"]


class BoundedPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, refusing messages that inflate past a limit."""

    #: the largest inflated message, in bytes (set by :func:`install`).
    max_message_size: ClassVar[int] = 1 << 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inflated = 0

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


def install(max_message_size: int) -> None:
    """Make Hypercorn negotiate the bounded extension, with *max_message_size* as the bound.

    The setting is process-wide; with several apps in one process the largest
    limit applies to all of them.
    """
    from hypercorn.protocol import ws_stream

    if ws_stream.PerMessageDeflate is BoundedPerMessageDeflate:  # type: ignore[attr-defined]
        size = max(BoundedPerMessageDeflate.max_message_size, max_message_size)
    else:
        size = max_message_size
    BoundedPerMessageDeflate.max_message_size = size
    ws_stream.PerMessageDeflate = BoundedPerMessageDeflate  # type: ignore[attr-defined]
