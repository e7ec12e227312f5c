"""The messages a PartySocket keeps while offline, sent in order on the next open."""

from __future__ import annotations

from collections import deque
from typing import Literal

from partydeco.client.errors import BufferFullError

__all__ = ["Message", "OfflineBuffer"]

#: A frame: text arrives as ``str``, binary as ``bytes``.
Message = str | bytes


class OfflineBuffer:
    """Messages waiting for a connection, oldest first, at most *max_messages*.

    Args:
        max_messages: how many messages are kept.
        overflow: what :meth:`append` does when full: ``"drop_oldest"`` discards the
            oldest message (counted in :attr:`dropped`), ``"error"`` raises
            :class:`BufferFullError`.
    """

    __slots__ = ("_items", "dropped", "max_messages", "overflow")

    def __init__(self, max_messages: int, overflow: Literal["drop_oldest", "error"]) -> None:
        if max_messages < 0:
            raise ValueError("need max_buffered >= 0")
        if overflow not in ("drop_oldest", "error"):
            raise ValueError("overflow must be 'drop_oldest' or 'error'")
        self.max_messages = max_messages
        self.overflow = overflow
        self._items: deque[Message] = deque()
        #: How many messages the ``"drop_oldest"`` policy discarded.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, data: Message) -> None:
        """Keep *data* after the others.

        Raises:
            BufferFullError: the buffer is full and ``overflow="error"``.
        """
        if len(self._items) >= self.max_messages and self.overflow == "error":
            raise BufferFullError(self.max_messages)
        self._items.append(data)
        self._trim()

    def put_back(self, data: Message) -> None:
        """Keep *data* ahead of the others (a send that did not go out)."""
        self._items.appendleft(data)
        self._trim()

    def first(self) -> Message:
        """The oldest message (the buffer must not be empty)."""
        return self._items[0]

    def pop_first(self) -> None:
        """Forget the oldest message, once it went out."""
        self._items.popleft()

    def drain(self) -> list[Message]:
        """Remove and return every message, oldest first."""
        items = list(self._items)
        self._items.clear()
        return items

    def _trim(self) -> None:
        while len(self._items) > self.max_messages:
            self._items.popleft()
            self.dropped += 1
