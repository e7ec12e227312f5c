"""What the Redis storage backend adds to the common storage semantics (tested in
test_storage.py): data shared between processes, fenced writes and alarm claims."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from partydeco.storage import RoomKey, RoomStorage
from partydeco.storage.redis import NotOwnerError, RedisStorage, StorageUnavailableError
from tests.support import free_port
from tests.support.redis_server import RedisServer


@pytest.fixture
async def pair(
    redis_server: RedisServer, redis_prefix: str
) -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two backends on the same Redis and prefix, as two processes would have."""
    first = RedisStorage(redis_server.url, prefix=redis_prefix)
    second = RedisStorage(redis_server.url, prefix=redis_prefix)
    async with first, second:
        yield first, second


async def test_data_is_shared_between_backends(pair: tuple[RedisStorage, RedisStorage]) -> None:
    first, second = pair
    async with RoomStorage(first, "main", "r").transaction() as tx:
        await tx.put({"b": 2, "a": 1})
        await tx.delete("missing")
    assert await RoomStorage(second, "main", "r").list() == {"a": 1, "b": 2}
    assert await RoomStorage(second, "main", "other").list() == {}


async def test_writes_are_fenced_by_the_room_lease(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    first, _ = pair
    await first.start_cluster("node-1")
    room = RoomStorage(first, "main", "r")
    await room.put("k", 1)  # nobody holds the lease: allowed
    owner_key = first.keys.owner(RoomKey("main", "r"))
    await first.client.set(owner_key, "node-1")
    await room.put("k", 2)  # our own lease
    await first.client.set(owner_key, "node-2")
    with pytest.raises(NotOwnerError):
        await room.put("k", 3)
    with pytest.raises(NotOwnerError):
        async with room.transaction() as tx:
            await tx.put("k", 4)
    assert await room.get("k") == 2


async def test_a_due_alarm_is_claimed_by_one_process(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    first, second = pair
    await first.start_cluster("node-1")
    await second.start_cluster("node-2")
    key = RoomKey("main", "r")
    due = time.time() - 1
    later = time.time() + 3600
    await RoomStorage(first, "main", "r").set_alarm(due)
    await RoomStorage(first, "main", "later").set_alarm(later)
    assert await first.due_alarms(time.time()) == [(key, due)]
    # the other process no longer sees it, only the alarm that is not due yet
    assert await second.due_alarms(float("inf")) == [(RoomKey("main", "later"), later)]
    # the claimer asking again gets it again (its scheduler skips what it is firing)
    assert await first.due_alarms(time.time()) == [(key, due)]
    # when the claimer's claim is gone (its process died and the claim expired) ...
    await first.client.delete(f"{first.prefix}:claim:main/r")
    assert await second.due_alarms(time.time()) == [(key, due)]
    # ... and delivering it removes it for everyone
    assert await second.delete_alarm_if(key, due)
    assert await first.due_alarms(time.time()) == []


async def test_unreachable_redis_is_a_clear_error() -> None:
    backend = RedisStorage(f"redis://127.0.0.1:{free_port()}/0")
    async with backend:
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="Redis is unavailable"):
            await RoomStorage(backend, "main", "r").put("k", 1)
        assert time.monotonic() - started < 5
