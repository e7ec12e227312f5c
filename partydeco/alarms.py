"""The alarm scheduler: fires each room's stored alarm when it is due.

Alarms live in the storage backend (one per room), so they survive restarts: when
the scheduler starts it reads the earliest pending alarms and fires those that are
overdue at once. Delivery is at least once: the alarm stays stored until its
handler returned, a handler that raises is retried with exponential backoff, and
a crash in between means the alarm fires again after the restart.

An alarm may recur: when its delivery ends (done or given up) *repeat* may give
its next time, which replaces it. Crons are such alarms (:mod:`partydeco.crontab`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from partydeco.storage.base import RoomKey, StorageBackend

__all__ = ["AlarmScheduler", "FireAlarm", "RepeatAlarm"]

logger = logging.getLogger("partydeco")

#: ``fire(room, time)``: run the room's alarm handlers; raising asks for a retry.
FireAlarm = Callable[[RoomKey, float], Awaitable[None]]
#: ``repeat(room, time)``: the next time of an alarm whose delivery ended, or ``None``.
RepeatAlarm = Callable[[RoomKey, float], "float | None"]


class AlarmScheduler:
    """Watches a backend's alarms and calls *fire* for each due one.

    Args:
        backend: where alarms are stored.
        fire: ``await fire(room, time)`` runs the room's ``on_alarm`` handlers.
        retry_delay: seconds before the first retry of a failed alarm; each further
            retry waits twice as long (PartyKit / Durable Objects: 2 s).
        max_retries: retries after the first attempt before the alarm is dropped
            (Durable Objects: 6).
        max_retry_delay: cap on the wait between retries.
        poll_interval: seconds between re-reads of the backend even when nothing
            changed in this process (alarms set by another process sharing the
            backend); alarm changes in this process wake the scheduler at once.
        batch: how many due alarms are read at a time.
        on_retry: called with the party's name each time an alarm is retried.
        repeat: ``repeat(room, time)`` gives the next time of a recurring alarm once
            a delivery ended (done or given up), or ``None`` to drop it; it must be
            later than *time*. Without it every alarm is dropped after delivery.
    """

    def __init__(
        self,
        backend: StorageBackend,
        fire: FireAlarm,
        *,
        retry_delay: float = 2.0,
        max_retries: int = 6,
        max_retry_delay: float = 300.0,
        poll_interval: float = 60.0,
        batch: int = 100,
        on_retry: Callable[[str], None] | None = None,
        repeat: RepeatAlarm | None = None,
    ) -> None:
        self.backend = backend
        self._fire = fire
        self._repeat = repeat
        self.retry_delay = retry_delay
        self.max_retries = max_retries
        self.max_retry_delay = max_retry_delay
        self.poll_interval = poll_interval
        self.batch = batch
        self.on_retry = on_retry
        # room -> the task delivering its alarm (with retries); one at a time per room.
        self._firing: dict[RoomKey, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        # Set by stop(). Its cancellation alone is not enough: a redis-py command that
        # is cancelled may return normally, so the loops also check this flag.
        self._stopped = True

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<AlarmScheduler {state} firing={len(self._firing)}>"

    @property
    def running(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` was not."""
        return self._runner is not None and not self._runner.done()

    def is_firing(self, room: RoomKey) -> bool:
        """Whether *room*'s alarm is being delivered (or waiting for a retry)."""
        return room in self._firing

    async def start(self) -> None:
        """Start watching; overdue alarms (from before a restart) fire right away."""
        if self.running:
            return
        self._wake = asyncio.Event()
        self._stopped = False
        self.backend.add_alarm_listener(self._changed)
        self._runner = asyncio.create_task(self._run(), name="partydeco-alarms")

    async def stop(self) -> None:
        """Stop watching and cancel deliveries in progress (they stay stored)."""
        self.backend.remove_alarm_listener(self._changed)
        self._stopped = True
        self._wake.set()
        tasks = [t for t in (self._runner, *self._firing.values()) if t is not None]
        self._runner = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._firing.clear()

    def _changed(self, room: RoomKey, at: float | None) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopped:
            self._wake.clear()
            try:
                delay = await self._fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not read due alarms; retrying")
                delay = self.retry_delay
            # A timer sets the same event, so there is one plain wait (no wait_for task,
            # which on Python 3.11 can swallow the cancellation stop() sends).
            timer = asyncio.get_running_loop().call_later(
                min(delay, self.poll_interval), self._wake.set
            )
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    async def _fire_due(self) -> float:
        """Start delivery of every due alarm; return seconds until the next one."""
        now = time.time()
        # Alarms being delivered are still stored: read past them.
        due = await self.backend.due_alarms(math.inf, limit=self.batch + len(self._firing))
        for room, at in due:
            if self._stopped:
                break
            if room in self._firing:
                continue
            if at > now:
                return at - now
            task = asyncio.create_task(self._deliver(room, at), name=f"partydeco-alarm-{room}")
            self._firing[room] = task
        return math.inf if len(due) < self.batch + len(self._firing) else 0.0

    async def _deliver(self, room: RoomKey, at: float) -> None:
        try:
            attempt = 0
            while True:
                try:
                    await self._fire(room, at)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if self._stopped:
                        return  # stored as it was; it fires again after the restart
                    if attempt >= self.max_retries:
                        logger.exception(
                            "alarm of %s/%s failed %d times; giving up",
                            room.party, room.room, attempt + 1,
                        )
                        break
                    delay = min(self.retry_delay * 2**attempt, self.max_retry_delay)
                    attempt += 1
                    logger.warning(
                        "alarm of %s/%s failed; retry %d in %.3g s",
                        room.party, room.room, attempt, delay, exc_info=True,
                    )
                    await asyncio.sleep(delay)
                    if self.on_retry is not None:
                        self.on_retry(room.party)
            # Done (or given up): a recurring alarm moves to its next time; then the
            # alarm is dropped unless it was set anew (which also releases a claim).
            try:
                again = self._repeat(room, at) if self._repeat is not None else None
                if again is not None:
                    await self.backend.set_alarm(room, again)
                await self.backend.delete_alarm_if(room, at)
            except Exception:
                logger.exception("could not clear the alarm of %s/%s", room.party, room.room)
        finally:
            if self._firing.get(room) is asyncio.current_task():
                del self._firing[room]
            self._wake.set()
