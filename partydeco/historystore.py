"""How a room's history lives in its storage: loading, the background writer, unloading.

Keys (in the room's storage, beside the app's own keys)::

    partydeco.history:meta              {"v": 1, "epoch": E, "clean": bool, "next": N}
    partydeco.history:<offset, 16 hex>  [[offset, time, frame or None, [excluded ids]], ...]

Each row holds consecutive broadcasts, the first one's offset in its key. Loading (before
``on_start``) reads them all. If ``meta`` says *clean*, the epoch goes on and the
broadcasts up to ``next - 1`` are the history, and ``meta`` is written *not clean* before
any broadcast; otherwise (no meta, or the room's previous owner did not unload it: it
crashed, or lost its Redis lease) history may have been lost, so the room starts a new
epoch, and its first write deletes the old rows. A room whose history was never stored
costs one read when it loads, and no write.

One writer per room stores, every :data:`FLUSH_INTERVAL` seconds, what was broadcast
since its last write as new rows, and deletes the rows the limits dropped, in one atomic
write. The writes go straight to the backend (under the room's write lock):
they never stop the room's events nor hold its frames, and never join a transaction
that is open in the room, because the offsets were assigned in order when the broadcasts
were made and the writer keeps that order itself. These writes only keep the work of
unloading small: after a crash the history is not clean, whatever was written.

Unloading writes what is left and ``meta`` *clean* with the next offset; a room loaded
again in the same process first waits for that.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import SetupError
from .storage import MAX_VALUE_BYTES, RoomKey, StorageBackend, StorageClosedError
from .storage.base import WriteBatch
from .storage.values import encode_key, encode_value

if TYPE_CHECKING:
    from .history import History
    from .storage import RoomStorage

__all__ = [
    "FLUSH_INTERVAL", "MAX_ENTRY_BYTES", "META", "PREFIX", "Entry", "HistoryStore",
    "wait_unloaded",
]  # fmt: skip

logger = logging.getLogger("partydeco")

#: The prefix of the storage keys the history uses.
PREFIX = "partydeco.history:"
#: The key of the history's description.
META = PREFIX + "meta"
#: Seconds between two writes of one room's history.
FLUSH_INTERVAL = 5.0
_FORMAT = 1
_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0
# What an entry costs besides its frame and excluded ids (its numbers, the list).
_OVERHEAD = 64
#: The largest broadcast kept (with its excluded ids): rows stay under the value limit.
MAX_ENTRY_BYTES = MAX_VALUE_BYTES - 1024

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
        size = _OVERHEAD
        if frame is not None:
            size += len(frame) if frame.isascii() else len(frame.encode())
        if without:
            size += sum(map(len, without)) * (1 if all(map(str.isascii, without)) else 4)
        self.size = size

    def stored(self) -> list[Any]:
        """The entry as a row keeps it."""
        return [self.offset, self.at, self.frame, list(self.without)]


def _key(offset: int) -> str:
    return f"{PREFIX}{offset:016x}"


async def wait_unloaded(backend: StorageBackend | None, *, within: float) -> None:
    """Wait until every unloaded room of *backend* stored its history, for at most
    *within* seconds (a history not stored by then stays not clean)."""
    tasks = list(_unloading.get(backend, {}).values()) if backend is not None else []
    if tasks:
        await asyncio.wait(tasks, timeout=within)


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
        "_hurry",
        "_idle",
        "_rows",
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
        self._high = 0  # the last offset stored
        # The stored rows, oldest first: (first offset, last offset).
        self._rows: deque[tuple[int, int]] = deque()
        self._stale: list[str] = []  # stored keys that are no row of this history
        self._writer: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # write now, not after the interval
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False  # the storage is gone, or the room was lost: stop writing
        self._unloaded = False
        self.loaded = False
        self.lost = False

    def __repr__(self) -> str:
        return f"<HistoryStore stored through {self._high}, {len(self._rows)} rows>"

    @property
    def storage(self) -> RoomStorage:
        """The room's storage.

        Raises:
            SetupError: the room has none (it was not made by an App).
        """
        if self._storage is None:
            raise SetupError("history needs room storage (a room made by an App)")
        return self._storage

    @property
    def pending(self) -> int:
        """Broadcasts kept in memory and not yet stored."""
        return max(0, self._history.offset - max(self._high, self._history.first - 1))

    async def _apply(self, changes: dict[str, Any]) -> None:
        """Write *changes* (``None`` deletes) in one atomic write, past the room's gates."""
        storage = self.storage
        batch = WriteBatch(
            {encode_key(k): None if v is None else encode_value(k, v) for k, v in changes.items()}
        )
        backend, room = storage.backend, storage.room_key
        async with backend.lock(room):
            await backend.write(room, batch)

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
        if _is_clean(meta):
            following = meta["next"]
            entries, kept = _run(rows, following)
            self._stale = [key for key in rows if key not in kept]
            self._rows = deque(kept.values())
            self._high = following - 1
            history.restore(meta["epoch"], following - 1, entries)
            # Not clean any more from now on: a crash must not pass for a clean stop.
            await self._apply({META: {"v": _FORMAT, "epoch": history.epoch, "clean": False}})
        else:
            self.lost = bool(rows) or meta is not None
            # Offsets start at 1 again: the first write deletes the old rows (a new row
            # with the key of an old one replaces it in that same write).
            self._stale = list(rows)
        self.loaded = True
        self.wake()

    # -- writing ------------------------------------------------------------------------

    def wake(self) -> None:
        """Start the writer if there is something to write and it is not running."""
        if self._writer is None and self.loaded and not self._stopped and self._work():
            self._idle.clear()
            self._writer = asyncio.get_running_loop().create_task(
                self._write_all(), name="partydeco-history-writer"
            )

    def _work(self) -> bool:
        history, rows = self._history, self._rows
        dead = bool(rows) and rows[0][1] < history.first
        return bool(self._stale) or self._high < history.offset or dead

    async def flush(self) -> bool:
        """Write now and wait until the writer is idle; whether everything kept is stored."""
        self._hurry.set()
        self.wake()
        await self._idle.wait()
        return not self._work()

    async def _write_all(self) -> None:
        delay = _RETRY_FIRST
        try:
            while not self._stopped:
                if not self._hurry.is_set():  # one write a second: rows of many broadcasts
                    try:
                        await asyncio.wait_for(self._hurry.wait(), FLUSH_INTERVAL)
                    except TimeoutError:
                        pass
                if not self._work():
                    break
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
            if not self._unloaded:
                self._hurry.clear()
            self._idle.set()

    async def _write_once(self) -> None:
        history = self._history
        first, last = history.first, history.offset
        changes: dict[str, Any] = {}
        dead = 0
        for row_first, row_last in self._rows:  # rows wholly dropped by the limits
            if row_last >= first:
                break
            changes[_key(row_first)] = None
            dead += 1
        changes.update(dict.fromkeys(self._stale))
        rows: list[tuple[int, int]] = []
        row: list[list[Any]] = []
        size = 0
        for entry in history.kept(max(self._high + 1, first)):
            if row and size + entry.size > MAX_ENTRY_BYTES:
                rows.append((row[0][0], row[-1][0]))
                changes[_key(row[0][0])] = row
                row, size = [], 0
            row.append(entry.stored())
            size += entry.size
        if row:
            rows.append((row[0][0], row[-1][0]))
            changes[_key(row[0][0])] = row
        stale = len(self._stale)
        await self._apply(changes)
        for _ in range(dead):
            self._rows.popleft()
        self._rows.extend(rows)
        del self._stale[:stale]
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
            self._finish(), name="partydeco-history-unload"
        )
        tasks = _unloading.setdefault(storage.backend, {})
        tasks[storage.room_key] = task
        task.add_done_callback(lambda t: _forget(storage.backend, storage.room_key, t))

    async def _finish(self) -> None:
        if not await self.flush() or self._stopped:
            return  # left not clean: the next load starts a new epoch
        history = self._history
        meta = {"v": _FORMAT, "epoch": history.epoch, "clean": True, "next": history.offset + 1}
        try:
            await self._apply({META: meta})
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


