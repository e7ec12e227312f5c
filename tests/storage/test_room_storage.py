"""Storage semantics, run against every backend (memory, SQLite and Redis)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from partydeco.errors import PartydecoError
from partydeco.storage import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    InvalidAlarmError,
    InvalidKeyError,
    KeyTooLargeError,
    MemoryStorage,
    RoomKey,
    RoomStorage,
    SqliteStorage,
    StorageBackend,
    StorageClosedError,
    StorageError,
    UnsupportedValueError,
    ValueTooLargeError,
)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    made: StorageBackend
    if request.param == "memory":
        made = MemoryStorage()
    elif request.param == "redis":
        from partydeco.storage.redis import RedisStorage

        server = request.getfixturevalue("redis_server")
        made = RedisStorage(server.url, prefix=request.getfixturevalue("redis_prefix"))
    else:
        made = SqliteStorage(tmp_path / "data" / "storage.db")
    async with made:
        yield made


@pytest.fixture
def storage(backend: StorageBackend) -> RoomStorage:
    return RoomStorage(backend, "main", "room-1")


# -- basic reads and writes -------------------------------------------------------------


async def test_put_get_single(storage: RoomStorage) -> None:
    assert await storage.get("missing") is None
    await storage.put("a", {"n": 1, "tags": ["x", "y"]})
    assert await storage.get("a") == {"n": 1, "tags": ["x", "y"]}
    await storage.put("a", 2)
    assert await storage.get("a") == 2


async def test_get_many_returns_only_existing(storage: RoomStorage) -> None:
    await storage.put({"a": 1, "b": "two", "c": None})
    assert await storage.get(["a", "b", "c", "nope"]) == {"a": 1, "b": "two", "c": None}
    assert await storage.get([]) == {}
    assert await storage.get(("b",)) == {"b": "two"}


class Point(msgspec.Struct):
    x: int
    y: int


async def test_values_roundtrip_through_msgpack(storage: RoomStorage) -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    values = {
        "str": "héllo ✓",
        "int": -(2**63),
        "float": 1.5,
        "bool": True,
        "none": None,
        "bytes": b"\x00\xff",
        "list": [1, [2, {"three": 3}]],
        "datetime": when,
        "struct": Point(1, 2),
    }
    await storage.put(values)
    got = await storage.get(list(values))
    assert got["struct"] == {"x": 1, "y": 2}
    got.pop("struct")
    values.pop("struct")
    assert got == values


async def test_stored_values_are_copies(storage: RoomStorage) -> None:
    value = {"items": [1]}
    await storage.put("k", value)
    value["items"].append(2)
    assert await storage.get("k") == {"items": [1]}


async def test_delete_single_and_many(storage: RoomStorage) -> None:
    await storage.put({"a": 1, "b": 2, "c": 3})
    assert await storage.delete("a") is True
    assert await storage.delete("a") is False
    assert await storage.delete(["b", "c", "zzz"]) == 2
    assert await storage.delete([]) == 0
    assert await storage.list() == {}


async def test_delete_all_keeps_alarm(storage: RoomStorage) -> None:
    await storage.put({"a": 1, "b": 2})
    await storage.set_alarm(time.time() + 3600)
    await storage.delete_all()
    assert await storage.list() == {}
    assert await storage.get_alarm() is not None


async def test_rooms_and_parties_are_isolated(backend: StorageBackend) -> None:
    one = RoomStorage(backend, "main", "r")
    other_room = RoomStorage(backend, "main", "r2")
    other_party = RoomStorage(backend, "user", "r")
    await one.put("k", 1)
    await other_room.put("k", 2)
    await other_party.put("k", 3)
    assert [await s.get("k") for s in (one, other_room, other_party)] == [1, 2, 3]
    await one.delete_all()
    assert await other_room.get("k") == 2
    assert await other_party.get("k") == 3


# -- listing ----------------------------------------------------------------------------

KEYS = ["", "a", "a/1", "a/2", "a/10", "a\x00", "a\uffff", "ab", "b", "é", "😀", "z", "zz"]


async def test_list_is_in_key_order(storage: RoomStorage) -> None:
    await storage.put({k: i for i, k in enumerate(reversed(KEYS))})
    listed = await storage.list()
    assert list(listed) == sorted(KEYS)
    assert list(await storage.list(reverse=True)) == sorted(KEYS, reverse=True)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"prefix": "a/"}, ["a/1", "a/10", "a/2"]),
        ({"prefix": "a"}, ["a", "a\x00", "a/1", "a/10", "a/2", "ab", "a\uffff"]),
        ({"prefix": "a\uffff"}, ["a\uffff"]),
        ({"prefix": "😀"}, ["😀"]),
        ({"prefix": "nothing"}, []),
        ({"start": "b"}, ["b", "z", "zz", "é", "😀"]),
        ({"start_after": "b"}, ["z", "zz", "é", "😀"]),
        ({"start_after": "a"}, ["a\x00", "a/1", "a/10", "a/2", "ab", "a\uffff", "b", "z", "zz",
                                "é", "😀"]),
        ({"end": "a/2"}, ["", "a", "a\x00", "a/1", "a/10"]),
        ({"start": "a/1", "end": "a/2"}, ["a/1", "a/10"]),
        ({"start": "z", "end": "b"}, []),
        ({"limit": 3}, ["", "a", "a\x00"]),
        ({"limit": 0}, []),
        ({"reverse": True, "limit": 2}, ["😀", "é"]),
        ({"prefix": "a/", "reverse": True, "limit": 2}, ["a/2", "a/10"]),
        ({"prefix": "a", "start_after": "a/2", "end": "b"}, ["ab", "a\uffff"]),
        ({"prefix": "a", "start_after": "a/2", "end": "ab"}, []),
        ({"prefix": "z", "start": "a"}, ["z", "zz"]),
    ],
)
async def test_list_ranges(
    storage: RoomStorage, kwargs: dict[str, object], expected: list[str]
) -> None:
    await storage.put({k: k for k in KEYS})
    result = await storage.list(**kwargs)  # type: ignore[arg-type]
    assert list(result) == expected
    assert all(result[k] == k for k in result)


async def test_list_rejects_bad_arguments(storage: RoomStorage) -> None:
    with pytest.raises(ValueError, match="not both"):
        await storage.list(start="a", start_after="a")
    with pytest.raises(ValueError, match="limit"):
        await storage.list(limit=-1)


# -- limits and bad input -----------------------------------------------------------------


async def test_key_size_limit(storage: RoomStorage) -> None:
    ok = "k" * MAX_KEY_BYTES
    await storage.put(ok, 1)
    assert await storage.get(ok) == 1
    with pytest.raises(KeyTooLargeError) as info:
        await storage.put("k" * (MAX_KEY_BYTES + 1), 1)
    assert info.value.size == MAX_KEY_BYTES + 1
    assert info.value.limit == 2048
    assert "2048 bytes" in str(info.value)
    # The limit counts UTF-8 bytes, not characters: 683 * 3 bytes = 2049.
    with pytest.raises(KeyTooLargeError):
        await storage.get("€" * 683)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StorageError)
    assert isinstance(info.value, PartydecoError)


async def test_value_size_limit(storage: RoomStorage) -> None:
    # msgpack bin 32 header is 5 bytes.
    fits = b"x" * (MAX_VALUE_BYTES - 5)
    await storage.put("big", fits)
    assert await storage.get("big") == fits
    with pytest.raises(ValueTooLargeError) as info:
        await storage.put("big2", b"x" * (MAX_VALUE_BYTES - 4))
    assert info.value.size == MAX_VALUE_BYTES + 1
    assert "big2" in str(info.value)
    assert "131072" in str(info.value)
    assert await storage.get("big2") is None


async def test_multi_put_is_checked_before_writing(storage: RoomStorage) -> None:
    with pytest.raises(ValueTooLargeError):
        await storage.put({"small": 1, "huge": "x" * MAX_VALUE_BYTES})
    assert await storage.get("small") is None


async def test_invalid_keys_and_values(storage: RoomStorage) -> None:
    with pytest.raises(InvalidKeyError, match="iterable of str keys, not int"):
        await storage.get(1)  # type: ignore[call-overload]
    with pytest.raises(InvalidKeyError, match="must be str"):
        await storage.delete([1])  # type: ignore[list-item]
    with pytest.raises(InvalidKeyError):
        await storage.put({b"k": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidKeyError, match="Unicode"):
        await storage.put("\ud800", 1)
    with pytest.raises(UnsupportedValueError, match="object"):
        await storage.put("k", object())
    with pytest.raises(TypeError):
        await storage.put("k", {1, 2j})


# -- transactions -------------------------------------------------------------------------


async def test_concurrent_read_modify_write_transactions(storage: RoomStorage) -> None:
    async def bump() -> None:
        async with storage.transaction() as tx:
            n = await tx.get("n") or 0
            await asyncio.sleep(0)  # let every other writer run in between
            await tx.put("n", n + 1)

    await asyncio.gather(*(bump() for _ in range(40)))
    assert await storage.get("n") == 40


async def test_plain_writes_wait_for_open_transaction(storage: RoomStorage) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with storage.transaction() as tx:
            n = await tx.get("n") or 0
            entered.set()
            await release.wait()
            await tx.put("n", n + 10)

    task = asyncio.create_task(slow())
    await entered.wait()
    writer = asyncio.create_task(storage.put("n", 1))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not writer.done()
    release.set()
    await asyncio.gather(task, writer)
    assert await storage.get("n") == 1  # the plain put ran after the transaction


async def test_transaction_reads_own_writes_and_commits_at_end(
    backend: StorageBackend, storage: RoomStorage
) -> None:
    other = RoomStorage(backend, "main", "room-1")
    await storage.put({"a": 1, "b": 2, "c": 3})
    async with storage.transaction() as tx:
        await tx.put("b", 20)
        assert await tx.delete("c") is True
        assert await tx.delete("c") is False
        assert await tx.delete(["a", "zz"]) == 1
        await tx.put("d", 4)
        assert await tx.get("b") == 20
        assert await tx.get(["a", "b", "c", "d"]) == {"b": 20, "d": 4}
        assert await tx.list() == {"b": 20, "d": 4}
        # Nothing is visible outside before the block ends.
        assert await other.backend.get(other.room_key, [b"d"]) == {}
    assert await other.list() == {"b": 20, "d": 4}


async def test_transaction_list_merges_pending_writes(storage: RoomStorage) -> None:
    await storage.put({f"k{i}": i for i in range(6)})
    async with storage.transaction() as tx:
        await tx.delete(["k0", "k1"])
        await tx.put("k15", 15)
        assert list(await tx.list(limit=3)) == ["k15", "k2", "k3"]
        assert list(await tx.list(reverse=True, limit=2)) == ["k5", "k4"]
        assert list(await tx.list(prefix="k1")) == ["k15"]


async def test_transaction_delete_all_then_put(storage: RoomStorage) -> None:
    await storage.put({"a": 1, "b": 2})
    async with storage.transaction() as tx:
        await tx.delete_all()
        assert await tx.get("a") is None
        assert await tx.delete("b") is False
        await tx.put("c", 3)
        assert await tx.list() == {"c": 3}
    assert await storage.list() == {"c": 3}


async def test_exception_rolls_back(storage: RoomStorage) -> None:
    await storage.put("n", 1)
    with pytest.raises(RuntimeError, match="boom"):
        async with storage.transaction() as tx:
            await tx.put("n", 2)
            await tx.delete_all()
            raise RuntimeError("boom")
    assert await storage.list() == {"n": 1}
    # The lock was released: a new transaction runs.
    async with storage.transaction() as tx:
        await tx.put("n", 3)
    assert await storage.get("n") == 3


async def test_explicit_rollback(storage: RoomStorage) -> None:
    async with storage.transaction() as tx:
        await tx.put("n", 2)
        tx.rollback()
        with pytest.raises(StorageError, match="rolled back"):
            await tx.get("n")
    assert await storage.get("n") is None


async def test_room_storage_calls_join_the_open_transaction(storage: RoomStorage) -> None:
    async with storage.transaction() as tx:
        await storage.put("a", 1)  # would deadlock if it waited for the room lock
        assert await tx.get("a") == 1
        await asyncio.gather(storage.put("b", 2), storage.put("c", 3))
        async with storage.transaction() as inner:
            assert inner is tx
            await inner.put("d", 4)
        tx.rollback()
    assert await storage.list() == {}


# -- alarms -------------------------------------------------------------------------------


async def test_alarm_set_get_replace_delete(storage: RoomStorage) -> None:
    assert await storage.get_alarm() is None
    at = time.time() + 60
    await storage.set_alarm(at)
    assert await storage.get_alarm() == pytest.approx(at)
    when = datetime.now(UTC) + timedelta(hours=1)
    await storage.set_alarm(when)
    assert await storage.get_alarm() == pytest.approx(when.timestamp())
    await storage.delete_alarm()
    assert await storage.get_alarm() is None
    await storage.delete_alarm()  # deleting nothing is fine


async def test_alarm_times_are_validated(storage: RoomStorage) -> None:
    with pytest.raises(InvalidAlarmError, match="aware datetime"):
        await storage.set_alarm(datetime.now())
    with pytest.raises(InvalidAlarmError, match="milliseconds"):
        await storage.set_alarm(time.time() * 1000)
    with pytest.raises(InvalidAlarmError):
        await storage.set_alarm(math.nan)
    with pytest.raises(InvalidAlarmError):
        await storage.set_alarm("soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidAlarmError):
        await storage.set_alarm(True)
    assert await storage.get_alarm() is None


async def test_due_alarms_across_rooms(backend: StorageBackend) -> None:
    now = time.time()
    rooms = {name: RoomStorage(backend, "main", name) for name in ("late", "soon", "past")}
    await rooms["late"].set_alarm(now + 3600)
    await rooms["soon"].set_alarm(now + 1)
    await rooms["past"].set_alarm(now - 10)
    await RoomStorage(backend, "user", "past").set_alarm(now - 5)
    due = await backend.due_alarms(now)
    assert [room for room, _ in due] == [RoomKey("main", "past"), RoomKey("user", "past")]
    upcoming = await backend.due_alarms(math.inf, limit=3)
    assert [room.room for room, _ in upcoming] == ["past", "past", "soon"]


async def test_delete_alarm_if_unchanged(backend: StorageBackend) -> None:
    room = RoomStorage(backend, "main", "r")
    seen: list[tuple[RoomKey, float | None]] = []
    backend.add_alarm_listener(lambda key, at: seen.append((key, at)))
    await room.set_alarm(100.0)
    assert not await backend.delete_alarm_if(room.room_key, 99.0)
    assert await room.get_alarm() == 100.0
    assert await backend.delete_alarm_if(room.room_key, 100.0)
    assert await room.get_alarm() is None
    assert seen == [(room.room_key, 100.0), (room.room_key, None)]


# -- lifecycle ----------------------------------------------------------------------------


async def test_closed_backend_refuses_calls(backend: StorageBackend) -> None:
    await backend.close()
    with pytest.raises(StorageClosedError):
        await RoomStorage(backend, "main", "r").get("k")
    await backend.close()  # idempotent


async def test_sqlite_data_and_alarms_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "rooms.db"
    async with SqliteStorage(path) as first:
        room = RoomStorage(first, "main", "r")
        await room.put({"a": 1, "b": [2]})
        await room.set_alarm(1234.5)
    async with SqliteStorage(path) as second:
        room = RoomStorage(second, "main", "r")
        assert await room.list() == {"a": 1, "b": [2]}
        assert await room.get_alarm() == 1234.5
        assert await second.due_alarms(2000.0) == [(RoomKey("main", "r"), 1234.5)]


async def test_memory_backend_forgets_empty_rooms() -> None:
    backend = MemoryStorage()
    for i in range(100):
        room = RoomStorage(backend, "main", f"r{i}")
        async with room.transaction() as tx:
            await tx.put("k", i)
        await room.delete("k")
    assert "rooms=0" in repr(backend)
    assert backend._locks == {}
