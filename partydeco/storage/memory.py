"""An in-memory storage backend, for tests and throwaway servers.

Data lives in this process only and is gone when it exits. Values are kept encoded,
so the memory backend enforces the same limits and copies values the same way as a
persistent one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from partydeco.storage.base import KeyRange, RoomKey, StorageBackend, WriteBatch

__all__ = ["MemoryStorage"]


class _RoomData:
    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted; the same set as ``values``


class MemoryStorage(StorageBackend):
    """Keeps every room's data in dictionaries of this process (``"memory://"``)."""

    def __init__(self) -> None:
        super().__init__()
        # room -> its data; a room whose last key is deleted is dropped.
        self._rooms: dict[RoomKey, _RoomData] = {}
        # room -> alarm time in epoch seconds.
        self._alarms: dict[RoomKey, float] = {}

    def __repr__(self) -> str:
        return f"MemoryStorage(rooms={len(self._rooms)}, alarms={len(self._alarms)})"

    async def get(self, room: RoomKey, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the stored values of those *keys* that exist."""
        self._check_open()
        data = self._rooms.get(room)
        if data is None:
            return {}
        return {key: data.values[key] for key in keys if key in data.values}

    async def scan(self, room: RoomKey, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        """Return ``(key, value)`` pairs inside *key_range*, in its order and limit."""
        self._check_open()
        data = self._rooms.get(room)
        if data is None or key_range.empty:
            return []
        lo = 0 if key_range.low is None else bisect.bisect_left(data.keys, key_range.low)
        hi = len(data.keys) if key_range.high is None else bisect.bisect_left(
            data.keys, key_range.high
        )
        if hi <= lo:
            return []
        limit = key_range.limit
        if key_range.reverse:
            start = lo if limit is None else max(lo, hi - limit)
            selected = data.keys[start:hi][::-1]
        else:
            end = hi if limit is None else min(hi, lo + limit)
            selected = data.keys[lo:end]
        return [(key, data.values[key]) for key in selected]

    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        """Apply *batch* atomically; return how many deleted keys existed."""
        self._check_open()
        data = self._rooms.get(room)
        if batch.clear and data is not None:
            data.values.clear()
            data.keys.clear()
        deleted = 0
        for key, value in batch.changes.items():
            if value is None:
                if data is not None and data.values.pop(key, None) is not None:
                    del data.keys[bisect.bisect_left(data.keys, key)]
                    deleted += 1
                continue
            if data is None:
                data = self._rooms[room] = _RoomData()
            if key not in data.values:
                bisect.insort(data.keys, key)
            data.values[key] = value
        if data is not None and not data.values:
            self._rooms.pop(room, None)
        return deleted

    async def get_alarm(self, room: RoomKey) -> float | None:
        """Return the alarm time of *room*, or ``None``."""
        self._check_open()
        return self._alarms.get(room)

    async def _store_alarm(self, room: RoomKey, at: float | None) -> None:
        self._check_open()
        if at is None:
            self._alarms.pop(room, None)
        else:
            self._alarms[room] = at

    async def _remove_alarm_if(self, room: RoomKey, at: float) -> bool:
        self._check_open()
        if self._alarms.get(room) == at:
            del self._alarms[room]
            return True
        return False

    async def due_alarms(self, until: float, limit: int = 100) -> list[tuple[RoomKey, float]]:
        """Return up to *limit* alarms with ``time <= until``, earliest first."""
        self._check_open()
        due = [(at, room) for room, at in self._alarms.items() if at <= until or until == math.inf]
        due.sort()
        return [(room, at) for at, room in due[:limit]]