def _run(rows: dict[str, Any], following: int) -> tuple[list[Entry], dict[str, tuple[int, int]]]:
    """The stored broadcasts that end at offset ``following - 1`` without a hole, and the
    rows they come from (by key)."""
    found: dict[int, Entry] = {}
    spans: dict[int, tuple[str, int]] = {}  # offset -> (its row's key, the row's first)
    for key, row in rows.items():
        if not isinstance(row, list):
            continue
        for item in row:
            if not (
                isinstance(item, list) and len(item) == 4
                and isinstance(item[0], int) and isinstance(item[1], (int, float))
                and (item[2] is None or isinstance(item[2], str))
                and isinstance(item[3], list) and all(isinstance(i, str) for i in item[3])
            ):  # fmt: skip
                continue
            found[item[0]] = Entry(item[0], float(item[1]), item[2], tuple(item[3]))
            spans[item[0]] = (key, row[0][0] if isinstance(row[0], list) else item[0])
    entries: list[Entry] = []
    offset = following - 1
    while offset in found:
        entries.append(found[offset])
        offset -= 1
    entries.reverse()
    kept: dict[str, tuple[int, int]] = {}
    for entry in entries:
        key, row_first = spans[entry.offset]
        kept[key] = (row_first, entry.offset)
    return entries, kept
