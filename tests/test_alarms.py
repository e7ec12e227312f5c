"""The alarm scheduler against real backends (no server involved)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from partydeco.alarms import AlarmScheduler
from partydeco.storage import MemoryStorage, RoomKey, RoomStorage, SqliteStorage, StorageBackend


@pytest.fixture(params=["memory", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    made: StorageBackend
    made = MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "s.db")
    async with made:
        yield made


class Recorder:
    """A fire callback that records calls and can fail the first few."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[RoomKey, float, float]] = []
        self.failures = failures
        self.changed = asyncio.Condition()

    async def __call__(self, room: RoomKey, at: float) -> None:
        async with self.changed:
            self.calls.append((room, at, time.time()))
            self.changed.notify_all()
        if len(self.calls) <= self.failures:
            raise RuntimeError("handler failed")

    async def wait_for(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.calls) >= count), timeout=10
            )


async def wait_until_cleared(storage: RoomStorage) -> None:
    """Wait until the room has no alarm, woken by the backend's alarm notifications."""
    changed = asyncio.Event()

    def listener(room: RoomKey, at: float | None) -> None:
        changed.set()

    async def watch() -> None:
        while True:
            changed.clear()
            if await storage.get_alarm() is None:
                return
            await changed.wait()

    storage.backend.add_alarm_listener(listener)
    try:
        await asyncio.wait_for(watch(), timeout=10)
    finally:
        storage.backend.remove_alarm_listener(listener)


async def test_fires_when_due_and_clears(backend: StorageBackend) -> None:
    fired = Recorder()
    scheduler = AlarmScheduler(backend, fired)
    await scheduler.start()
    try:
        room = RoomStorage(backend, "main", "r")
        at = time.time() + 0.1
        await room.set_alarm(at)
        await fired.wait_for(1)
        assert fired.calls[0][:2] == (RoomKey("main", "r"), at)
        assert fired.calls[0][2] >= at
        await wait_until_cleared(room)
    finally:
        await scheduler.stop()


async def test_overdue_alarm_fires_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "rooms.db"
    async with SqliteStorage(path) as first:
        await RoomStorage(first, "main", "sleepy").set_alarm(time.time() - 30)
    async with SqliteStorage(path) as second:
        fired = Recorder()
        scheduler = AlarmScheduler(second, fired)
        await scheduler.start()
        try:
            await fired.wait_for(1)
            assert fired.calls[0][0] == RoomKey("main", "sleepy")
            await wait_until_cleared(RoomStorage(second, "main", "sleepy"))
        finally:
            await scheduler.stop()


async def test_failed_handler_is_retried_with_backoff(backend: StorageBackend) -> None:
    fired = Recorder(failures=3)
    scheduler = AlarmScheduler(backend, fired, retry_delay=0.05)
    await scheduler.start()
    try:
        room = RoomStorage(backend, "main", "r")
        await room.set_alarm(time.time())
        await fired.wait_for(4)
        await wait_until_cleared(room)
        times = [t for _, _, t in fired.calls]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] >= 0.05
        assert gaps[1] >= 0.1
        assert gaps[2] >= 0.2
        assert len(fired.calls) == 4
    finally:
        await scheduler.stop()


async def test_gives_up_after_max_retries(backend: StorageBackend) -> None:
    fired = Recorder(failures=100)
    scheduler = AlarmScheduler(backend, fired, retry_delay=0.01, max_retries=2)
    await scheduler.start()
    try:
        room = RoomStorage(backend, "main", "r")
        await room.set_alarm(time.time())
        await wait_until_cleared(room)
        assert len(fired.calls) == 3
    finally:
        await scheduler.stop()


