"""The storage backend interface and its limits.

A backend is a byte-level key-value store partitioned by room, plus one alarm time
per room. Everything user-facing (msgpack encoding, limits, argument shapes,
transactions) lives in :mod:`partydeco.storage.room`, so a new backend (SQLite,
memory, Redis later) only implements the few async methods of
:class:`StorageBackend`.

Keys reach a backend as UTF-8 bytes and must be ordered bytewise; for UTF-8 that is
the same order as Python's ``str`` comparison, so listings come back in the order
``sorted()`` gives.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from partydeco.storage.errors import (
    InvalidAlarmError,
    StorageClosedError,
)

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "AlarmListener",
    "KeyRange",
    "RoomKey",
    "StorageBackend",
    "WriteBatch",
]

#: Largest key, in bytes of its UTF-8 encoding (PartyKit / Durable Objects: 2 KiB).
MAX_KEY_BYTES = 2048
#: Largest value, in bytes of its msgpack encoding (PartyKit / Durable Objects: 128 KiB).
MAX_VALUE_BYTES = 128 * 1024


class RoomKey(NamedTuple):
    """Which room's data: the party name and the room id."""

    party: str
    room: str


@dataclass(frozen=True, slots=True)
class KeyRange:
    """A half-open range of encoded keys, ``low <= key < high``, in bytewise order.

    ``None`` means unbounded on that side. ``limit`` caps the number of entries and
    ``reverse`` returns them from the high end down.
    """

    low: bytes | None = None
    high: bytes | None = None
    reverse: bool = False
    limit: int | None = None

    def contains(self, key: bytes) -> bool:
        """Whether *key* lies inside the range (the limit is not considered)."""
        if self.low is not None and key < self.low:
            return False
        return self.high is None or key < self.high

    @property
    def empty(self) -> bool:
        """Whether no key can be inside the range (or the limit is zero)."""
        if self.limit == 0:
            return True
        return self.low is not None and self.high is not None and self.low >= self.high


@dataclass(slots=True)
class WriteBatch:
    """Writes applied atomically to one room: first ``clear`` (delete every key),
    then ``changes`` in any order, where ``None`` deletes a key."""

    changes: dict[bytes, bytes | None] = field(default_factory=dict)
    clear: bool = False


#: Called after a room's alarm changed: ``(room, new time in epoch seconds or None)``.
AlarmListener = Callable[[RoomKey, "float | None"], None]


def check_alarm_time(at: float) -> float:
    """Validate an alarm time in epoch seconds and return it as a float."""
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise InvalidAlarmError(
            f"alarm time must be epoch seconds or an aware datetime, not {type(at).__name__}"
        )
    value = float(at)
    if not math.isfinite(value) or value < 0:
        raise InvalidAlarmError(f"alarm time must be a finite, non-negative number, not {at!r}")
    return value


class _LockEntry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class StorageBackend(ABC):
    """What a storage backend implements: a per-room byte key-value store and alarms.

    Subclasses implement the abstract methods; :meth:`lock` serializes writers of one
    room in this process (a networked backend overrides it with a distributed lock).
    Alarm times are Unix epoch seconds as floats.
    """

    def __init__(self) -> None:
        # room -> lock plus the number of tasks holding or waiting for it; entries are
        # dropped when nobody uses them, so many short-lived rooms leave nothing behind.
        self._locks: dict[RoomKey, _LockEntry] = {}
        # called after every alarm change, in registration order (the scheduler).
        self._alarm_listeners: list[AlarmListener] = []
        self._closed = False

    # -- key-value -------------------------------------------------------------------

    @abstractmethod
    async def get(self, room: RoomKey, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the stored values of those *keys* that exist."""

    @abstractmethod
    async def scan(self, room: RoomKey, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        """Return ``(key, value)`` pairs inside *key_range*, in its order and limit."""

    @abstractmethod
    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        """Apply *batch* atomically and durably; return how many deleted keys existed."""

    @asynccontextmanager
    async def lock(self, room: RoomKey) -> AsyncIterator[None]:
        """Hold the write lock of *room* (not re-entrant)."""
        entry = self._locks.get(room)
        if entry is None:
            entry = self._locks[room] = _LockEntry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(room) is entry:
                del self._locks[room]

    # -- alarms ----------------------------------------------------------------------

    @abstractmethod
    async def get_alarm(self, room: RoomKey) -> float | None:
        """Return the alarm time of *room*, or ``None``."""

    @abstractmethod
    async def _store_alarm(self, room: RoomKey, at: float | None) -> None:
        """Persist (or with ``None`` remove) the alarm of *room*."""

    @abstractmethod
    async def _remove_alarm_if(self, room: RoomKey, at: float) -> bool:
        """Remove the alarm of *room* only if it is still set to *at*."""

    @abstractmethod
    async def due_alarms(self, until: float, limit: int = 100) -> list[tuple[RoomKey, float]]:
        """Return up to *limit* ``(room, time)`` alarms with ``time <= until``, earliest first.

        ``until=math.inf`` gives the next alarms whatever their time.
        """

    async def set_alarm(self, room: RoomKey, at: float | None) -> None:
        """Set (replace) or with ``None`` delete the alarm of *room*, then notify listeners."""
        value = None if at is None else check_alarm_time(at)
        await self._store_alarm(room, value)
        self._notify(room, value)

    async def delete_alarm_if(self, room: RoomKey, at: float) -> bool:
        """Delete the alarm of *room* if it is still *at* (a fired alarm that was not reset)."""
        removed = await self._remove_alarm_if(room, at)
        if removed:
            self._notify(room, None)
        return removed

    def add_alarm_listener(self, listener: AlarmListener) -> None:
        """Call *listener* ``(room, time or None)`` after every alarm change in this process."""
        self._alarm_listeners.append(listener)

    def remove_alarm_listener(self, listener: AlarmListener) -> None:
        """Stop calling *listener*; a listener that was not added is ignored."""
        if listener in self._alarm_listeners:
            self._alarm_listeners.remove(listener)

    def _notify(self, room: RoomKey, at: float | None) -> None:
        for listener in list(self._alarm_listeners):
            listener(room, at)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def close(self) -> None:
        """Release the backend's resources; later operations raise :class:`StorageClosedError`."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{type(self).__name__} is closed")

    async def __aenter__(self) -> StorageBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def bytes_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with *prefix*.

    ``None`` when there is none (the prefix is empty or all ``0xff``).
    """
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])

