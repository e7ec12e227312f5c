"""How a room's history lives in its storage: loading, the background writer, unloading.

Keys (in the room's storage, beside the app's own keys)::

    partydeco.history:meta               {"v": 1, "epoch": E, "clean": bool, "next": N}
    partydeco.history:<offset, 16 hex>   [time, frame or None, [excluded connection ids]]

Loading (before ``on_start``) reads them all. If ``meta`` says *clean*, the epoch
goes on and the entries up to ``next - 1`` are the history; otherwise (no meta, or the
previous owner of the room did not unload it: it crashed, or lost its Redis lease)
history may have been lost, so the room starts a new epoch and deletes the old
entries. Either way ``meta`` is then written *not clean* before any broadcast.

One writer task per room writes what was broadcast since its last write in one
``put`` (a group commit), and deletes what the limits dropped, oldest first. It uses
``allow_concurrency`` and ``allow_unconfirmed``: history writes never stop the room's
events nor hold its frames, because the offsets are assigned in order when the
broadcast is made and the writer keeps that order itself. It runs in a context of
its own, so a broadcast made inside ``room.storage.transaction()`` does not pull the
writer's writes into that transaction.

Unloading waits for the writer, then writes ``meta`` *clean* with the next offset.
A room loaded again in the same process first waits for that.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from typing import TYPE_CHECKING, Any

from .errors import SetupError
from .storage import RoomKey, StorageBackend, StorageClosedError

if TYPE_CHECKING:
    from .history import History
    from .storage import RoomStorage

__all__ = ["META", "PREFIX", "Entry", "HistoryStore", "wait_unloaded"]

logger = logging.getLogger("partydeco")

#: The prefix of the storage keys the history uses.
PREFIX = "partydeco.history:"
#: The key of the history's description.
META = PREFIX + "meta"
_FORMAT = 1
_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0
# What a stored entry costs besides its frame (offset, time, list, key).
_OVERHEAD = 64

# Unloads still writing, by backend and room: a room loaded again waits for its own;
# a server stopping waits for all of them before it closes the storage.
_unloading: weakref.WeakKeyDictionary[StorageBackend, dict[RoomKey, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


class Entry:
    """One kept broadcast: its offset, when (epoch seconds), its frame (``None`` when
    it was too large to keep) and the connection ids it was not sent to."""

    __slots__ = ("at", "frame", "offset", "size", "without")

    def __init__(
        self, offset: int, at: float, frame: str | None, without: tuple[str, ...]
    ) -> None:
        self.offset = offset
        self.at = at
        self.frame = frame
        self.without = without
        self.size = (len(frame) if frame is not None else 0) + _OVERHEAD + sum(map(len, without))

    def stored(self) -> list[Any]:
        """The value kept in storage."""
        return [self.at, self.frame, list(self.without)]


def _key(offset: int) -> str:
    return f"{PREFIX}{offset:016x}"


async def wait_unloaded(backend: StorageBackend, room: RoomKey | None = None) -> None:
    """Wait until every unloaded room of *backend* (or just *room*) stored its history;
    bound the wait with ``asyncio.timeout``."""
    unloading = _unloading.get(backend, {})
    tasks = list(unloading.values()) if room is None else [unloading[room]] * (room in unloading)
    if tasks:
        await asyncio.wait(tasks)


class HistoryStore:
    """The storage side of one room's :class:`~partydeco.history.History`.

    Attributes:
        loaded: whether :meth:`load` completed.
        lost: whether the last load started a new epoch because history may have been
            lost (``False`` for a room that never had history).
    """

    __slots__ = (
        "_high",
        "_history",
        "_idle",
        "_low",
        "_stale",
        "_stopped",
        "_storage",
        "_unloaded",
        "_writer",
        "loaded",
        "lost",
    )  # fmt: skip

    def __init__(self, history: History, storage: RoomStorage | None) -> None:
        self._history = history
        self._storage = storage
        # Every stored entry's offset is in [_low, _high]; empty when _low > _high.
        self._low = 1
        self._high = 0
        self._stale: list[str] = []  # stored keys that are no entry of the history
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False  # the storage is gone: stop writing
        self._unloaded = False
        self.loaded = False
        self.lost = False

    def __repr__(self) -> str:
        return f"<HistoryStore stored={self._low}..{self._high} loaded={self.loaded}>"

    @property
    def storage(self) -> RoomStorage:
        if self._storage is None:
            raise SetupError("history needs room storage (a room made by an App)")
        return self._storage

    @property
    def pending(self) -> int:
        """Broadcasts kept in memory and not yet stored."""
        return max(0, self._history.offset - max(self._high, self._history.first - 1))

    # -- loading ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored history (see the module); the room's first arrival awaits it.

        Raises:
            StorageError: the storage failed; the next arrival tries again.
        """
        storage = self.storage
        earlier = _unloading.get(storage.backend, {}).get(storage.room_key)
        if earlier is not None:
            await asyncio.wait([earlier])
        rows: dict[str, Any] = await storage.list(prefix=PREFIX)
        meta = rows.pop(META, None)
        history = self._history
        entries: list[Entry] = []
        if _is_clean(meta):
            epoch, following = meta["epoch"], meta["next"]
            entries = _run(rows, following)
            kept = {_key(entry.offset) for entry in entries}
            # Deleted by the writer before it puts anything: a stale key can never
            # shadow a new entry.
            self._stale = [key for key in rows if key not in kept]
            if entries:
                self._low, self._high = entries[0].offset, entries[-1].offset
            history.restore(epoch, following - 1, entries)
        else:
            self.lost = bool(rows) or meta is not None
            if rows:  # a new epoch starts at offset 1 again: clear the old keys first
                await storage.delete(list(rows))
        await storage.put(META, {"v": _FORMAT, "epoch": history.epoch, "clean": False})
        self.loaded = True
        self.wake()

    # -- writing ------------------------------------------------------------------------

    def wake(self) -> None:
        """Start the writer if there is something to write and it is not running."""
        if self._writer is None and self.loaded and not self._stopped and self._work():
            self._idle.clear()
            # A context of its own: see the module.
            self._writer = asyncio.get_running_loop().create_task(
                self._write_all(), name="partydeco-history-writer", context=contextvars.Context()
            )

    def _work(self) -> bool:
        history = self._history
        return (
            bool(self._stale)
            or self._high < history.offset
            or self._low < min(history.first, self._high + 1)
        )

    async def flush(self) -> bool:
        """Wait until the writer is idle; whether everything kept is stored."""
        await self._idle.wait()
        return not self._work()

    async def _write_all(self) -> None:
        delay = _RETRY_FIRST
        try:
            while self._work() and not self._stopped:
                try:
                    await self._write_once()
                    delay = _RETRY_FIRST
                except StorageClosedError:
                    logger.error("history: storage closed with %d broadcasts not stored",
                                 self.pending)
                    self._stopped = True
                except Exception:
                    logger.warning("history: could not store %d broadcasts, retrying in %.2fs",
                                   self.pending, delay, exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
        finally:
            self._writer = None
            self._idle.set()

    async def _write_once(self) -> None:
        storage, history = self.storage, self._history
        dead_end = min(history.first, self._high + 1)
        if self._low < dead_end or self._stale:
            stale, self._stale = self._stale, []
            try:
                keys = [_key(offset) for offset in range(self._low, dead_end)]
                await storage.delete(keys + stale, allow_concurrency=True, allow_unconfirmed=True)
            except BaseException:
                self._stale = stale + self._stale
                raise
            self._low = max(self._low, dead_end)
        # What was broadcast since the last write, up to now, in one put.
        first, last = history.first, history.offset
        start = max(self._high + 1, first)
        if start > last:
            return
        batch = {_key(entry.offset): entry.stored() for entry in history.kept(start)}
        await storage.put(batch, allow_concurrency=True, allow_unconfirmed=True)
        if self._low > self._high:
            self._low = start
        self._high = last

    # -- unloading ----------------------------------------------------------------------

    def unload(self, clean: bool = True) -> None:
        """The room is unloaded: store what is left and mark the history clean (in the
        background), or with *clean* false (the room was lost) just stop writing."""
        if self._unloaded:
            return
        self._unloaded = True
        if not self.loaded:
            return
        if not clean:
            self._stopped = True
            if self._writer is not None:
                self._writer.cancel()
            return
        storage = self.storage
        task = asyncio.get_running_loop().create_task(
            self._finish(), name="partydeco-history-unload", context=contextvars.Context()
        )
        tasks = _unloading.setdefault(storage.backend, {})
        tasks[storage.room_key] = task
        task.add_done_callback(lambda t: _forget(storage.backend, storage.room_key, t))

    async def _finish(self) -> None:
        self.wake()
        if not await self.flush() or self._stopped:
            return  # left not clean: the next load starts a new epoch
        meta = {"v": _FORMAT, "epoch": self._history.epoch, "clean": True,
                "next": self._history.offset + 1}
        try:
            await self.storage.put(META, meta, allow_concurrency=True, allow_unconfirmed=True)
        except Exception:
            logger.warning("history: could not mark the history of %r clean",
                           self.storage.room_key, exc_info=True)


def _forget(backend: StorageBackend, key: RoomKey, task: asyncio.Task[None]) -> None:
    tasks = _unloading.get(backend)
    if tasks is not None and tasks.get(key) is task:
        del tasks[key]


def _is_clean(meta: Any) -> bool:
    return (
        isinstance(meta, dict)
        and meta.get("v") == _FORMAT
        and meta.get("clean") is True
        and isinstance(meta.get("epoch"), str)
        and isinstance(meta.get("next"), int)
        and meta["next"] >= 1
    )


def _run(rows: dict[str, Any], following: int) -> list[Entry]:
    """The stored entries that end at offset ``following - 1`` without a hole."""
    entries: list[Entry] = []
    offset = following - 1
    while offset >= 1:
        value = rows.get(_key(offset))
        if not (
            isinstance(value, list) and len(value) == 3
            and isinstance(value[0], (int, float))
            and (value[1] is None or isinstance(value[1], str))
            and isinstance(value[2], list) and all(isinstance(i, str) for i in value[2])
        ):  # fmt: skip
            break
        entries.append(Entry(offset, float(value[0]), value[1], tuple(value[2])))
        offset -= 1
    entries.reverse()
    return entries