async def test_handler_may_schedule_the_next_alarm(backend: StorageBackend) -> None:
    room = RoomStorage(backend, "main", "ticker")
    calls: list[float] = []
    done = asyncio.Event()

    async def fire(key: RoomKey, at: float) -> None:
        calls.append(at)
        if len(calls) < 3:
            await room.set_alarm(time.time() + 0.02)
        else:
            done.set()

    scheduler = AlarmScheduler(backend, fire)
    await scheduler.start()
    try:
        await room.set_alarm(time.time())
        await asyncio.wait_for(done.wait(), timeout=10)
        await wait_until_cleared(room)
        assert len(calls) == 3
        assert calls == sorted(calls)
    finally:
        await scheduler.stop()


async def test_replaced_and_deleted_alarms(backend: StorageBackend) -> None:
    fired = Recorder()
    scheduler = AlarmScheduler(backend, fired)
    await scheduler.start()
    try:
        moved = RoomStorage(backend, "main", "moved")
        cancelled = RoomStorage(backend, "main", "cancelled")
        marker = RoomStorage(backend, "main", "marker")
        # A second of margin: on a loaded machine a SQLite write can take a while,
        # and the replaced and deleted alarms must not come due before they change.
        now = time.time()
        await moved.set_alarm(now + 1.0)
        await cancelled.set_alarm(now + 1.0)
        await moved.set_alarm(now + 1.2)  # replaces the first time
        await cancelled.delete_alarm()
        await marker.set_alarm(now + 1.5)
        await fired.wait_for(2)
        assert [(room.room, at) for room, at, _ in fired.calls] == [
            ("moved", now + 1.2),
            ("marker", now + 1.5),
        ]
    finally:
        await scheduler.stop()


async def test_many_rooms_due_at_once(backend: StorageBackend) -> None:
    fired = Recorder()
    scheduler = AlarmScheduler(backend, fired, batch=7)
    now = time.time()
    for i in range(30):
        await RoomStorage(backend, "main", f"r{i}").set_alarm(now - i)
    await scheduler.start()
    try:
        await fired.wait_for(30)
        assert sorted(room.room for room, _, _ in fired.calls) == sorted(f"r{i}" for i in range(30))
        for i in range(30):
            await wait_until_cleared(RoomStorage(backend, "main", f"r{i}"))
    finally:
        await scheduler.stop()


async def swallow_cancellation(started: asyncio.Event) -> None:
    """Wait until cancelled, then return normally: what a redis-py 8.1 command that is
    cancelled mid-flight often does (the task stays cancelling, nothing is raised)."""
    started.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


async def stop_time(scheduler: AlarmScheduler) -> float:
    """How long ``stop()`` took, up to 10 s (``wait_for`` cannot tell: ``stop()`` suppresses
    the cancellation a timeout sends, so a late stop still ends without TimeoutError)."""
    started = time.monotonic()
    await asyncio.wait_for(scheduler.stop(), 10)
    return time.monotonic() - started


class CancelSwallowingStorage(MemoryStorage):
    """Memory storage whose alarm reads return normally when cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()

    async def due_alarms(self, until: float, limit: int = 100) -> list[tuple[RoomKey, float]]:
        await swallow_cancellation(self.reading)
        return await super().due_alarms(until, limit)


async def test_stop_returns_when_the_backend_swallows_the_cancellation() -> None:
    backend = CancelSwallowingStorage()
    scheduler = AlarmScheduler(backend, Recorder())
    await scheduler.start()
    await asyncio.wait_for(backend.reading.wait(), 5)
    assert await stop_time(scheduler) < 2  # not after poll_interval (60 s)
    assert not scheduler.running


async def test_stop_returns_when_a_failing_handler_swallowed_the_cancellation() -> None:
    started = asyncio.Event()

    async def fire(room: RoomKey, at: float) -> None:
        await swallow_cancellation(started)
        raise RuntimeError("failed while stopping")

    async with MemoryStorage() as backend:
        scheduler = AlarmScheduler(backend, fire, retry_delay=3600)
        await scheduler.start()
        await RoomStorage(backend, "main", "r").set_alarm(time.time())
        await asyncio.wait_for(started.wait(), 5)
        assert await stop_time(scheduler) < 2  # not after the retry delay
        assert await backend.get_alarm(RoomKey("main", "r")) is not None  # still stored
