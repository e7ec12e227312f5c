"""``room.storage``: the storage of one room, as its handlers see it, and its transactions."""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from partydeco.storage.base import KeyRange, RoomKey, StorageBackend, WriteBatch
from partydeco.storage.errors import StorageError
from partydeco.storage.ops import StorageOps
from partydeco.storage.values import alarm_seconds

if TYPE_CHECKING:
    from partydeco.gate import Gate
    from partydeco.observability.metrics import PartyMeter

__all__ = ["RoomStorage", "StorageTransaction"]

T = TypeVar("T")

# The open transactions of the current context, keyed by (backend id, room): storage
# calls made inside ``async with storage.transaction():`` (even from tasks started
# there) go through the transaction instead of straight to the backend.
_open_transactions: contextvars.ContextVar[dict[tuple[int, RoomKey], StorageTransaction]] = (
    contextvars.ContextVar("partydeco_storage_transactions", default={})  # noqa: B039
)


class RoomStorage(StorageOps):
    """The storage of one room: ``room.storage``.

    Example::

        @party.on_request
        async def count(request, room):
            async with room.storage.transaction() as tx:
                n = (await tx.get("count") or 0) + 1
                await tx.put("count", n)
            return {"count": n}

    Writes of one room are serialized: a write waits for an open transaction of the
    same room to finish. Reads outside a transaction see committed data.

    A room's storage closes the room's gates (:mod:`partydeco.gate`): while a call is
    in flight the room delivers no other event, and while a write is in flight the
    frames it sends wait until the write is durable.

    Args:
        backend: the backend holding the data.
        party: the party's name.
        room: the room id.
        gate: the gates of the room this storage belongs to, if any.
        meter: the party's metrics, which time each operation, if any.
    """

    __slots__ = ("_backend", "_gate", "_meter", "_room")

    def __init__(
        self,
        backend: StorageBackend,
        party: str,
        room: str,
        gate: Gate | None = None,
        meter: PartyMeter | None = None,
    ) -> None:
        self._backend = backend
        self._room = RoomKey(party, room)
        self._gate = gate
        self._meter = meter

    def __repr__(self) -> str:
        return f"RoomStorage(party={self._room.party!r}, room={self._room.room!r})"

    @property
    def backend(self) -> StorageBackend:
        """The backend holding this room's data."""
        return self._backend

    @property
    def room_key(self) -> RoomKey:
        """``(party, room id)`` of this view."""
        return self._room

    def _current(self) -> StorageTransaction | None:
        tx = _open_transactions.get().get((id(self._backend), self._room))
        return tx if tx is not None and tx.active else None

    async def _read(self, keys: list[bytes], gated: bool) -> dict[bytes, bytes]:
        tx = self._current()
        if tx is not None:
            return await tx._read(keys, gated)
        async with self._gates(gated, False):
            return await self._timed("get", self._backend.get(self._room, keys))

    async def _scan(self, key_range: KeyRange, gated: bool) -> list[tuple[bytes, bytes]]:
        tx = self._current()
        if tx is not None:
            return await tx._scan(key_range, gated)
        async with self._gates(gated, False):
            return await self._timed("list", self._backend.scan(self._room, key_range))

    async def _write(self, batch: WriteBatch, gated: bool, confirmed: bool) -> int:
        tx = self._current()
        if tx is not None:
            return await tx._write(batch, gated, confirmed)
        async with self._gates(gated, confirmed), self._backend.lock(self._room):
            return await self._timed("write", self._backend.write(self._room, batch))

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        meter = self._meter
        if meter is None:
            return await call
        started = time.perf_counter()
        try:
            return await call
        finally:
            meter.storage_time(operation, time.perf_counter() - started)

    @asynccontextmanager
    async def _gates(self, gated: bool, confirmed: bool) -> AsyncIterator[None]:
        """Close the room's input gate (*gated*) and hold its output (*confirmed*)
        while the block runs."""
        gate = self._gate
        if gate is None or not (gated or confirmed):
            yield
            return
        if gated:
            gate.close()
        if confirmed:
            gate.start_write()
        try:
            yield
        finally:
            if confirmed:
                gate.end_write()
            if gated:
                gate.reopen()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StorageTransaction]:
        """Run a block atomically: ``async with room.storage.transaction() as tx:``.

        Reads inside see the block's own writes; the writes are committed together when
        the block ends, or discarded if it raises (or calls ``tx.rollback()``). Other
        writers of this room wait until the block is over, so a read-modify-write
        cannot lose an update. Calls on ``room.storage`` made inside the block take part
        in the transaction too. A nested ``transaction()`` joins the outer one. Alarms are
        not part of transactions.
        """
        existing = self._current()
        if existing is not None:
            yield existing
            return
        async with self._gates(True, True), self._backend.lock(self._room):
            tx = StorageTransaction(self._backend, self._room)
            slot = (id(self._backend), self._room)
            token = _open_transactions.set({**_open_transactions.get(), slot: tx})
            try:
                yield tx
            except BaseException:
                tx._finish()
                raise
            finally:
                _open_transactions.reset(token)
            await self._timed("transaction", tx._commit())

    # -- alarms ----------------------------------------------------------------------

    async def set_alarm(self, when: datetime | float) -> None:
        """Schedule this room's alarm, replacing any earlier one (one alarm per room).

        Args:
            when: an aware ``datetime``, or Unix epoch **seconds** as returned by
                ``time.time()`` (PartyKit takes milliseconds; a value that can only be
                milliseconds is refused with a hint). A time in the past fires at once.
        """
        at = alarm_seconds(when)
        async with self._gates(True, True):
            await self._backend.set_alarm(self._room, at)

    async def get_alarm(self) -> float | None:
        """Return the pending alarm as epoch seconds, or ``None``."""
        async with self._gates(True, False):
            return await self._backend.get_alarm(self._room)

    async def delete_alarm(self) -> None:
        """Cancel the pending alarm, if any."""
        async with self._gates(True, True):
            await self._backend.set_alarm(self._room, None)


