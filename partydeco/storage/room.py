"""``room.storage``: the per-room view users call, and its transactions.

Values are encoded with msgspec as msgpack, so anything msgspec can encode can be
stored (``dict``, ``list``, ``str``, numbers, ``bytes``, ``datetime``, ``Struct`` …);
reads give back the plain decoded form (a ``Struct`` comes back as a ``dict``).
"""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, overload

from partydeco.storage.base import (
    KeyRange,
    RoomKey,
    StorageBackend,
    WriteBatch,
)
from partydeco.storage.errors import (
    InvalidKeyError,
    StorageError,
)
from partydeco.storage.values import (
    alarm_seconds,
    decode_value,
    encode_key,
    encode_value,
    key_list,
    key_range,
)

__all__ = ["RoomStorage", "StorageTransaction"]

# The open transactions of the current context, keyed by (backend id, room): storage
# calls made inside ``async with storage.transaction():`` (even from tasks started
# there) go through the transaction instead of straight to the backend.
_open_transactions: contextvars.ContextVar[dict[tuple[int, RoomKey], StorageTransaction]] = (
    contextvars.ContextVar("partydeco_storage_transactions", default={})  # noqa: B039
)


class _StorageOps(ABC):
    """The user-facing storage API, written once over three primitives."""

    @abstractmethod
    async def _read(self, keys: list[bytes]) -> dict[bytes, bytes]: ...

    @abstractmethod
    async def _scan(self, key_range: KeyRange) -> list[tuple[bytes, bytes]]: ...

    @abstractmethod
    async def _write(self, batch: WriteBatch) -> int: ...

    @overload
    async def get(self, key: str) -> Any: ...

    @overload
    async def get(self, key: Iterable[str]) -> dict[str, Any]: ...

    async def get(self, key: str | Iterable[str]) -> Any:
        """Read one value, or several.

        ``await storage.get("k")`` returns the value or ``None`` when the key is absent;
        ``await storage.get(["a", "b"])`` returns a ``dict`` of the keys that exist.
        """
        if isinstance(key, str):
            raw = encode_key(key)
            found = await self._read([raw])
            value = found.get(raw)
            return None if value is None else decode_value(value)
        names = key_list(key)
        encoded = {encode_key(name): name for name in names}
        found = await self._read(list(encoded))
        return {encoded[k]: decode_value(v) for k, v in found.items()}

    @overload
    async def put(self, key: str, value: Any) -> None: ...

    @overload
    async def put(self, key: Mapping[str, Any]) -> None: ...

    async def put(self, key: str | Mapping[str, Any], value: Any = None) -> None:
        """Store a value under a key, or several entries at once (atomically).

        ``await storage.put("k", {"n": 1})`` or ``await storage.put({"a": 1, "b": 2})``.

        Raises:
            KeyTooLargeError: a key is over 2 KiB in UTF-8.
            ValueTooLargeError: a value is over 128 KiB once encoded.
            UnsupportedValueError: msgspec cannot encode a value.
        """
        if isinstance(key, str):
            entries: Mapping[str, Any] = {key: value}
        elif isinstance(key, Mapping):
            entries = key
        else:
            raise InvalidKeyError(
                f"put() takes a str key and a value, or a mapping, not {type(key).__name__}"
            )
        batch = WriteBatch()
        for name, item in entries.items():
            batch.changes[encode_key(name)] = encode_value(name, item)
        if batch.changes:
            await self._write(batch)

    @overload
    async def delete(self, key: str) -> bool: ...

    @overload
    async def delete(self, key: Iterable[str]) -> int: ...

    async def delete(self, key: str | Iterable[str]) -> bool | int:
        """Delete a key (returns whether it existed) or several (returns how many existed)."""
        if isinstance(key, str):
            batch = WriteBatch({encode_key(key): None})
            return await self._write(batch) > 0
        batch = WriteBatch(dict.fromkeys((encode_key(name) for name in key_list(key)), None))
        if not batch.changes:
            return 0
        return await self._write(batch)

    async def delete_all(self) -> None:
        """Delete every key of this room (its alarm is kept)."""
        await self._write(WriteBatch(clear=True))

    async def list(
        self,
        *,
        prefix: str | None = None,
        start: str | None = None,
        start_after: str | None = None,
        end: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Return entries in key order as a ``dict`` (which keeps that order).

        Args:
            prefix: only keys starting with this string.
            start: only keys ``>= start``.
            start_after: only keys ``> start_after`` (not together with ``start``).
            end: only keys ``< end``.
            reverse: descending order; ``limit`` then keeps the last keys.
            limit: at most this many entries.

        Keys are compared as UTF-8 bytes, which is also Python's ``str`` order.
        """
        query = key_range(
            prefix=prefix, start=start, start_after=start_after, end=end,
            reverse=reverse, limit=limit,
        )
        if query.empty:
            return {}
        rows = await self._scan(query)
        return {k.decode("utf-8"): decode_value(v) for k, v in rows}


class RoomStorage(_StorageOps):
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
    """

    __slots__ = ("_backend", "_room")

    def __init__(self, backend: StorageBackend, party: str, room: str) -> None:
        self._backend = backend
        self._room = RoomKey(party, room)

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

    async def _read(self, keys: list[bytes]) -> dict[bytes, bytes]:
        tx = self._current()
        if tx is not None:
            return await tx._read(keys)
        return await self._backend.get(self._room, keys)

    async def _scan(self, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        tx = self._current()
        if tx is not None:
            return await tx._scan(key_range)
        return await self._backend.scan(self._room, key_range)

    async def _write(self, batch: WriteBatch) -> int:
        tx = self._current()
        if tx is not None:
            return await tx._write(batch)
        async with self._backend.lock(self._room):
            return await self._backend.write(self._room, batch)

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
        async with self._backend.lock(self._room):
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
            await tx._commit()

    # -- alarms ----------------------------------------------------------------------

    async def set_alarm(self, when: datetime | float) -> None:
        """Schedule this room's alarm, replacing any earlier one (one alarm per room).

        Args:
            when: an aware ``datetime``, or Unix epoch **seconds** as returned by
                ``time.time()`` (PartyKit takes milliseconds; a value that can only be
                milliseconds is refused with a hint). A time in the past fires at once.
        """
        await self._backend.set_alarm(self._room, alarm_seconds(when))

    async def get_alarm(self) -> float | None:
        """Return the pending alarm as epoch seconds, or ``None``."""
        return await self._backend.get_alarm(self._room)

    async def delete_alarm(self) -> None:
        """Cancel the pending alarm, if any."""
        await self._backend.set_alarm(self._room, None)


class StorageTransaction(_StorageOps):
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

    async def _read(self, keys: list[bytes]) -> dict[bytes, bytes]:
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

    async def _scan(self, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
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

    async def _write(self, batch: WriteBatch) -> int:
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

