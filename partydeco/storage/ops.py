"""The storage API users call, written once for ``room.storage`` and its transactions.

Values are encoded with msgspec as msgpack, so anything msgspec can encode can be
stored (``dict``, ``list``, ``str``, numbers, ``bytes``, ``datetime``, ``Struct`` …);
reads give back the plain decoded form (a ``Struct`` comes back as a ``dict``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, overload

from partydeco.storage.base import KeyRange, WriteBatch
from partydeco.storage.errors import InvalidKeyError
from partydeco.storage.values import decode_value, encode_key, encode_value, key_list, key_range

__all__ = ["StorageOps"]


class StorageOps(ABC):
    """The user-facing storage API, written once over three primitives."""

    @abstractmethod
    async def _read(self, keys: list[bytes], gated: bool) -> dict[bytes, bytes]: ...

    @abstractmethod
    async def _scan(self, key_range: KeyRange, gated: bool) -> list[tuple[bytes, bytes]]: ...

    @abstractmethod
    async def _write(self, batch: WriteBatch, gated: bool, confirmed: bool) -> int: ...

    @overload
    async def get(self, key: str, *, allow_concurrency: bool = False) -> Any: ...

    @overload
    async def get(
        self, key: Iterable[str], *, allow_concurrency: bool = False
    ) -> dict[str, Any]: ...

    async def get(self, key: str | Iterable[str], *, allow_concurrency: bool = False) -> Any:
        """Read one value, or several.

        ``await storage.get("k")`` returns the value or ``None`` when the key is absent;
        ``await storage.get(["a", "b"])`` returns a ``dict`` of the keys that exist.

        Args:
            key: a key, or an iterable of keys.
            allow_concurrency: let the room deliver other events while this read is in
                flight (see :mod:`partydeco.gate`; by default it does not).
        """
        gated = not allow_concurrency
        if isinstance(key, str):
            raw = encode_key(key)
            found = await self._read([raw], gated)
            value = found.get(raw)
            return None if value is None else decode_value(value)
        names = key_list(key)
        encoded = {encode_key(name): name for name in names}
        found = await self._read(list(encoded), gated)
        return {encoded[k]: decode_value(v) for k, v in found.items()}

    @overload
    async def put(
        self,
        key: str,
        value: Any,
        *,
        allow_concurrency: bool = False,
        allow_unconfirmed: bool = False,
    ) -> None: ...

    @overload
    async def put(
        self,
        key: Mapping[str, Any],
        *,
        allow_concurrency: bool = False,
        allow_unconfirmed: bool = False,
    ) -> None: ...

    async def put(
        self,
        key: str | Mapping[str, Any],
        value: Any = None,
        *,
        allow_concurrency: bool = False,
        allow_unconfirmed: bool = False,
    ) -> None:
        """Store a value under a key, or several entries at once (atomically).

        ``await storage.put("k", {"n": 1})`` or ``await storage.put({"a": 1, "b": 2})``.

        Args:
            key: a key, or a mapping of keys to values.
            value: the value, for a single key.
            allow_concurrency: let the room deliver other events while the write is in
                flight (by default it does not).
            allow_unconfirmed: let frames the room sends meanwhile go out before the
                write is durable (by default they wait for it).

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
            await self._write(batch, not allow_concurrency, not allow_unconfirmed)

    @overload
    async def delete(
        self, key: str, *, allow_concurrency: bool = False, allow_unconfirmed: bool = False
    ) -> bool: ...

    @overload
    async def delete(
        self,
        key: Iterable[str],
        *,
        allow_concurrency: bool = False,
        allow_unconfirmed: bool = False,
    ) -> int: ...

    async def delete(
        self,
        key: str | Iterable[str],
        *,
        allow_concurrency: bool = False,
        allow_unconfirmed: bool = False,
    ) -> bool | int:
        """Delete a key (returns whether it existed) or several (returns how many existed).

        ``allow_concurrency`` and ``allow_unconfirmed`` are as for :meth:`put`.
        """
        gated, confirmed = not allow_concurrency, not allow_unconfirmed
        if isinstance(key, str):
            batch = WriteBatch({encode_key(key): None})
            return await self._write(batch, gated, confirmed) > 0
        batch = WriteBatch(dict.fromkeys((encode_key(name) for name in key_list(key)), None))
        if not batch.changes:
            return 0
        return await self._write(batch, gated, confirmed)

    async def delete_all(
        self, *, allow_concurrency: bool = False, allow_unconfirmed: bool = False
    ) -> None:
        """Delete every key of this room (its alarm is kept).

        ``allow_concurrency`` and ``allow_unconfirmed`` are as for :meth:`put`.
        """
        await self._write(WriteBatch(clear=True), not allow_concurrency, not allow_unconfirmed)

    async def list(
        self,
        *,
        prefix: str | None = None,
        start: str | None = None,
        start_after: str | None = None,
        end: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
        allow_concurrency: bool = False,
    ) -> dict[str, Any]:
        """Return entries in key order as a ``dict`` (which keeps that order).

        Args:
            prefix: only keys starting with this string.
            start: only keys ``>= start``.
            start_after: only keys ``> start_after`` (not together with ``start``).
            end: only keys ``< end``.
            reverse: descending order; ``limit`` then keeps the last keys.
            limit: at most this many entries.
            allow_concurrency: as for :meth:`get`.

        Keys are compared as UTF-8 bytes, which is also Python's ``str`` order.
        """
        query = key_range(
            prefix=prefix, start=start, start_after=start_after, end=end,
            reverse=reverse, limit=limit,
        )
        if query.empty:
            return {}
        rows = await self._scan(query, not allow_concurrency)
        return {k.decode("utf-8"): decode_value(v) for k, v in rows}
