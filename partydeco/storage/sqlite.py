"""The embedded default backend: one SQLite file in WAL mode.

Every call runs on one dedicated thread that owns the connection, so the event loop
never waits on disk and calls are applied in the order they were made. A write
returns only after its SQLite transaction committed; with the default
``synchronous=FULL`` the commit is on disk, so it survives a ``kill -9`` (and a power
cut), and ``synchronous=NORMAL`` still survives a ``kill -9`` of the server.

One server process should use a file at a time: transactions are serialized by
in-process locks.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from partydeco.storage.base import KeyRange, RoomKey, StorageBackend, WriteBatch
from partydeco.storage.errors import StorageConfigError, StorageError

__all__ = ["SqliteStorage"]

T = TypeVar("T")

Synchronous = Literal["FULL", "NORMAL"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    party TEXT NOT NULL,
    room TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (party, room, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (
    party TEXT NOT NULL,
    room TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (party, room)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarms_by_time ON alarms (at);
"""

# Well under SQLite's limit on bound parameters per statement.
_CHUNK = 500


class _PendingWrite(NamedTuple):
    room: RoomKey
    batch: WriteBatch
    future: asyncio.Future[int]
    loop: asyncio.AbstractEventLoop


def _storage_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return StorageError(f"SQLite storage failed: {exc}")
    return exc


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if future.done():  # the writer was cancelled; its data is committed anyway
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class SqliteStorage(StorageBackend):
    """Stores every room in one SQLite database file (``"sqlite:///path/file.db"``).

    Args:
        path: the database file; its directory is created if missing.
        synchronous: ``"FULL"`` (default, fsync on every commit) or ``"NORMAL"``
            (faster; committed writes survive a crashed or killed process, but the
            last ones may be lost if the machine loses power).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL") -> None:
        super().__init__()
        mode = synchronous.upper()
        if mode not in ("FULL", "NORMAL"):
            raise StorageConfigError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = mode
        self._conn: sqlite3.Connection | None = None
        # Writes waiting for the storage thread, and whether a flush is queued for them.
        self._pending: list[_PendingWrite] = []
        self._flush_scheduled = False
        self._pending_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partydeco-sqlite")

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r}, synchronous={self.synchronous!r})"

    # -- plumbing --------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc

    def _connection(self) -> sqlite3.Connection:
        # Runs on the storage thread only.
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute("PRAGMA busy_timeout=5000")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    # -- key-value -------------------------------------------------------------------

    async def get(self, room: RoomKey, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the stored values of those *keys* that exist."""
        return await self._run(self._get, room, list(keys))

    def _get(self, room: RoomKey, keys: list[bytes]) -> dict[bytes, bytes]:
        conn = self._connection()
        found: dict[bytes, bytes] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value FROM kv WHERE party = ? AND room = ? AND key IN ({marks})",
                (room.party, room.room, *chunk),
            )
            found.update(rows)
        return found

    async def scan(self, room: RoomKey, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        """Return ``(key, value)`` pairs inside *key_range*, in its order and limit."""
        if key_range.empty:
            return []
        return await self._run(self._list, room, key_range)

    def _list(self, room: RoomKey, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        sql = "SELECT key, value FROM kv WHERE party = ? AND room = ?"
        params: list[object] = [room.party, room.room]
        if key_range.low is not None:
            sql += " AND key >= ?"
            params.append(key_range.low)
        if key_range.high is not None:
            sql += " AND key < ?"
            params.append(key_range.high)
        sql += " ORDER BY key DESC" if key_range.reverse else " ORDER BY key"
        if key_range.limit is not None:
            sql += " LIMIT ?"
            params.append(key_range.limit)
        return list(self._connection().execute(sql, params))

    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        """Apply *batch* atomically and durably; return how many deleted keys existed.

        Writes made while an earlier commit is running are committed together in one
        SQLite transaction (group commit, one savepoint each, so one failing batch
        does not undo the others); each caller resumes after its own data committed.
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._pending_lock:
            self._pending.append(_PendingWrite(room, batch, future, loop))
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        if schedule:
            self._executor.submit(self._flush)
        return await future

    def _flush(self) -> None:
        # Runs on the storage thread: commit every write queued so far in one go.
        with self._pending_lock:
            items, self._pending = self._pending, []
            self._flush_scheduled = False
        outcomes: list[int | BaseException] = []
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    conn.execute("SAVEPOINT batch")
                    try:
                        outcomes.append(self._apply(conn, item.room, item.batch))
                    except Exception as exc:
                        conn.execute("ROLLBACK TO batch")
                        outcomes.append(_storage_error(exc))
                    conn.execute("RELEASE batch")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            outcomes = [_storage_error(exc)] * len(items)
        for item, outcome in zip(items, outcomes, strict=True):
            item.loop.call_soon_threadsafe(_settle, item.future, outcome)

    @staticmethod
    def _apply(conn: sqlite3.Connection, room: RoomKey, batch: WriteBatch) -> int:
        ident = (room.party, room.room)
        deleted = 0
        if batch.clear:
            conn.execute("DELETE FROM kv WHERE party = ? AND room = ?", ident)
        puts = []
        for key, value in batch.changes.items():
            if value is None:
                cur = conn.execute(
                    "DELETE FROM kv WHERE party = ? AND room = ? AND key = ?", (*ident, key)
                )
                deleted += cur.rowcount
            else:
                puts.append((*ident, key, value))
        if puts:
            conn.executemany(
                "INSERT OR REPLACE INTO kv (party, room, key, value) VALUES (?, ?, ?, ?)", puts
            )
        return deleted

    # -- alarms ----------------------------------------------------------------------

    async def get_alarm(self, room: RoomKey) -> float | None:
        """Return the alarm time of *room*, or ``None``."""
        return await self._run(self._get_alarm, room)

    def _get_alarm(self, room: RoomKey) -> float | None:
        row = self._connection().execute(
            "SELECT at FROM alarms WHERE party = ? AND room = ?", (room.party, room.room)
        ).fetchone()
        return None if row is None else float(row[0])

    async def _store_alarm(self, room: RoomKey, at: float | None) -> None:
        await self._run(self._store_alarm_sync, room, at)

    def _store_alarm_sync(self, room: RoomKey, at: float | None) -> None:
        conn = self._connection()
        if at is None:
            conn.execute("DELETE FROM alarms WHERE party = ? AND room = ?", (room.party, room.room))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO alarms (party, room, at) VALUES (?, ?, ?)",
                (room.party, room.room, at),
            )

    async def _remove_alarm_if(self, room: RoomKey, at: float) -> bool:
        return await self._run(self._remove_alarm_if_sync, room, at)

    def _remove_alarm_if_sync(self, room: RoomKey, at: float) -> bool:
        cur = self._connection().execute(
            "DELETE FROM alarms WHERE party = ? AND room = ? AND at = ?",
            (room.party, room.room, at),
        )
        return cur.rowcount > 0

    async def due_alarms(self, until: float, limit: int = 100) -> list[tuple[RoomKey, float]]:
        """Return up to *limit* alarms with ``time <= until``, earliest first."""
        return await self._run(self._due_alarms, until, limit)

    def _due_alarms(self, until: float, limit: int) -> list[tuple[RoomKey, float]]:
        rows = self._connection().execute(
            "SELECT party, room, at FROM alarms WHERE at <= ? ORDER BY at LIMIT ?", (until, limit)
        )
        return [(RoomKey(party, room), float(at)) for party, room, at in rows]

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Close the database and stop the storage thread (idempotent)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
