"""What keeps rooms alive while the server runs: alarms, crons and idle unloading.

:class:`RoomLifecycle` starts with the server. It runs the alarm scheduler (only
when some party has ``on_alarm`` handlers or crons, so apps without either never
open the storage for it), keeps the crons armed (:mod:`partydeco.crontab`) and
unloads rooms that stayed idle for ``idle_timeout`` seconds: no connection, no
request or alarm in progress, and no pending alarm. The next arrival loads the
room again and ``on_start`` runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .alarms import AlarmScheduler
from .storage import RoomKey

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .backplane.base import Backplane, RoomHandle
    from .config import Config
    from .crontab import Crontab
    from .dispatch import Dispatch
    from .storage import StorageBackend

__all__ = ["RoomLifecycle"]

logger = logging.getLogger("partydeco")

# The reaper looks at rooms this often, relative to the idle timeout, and at most
# every MAX_SWEEP seconds.
SWEEP_FRACTION = 0.5
MAX_SWEEP = 10.0


class RoomLifecycle:
    """Runs the alarm scheduler and the idle-room reaper of one app.

    Args:
        dispatch: the handler tables, by party.
        storage: where alarms are stored.
        backplane: where the rooms live.
        config: the app's configuration (idle timeout, alarm retries).
        crontab: the app's crons, run by the same scheduler as the alarms.
    """

    def __init__(
        self,
        dispatch: Mapping[str, Dispatch],
        storage: StorageBackend,
        backplane: Backplane,
        config: Config,
        crontab: Crontab | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.storage = storage
        self.backplane = backplane
        self.config = config
        self.crontab = crontab
        self.scheduler: AlarmScheduler | None = None
        #: called with a party's name when one of its alarms is retried (metrics).
        self.on_alarm_retry: Callable[[str], None] | None = None
        #: how many times :meth:`reap` looked at the rooms.
        self.sweeps = 0
        self._reaper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RoomLifecycle scheduler={self.scheduler!r}>"

    async def start(self) -> None:
        """Start the scheduler (if any party handles alarms or has crons) and the reaper."""
        if self._reaper is not None:
            return
        config = self.config
        crontab = self.crontab
        if crontab or any(d.on_alarm for d in self.dispatch.values()):
            if crontab:
                await crontab.start()  # arms the crons before the scheduler reads alarms
            self.scheduler = AlarmScheduler(
                self.storage,
                self.fire,
                retry_delay=config.alarm_retry_delay,
                max_retries=config.alarm_max_retries,
                on_retry=self.on_alarm_retry,
                repeat=crontab.next_time if crontab else None,
            )
            await self.scheduler.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="partydeco-idle-rooms")

    async def stop(self) -> None:
        """Stop the reaper, the crons' arming and the scheduler (alarms stay stored)."""
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        if self.crontab is not None:
            await self.crontab.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None

    async def fire(self, key: RoomKey, at: float) -> None:
        """Deliver *key*'s alarm: load the room, run ``on_start`` if needed, then
        ``on_alarm``; or, for a cron's alarm, run the cron."""
        if self.crontab is not None and self.crontab.holds(key):
            await self.crontab.fire(key, at)
            return
        if key.party not in self.dispatch:
            logger.warning("dropping the alarm of %s/%s: no such party", key.party, key.room)
            return
        await self.backplane.room(key.party, key.room).alarm()

    async def _reap_forever(self) -> None:
        timeout = self.config.idle_timeout
        interval = min(timeout * SWEEP_FRACTION, MAX_SWEEP)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not unload idle rooms")

    async def reap(self) -> int:
        """Unload every room idle for longer than ``idle_timeout``; return how many."""
        timeout = self.config.idle_timeout
        released = 0
        self.sweeps += 1
        for room in self.backplane.rooms():
            if not self._expired(room, timeout):
                continue
            if self.dispatch[room.party].on_alarm:
                key = RoomKey(room.party, room.id)
                if self.scheduler is not None and self.scheduler.is_firing(key):
                    continue
                if await self.storage.get_alarm(key) is not None:
                    continue
                if not self._expired(room, timeout):  # someone arrived meanwhile
                    continue
            self.backplane.release(room)
            released += 1
        return released

    @staticmethod
    def _expired(room: RoomHandle, timeout: float) -> bool:
        return room.idle and time.monotonic() - room.last_active >= timeout
