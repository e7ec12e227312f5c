"""A room's history of broadcasts, and the recovery of what a reconnecting client missed.

A party opts in with ``history=N`` (see :class:`~partydeco.Config`). Then every text or
JSON ``room.broadcast`` gets the room's next **offset** (1, 2, 3, ... with no gaps) and
goes out as an envelope, ``{"type":"partydeco.message","offset":N,"data":...}``,
where ``data`` is the message: the JSON value that was broadcast, or a JSON string for
a ``str``. The last ``N`` of them (also bounded by ``history_ttl`` and
``history_bytes``) are kept in memory and in the room's storage, under the **epoch**,
a random name that changes whenever history may have been lost.

A client that reconnects with ``?since=<offset>&epoch=<epoch>`` gets, before anything
else, what it missed (in order, the envelopes it was not excluded from with
``without``), then ``{"type":"partydeco.position","epoch":E,"offset":L}``; a client
without them gets just the position. When the missed messages are not all there any
more, it gets ``{"type":"partydeco.resync","epoch":E,"offset":L,"reason":R}``
instead: it should load the state afresh. Bad values also get
``{"error":"invalid_recovery","detail":...}`` first.

Offsets are assigned synchronously in ``broadcast``, so their order is the order of
the broadcasts. Writes to storage go in the background (:mod:`.historystore`): they
neither close the room's input gate nor hold its frames. This is safe because the
stored history is marked *clean* only when the room is unloaded after everything
was written; a room loaded from history that is not clean (the process died, or the
memory backend restarted empty) starts a new epoch, so no client ever recovers from
an offset the server lost or reuses.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from .codec import encode_json
from .historystore import MAX_ENTRY_BYTES, Entry, HistoryStore

if TYPE_CHECKING:
    from .config import Config
    from .connection import Connection
    from .request import Request
    from .storage import RoomStorage

__all__ = ["Entry", "History", "new_epoch"]

_EPOCH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SINCE = re.compile(r"^[0-9]{1,15}$")


def new_epoch() -> str:
    """A fresh epoch: 12 random hex digits."""
    return secrets.token_hex(6)


class History:
    """The history of one room: ``room.history`` (see the module).

    Attributes:
        epoch: the current epoch.
        offset: the offset of the last broadcast (``0`` before the first).
        limit: most broadcasts kept.
        ttl: seconds a broadcast is kept, or ``None``.
        max_bytes: most bytes of broadcasts kept.
    """

    __slots__ = ("_ring", "_size", "epoch", "limit", "max_bytes", "offset", "store", "ttl")

    def __init__(self, config: Config, storage: RoomStorage | None) -> None:
        self.limit = config.history
        self.ttl = config.history_ttl
        self.max_bytes = config.history_bytes
        self.epoch = new_epoch()
        self.offset = 0
        self._ring: deque[Entry] = deque()
        self._size = 0
        #: the storage side: loading, the background writer, unloading.
        self.store = HistoryStore(self, storage)

    @classmethod
    def of(cls, config: Config, storage: RoomStorage | None) -> History | None:
        """The history of a room of a party with *config*, or ``None`` (no ``history``)."""
        return cls(config, storage) if config.history else None

    def __repr__(self) -> str:
        return f"<History epoch={self.epoch} offsets {self.first}..{self.offset}>"

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def first(self) -> int:
        """The offset of the oldest broadcast kept (``offset + 1`` when none is)."""
        return self._ring[0].offset if self._ring else self.offset + 1

    def entries(self) -> list[Entry]:
        """The kept broadcasts, oldest first."""
        return list(self._ring)

    def kept(self, start: int) -> Iterator[Entry]:
        """The kept broadcasts from offset *start* on, oldest first."""
        return islice(self._ring, max(0, start - self.first), None)

    def restore(self, epoch: str, offset: int, entries: list[Entry]) -> None:
        """Take the state loaded from storage (called once, before any broadcast)."""
        self.epoch = epoch
        self.offset = offset
        self._ring = deque(entries)
        self._size = sum(entry.size for entry in entries)
        self.trim()

    # -- recording -------------------------------------------------------------------------

    def record(self, message: Any, without: tuple[str, ...]) -> str:
        """Give *message* the next offset, keep it, and return its envelope frame.

        Raises:
            TypeError: the message cannot be encoded as JSON.
        """
        offset = self.offset + 1
        data = encode_json(message)
        frame = (b'{"type":"partydeco.message","offset":%d,"data":%b}' % (offset, data)).decode()
        entry = Entry(offset, time.time(), frame, without)
        if entry.size > MAX_ENTRY_BYTES:  # too large to store: who missed it must resync
            entry = Entry(offset, entry.at, None, without)
        self.offset = offset
        ring = self._ring
        ring.append(entry)
        self._size += entry.size
        ttl = self.ttl
        if (
            len(ring) > self.limit
            or self._size > self.max_bytes
            or (ttl is not None and ring[0].at < entry.at - ttl)
        ):
            self.trim(entry.at)
        self.store.wake()
        return frame

    def trim(self, now: float | None = None) -> None:
        """Drop the oldest broadcasts beyond the count, byte and age limits."""
        ring = self._ring
        deadline = None if self.ttl is None else (now or time.time()) - self.ttl
        while ring and (
            len(ring) > self.limit
            or self._size > self.max_bytes
            or (deadline is not None and ring[0].at < deadline)
        ):
            self._size -= ring.popleft().size

    # -- recovery ----------------------------------------------------------------------------

    def greet(self, conn: Connection, request: Request) -> None:
        """Send a joining connection what it missed and the position, or tell it to resync.

        Synchronous: the room attaches the connection right after, so nothing
        broadcast meanwhile can come before these frames.
        """
        since = request.args.get("since")
        epoch = request.args.get("epoch")
        self.trim()
        if since is None and epoch is None:
            conn.send(self.position())
            return
        problem = _check(since, epoch)
        if problem is not None:
            conn.send({"error": "invalid_recovery", "detail": problem})
            conn.send(self.resync("invalid"))
            return
        assert since is not None
        start = int(since)
        if epoch != self.epoch:
            conn.send(self.resync("history_lost"))
        elif start > self.offset:
            conn.send(self.resync("unknown_offset"))
        elif start < self.first - 1:
            conn.send(self.resync("expired"))
        else:
            frames = []
            for entry in self.kept(start + 1):
                if conn.id in entry.without:
                    continue
                if entry.frame is None:
                    conn.send(self.resync("not_kept"))
                    return
                frames.append(entry.frame)
            for frame in frames:
                conn.send(frame)
            conn.send(self.position())

    def position(self) -> dict[str, Any]:
        """The ``partydeco.position`` message: the room's epoch and last offset."""
        return {"type": "partydeco.position", "epoch": self.epoch, "offset": self.offset}

    def resync(self, reason: str) -> dict[str, Any]:
        """The ``partydeco.resync`` message: recovery is impossible, and why."""
        return {
            "type": "partydeco.resync", "epoch": self.epoch, "offset": self.offset,
            "reason": reason,
        }  # fmt: skip


def _check(since: str | None, epoch: str | None) -> str | None:
    """What is wrong with the recovery parameters, or ``None``."""
    if since is None or epoch is None:
        return "since and epoch go together: pass both or neither"
    if not _SINCE.match(since):
        return "since must be an offset: a non-negative integer of at most 15 digits"
    if not _EPOCH.match(epoch):
        return "epoch must be 1 to 64 letters, digits, '-' or '_'"
    return None