class StorageTransaction(StorageOps):
    """The writes of one ``transaction()`` block, applied together on exit.

    Has the same ``get``/``put``/``delete``/``delete_all``/``list`` methods as
    :class:`RoomStorage`, plus :meth:`rollback`.
    """

    __slots__ = ("_active", "_backend", "_changes", "_cleared", "_room")

    def __init__(self, backend: StorageBackend, room: RoomKey) -> None:
        self._backend = backend
        self._room = room
        self._changes: dict[bytes, bytes | None] = {}
        self._cleared = False
        self._active = True

    def __repr__(self) -> str:
        state = "open" if self._active else "finished"
        return f"StorageTransaction(room={self._room.room!r}, {state}, writes={len(self._changes)})"

    @property
    def active(self) -> bool:
        """Whether the transaction's block is still running and not rolled back."""
        return self._active

    def rollback(self) -> None:
        """Discard every write of this transaction; later calls on it raise."""
        self._finish()

    def _finish(self) -> None:
        self._active = False
        self._changes.clear()

    def _check(self) -> None:
        if not self._active:
            raise StorageError("this storage transaction is finished or rolled back")

    async def _read(self, keys: list[bytes], gated: bool = True) -> dict[bytes, bytes]:
        self._check()
        result: dict[bytes, bytes] = {}
        missing: list[bytes] = []
        for key in keys:
            if key in self._changes:
                value = self._changes[key]
                if value is not None:
                    result[key] = value
            elif not self._cleared:
                missing.append(key)
        if missing:
            result.update(await self._backend.get(self._room, missing))
        return {key: result[key] for key in keys if key in result}

    async def _scan(self, key_range: KeyRange, gated: bool = True) -> list[tuple[bytes, bytes]]:
        self._check()
        overlay = {k: v for k, v in self._changes.items() if key_range.contains(k)}
        rows: dict[bytes, bytes] = {}
        if not self._cleared:
            hidden = sum(1 for v in overlay.values() if v is None)
            limit = None if key_range.limit is None else key_range.limit + hidden
            inner = KeyRange(key_range.low, key_range.high, key_range.reverse, limit)
            rows = dict(await self._backend.scan(self._room, inner))
        for key, value in overlay.items():
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
        ordered = sorted(rows.items(), reverse=key_range.reverse)
        if key_range.limit is not None:
            ordered = ordered[: key_range.limit]
        return ordered

    async def _write(self, batch: WriteBatch, gated: bool = True, confirmed: bool = True) -> int:
        # The transaction holds the room's gates from its start to its commit.
        self._check()
        deleted = 0
        if batch.clear:
            self._cleared = True
            self._changes.clear()
        deletions = [k for k, v in batch.changes.items() if v is None]
        if deletions:
            deleted = len(await self._read(deletions))
        self._changes.update(batch.changes)
        return deleted

    async def _commit(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._cleared or self._changes:
            await self._backend.write(self._room, WriteBatch(dict(self._changes), self._cleared))
        self._changes.clear()
