"""The crontab of an app: its crons, kept armed as recurring alarms and run when due.

A cron's next tick is stored as an alarm of its own, beside the rooms' alarms, under
``RoomKey(party, "cron/<name>")`` (room ids never contain ``/``, so no room has that
key). The alarm scheduler then does for crons what it does for alarms:

- it survives restarts, in whatever backend stores alarms (SQLite, Redis);
- on Redis each due tick is **claimed** by one process before it runs, so a tick runs
  once across every worker and host; a claim whose process died expires and the tick
  runs elsewhere (at least once);
- a handler that raises is retried with exponential backoff (``alarm_retry_delay``,
  ``alarm_max_retries``), and one cron's deliveries never overlap.

When a delivery ends (done or given up) the alarm moves to the first tick after *now*:
ticks that came due during a run and its retries are skipped. Ticks missed while no
process ran: the stored tick is overdue at start-up, and is moved to the latest
missed tick, which runs once; the earlier ones are skipped (``cron.scheduled_time``
says which tick runs), as with systemd's ``Persistent=true`` timers. (PartyKit's crons
are Cloudflare Cron Triggers, on a platform that is always up.)

Arming: at start-up, and every :data:`ARM_INTERVAL` seconds after, each cron whose
alarm is missing or is not a tick of its schedule (the expression changed) is set to
its next tick. So a cron added by a deploy is armed, and one that another process
dropped (a process of an older deploy that did not know it) is armed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .cron import Cron, CronJob, CronLobby
from .parties import Parties
from .storage import RoomKey

if TYPE_CHECKING:
    from .backplane.base import Backplane
    from .config import Config
    from .dispatch import Dispatch
    from .storage import StorageBackend

__all__ = ["ARM_INTERVAL", "Crontab", "cron_key"]

logger = logging.getLogger("partydeco")

#: Seconds between two checks that every cron has its alarm.
ARM_INTERVAL = 60.0

_PREFIX = "cron/"


def cron_key(party: str, name: str) -> RoomKey:
    """The key under which the alarms hold the next tick of cron *name* of *party*."""
    return RoomKey(party, _PREFIX + name)


class Crontab:
    """The crons of one app, by their alarm key (see the module).

    Args:
        dispatch: the handler tables, by party; their ``on_cron`` are the crons.
        storage: where the crons' alarms are stored.
        backplane: where the rooms live (``lobby.parties`` reaches them through it).
        env: the environment handlers see in ``lobby.env``.
        config: the app's configuration.
    """

    def __init__(
        self,
        dispatch: Mapping[str, Dispatch],
        storage: StorageBackend,
        backplane: Backplane,
        env: Mapping[str, str],
        config: Config,
    ) -> None:
        self.storage = storage
        self._jobs: dict[RoomKey, CronJob] = {
            cron_key(job.party, job.name): job
            for table in dispatch.values()
            for job in table.on_cron
        }
        parties = Parties(backplane, dispatch, config)
        self._lobbies = {party: CronLobby(party, env, parties) for party in dispatch}
        self._armer: asyncio.Task[None] | None = None
        # Set by stop(), with the event: a cancelled redis-py call may return normally.
        self._stopping = False
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Crontab {sorted(f'{k.party}/{j.name}' for k, j in self._jobs.items())}>"

    def __bool__(self) -> bool:
        return bool(self._jobs)

    @property
    def jobs(self) -> tuple[CronJob, ...]:
        """Every cron of the app."""
        return tuple(self._jobs.values())

    @staticmethod
    def holds(key: RoomKey) -> bool:
        """Whether the alarm *key* is a cron's (of this app or not), not a room's."""
        return key.room.startswith(_PREFIX)

    # -- arming ------------------------------------------------------------------------

    async def start(self) -> None:
        """Arm every cron (moving overdue ticks to the latest one), then keep them armed."""
        if self._armer is not None or not self._jobs:
            return
        self._stopping = False
        await self.arm(catch_up=True)
        self._armer = asyncio.create_task(self._keep_armed(), name="partydeco-crons")

    async def stop(self) -> None:
        """Stop re-arming (the crons' alarms stay stored)."""
        armer, self._armer = self._armer, None
        self._stopping = True
        self._wake.set()
        if armer is not None:
            armer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await armer

    async def arm(self, *, catch_up: bool = False) -> None:
        """Set the alarm of every cron that has none, or one off its schedule.

        With *catch_up*, an overdue tick moves to the latest tick at or before now,
        so that the one run after a time with no process is for the latest tick.
        """
        for key, job in self._jobs.items():
            if self._stopping:
                return
            try:
                await self._arm(key, job, catch_up)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not arm the cron %s/%s", job.party, job.name)

    async def _arm(self, key: RoomKey, job: CronJob, catch_up: bool) -> None:
        now = time.time()
        stored = await self.storage.get_alarm(key)
        target: float | None
        if stored is None or not job.schedule.is_tick(stored):
            target = job.schedule.next_after(now)
        elif catch_up and stored <= now:
            target = job.schedule.latest(now)
            if target is not None and target <= stored:
                return
        else:
            return
        if target is None:
            logger.warning(
                "the cron %s/%s (%r) has no tick left", job.party, job.name, job.schedule.expression
            )
            return
        await self.storage.set_alarm(key, target)

    async def _keep_armed(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake = asyncio.Event()
            timer = loop.call_later(ARM_INTERVAL, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            if not self._stopping:
                await self.arm()

    # -- running -----------------------------------------------------------------------

    async def fire(self, key: RoomKey, at: float) -> None:
        """Run the cron of *key* for the tick *at*; raising asks the scheduler to retry."""
        job = self._jobs.get(key)
        if job is None:
            logger.warning("dropping a tick of the cron %s/%s: this app has no such cron",
                           key.party, key.room[len(_PREFIX):])
            return
        await self._run(job, at)

    def next_time(self, key: RoomKey, at: float) -> float | None:
        """The tick after a delivery of *key* ended: the first one after now (or *at*)."""
        job = self._jobs.get(key)
        if job is None:
            return None
        return job.schedule.next_after(max(at, time.time()))

    async def run(self, name: str, party: str = "main", at: float | None = None) -> None:
        """Run cron *name* of *party* once now, for tests and manual triggers.

        Its schedule is untouched and nothing is retried: the handler's exception
        propagates. PartyKit's dev server does the same at ``/__scheduled__?cron=name``.

        Example::

            await app.runtime.crontab.run("nightly")

        Args:
            name: the cron's name.
            party: the party it was registered on.
            at: the ``cron.scheduled_time`` the handler sees; by default now.

        Raises:
            KeyError: the party has no cron named *name*.
        """
        job = self._jobs.get(cron_key(party, name))
        if job is None:
            known = ", ".join(sorted(f"{j.party}/{j.name}" for j in self._jobs.values()))
            raise KeyError(f"no cron {party}/{name} (this app has: {known or 'none'})")
        await self._run(job, time.time() if at is None else at)

    async def _run(self, job: CronJob, at: float) -> None:
        cron = Cron(job.name, job.schedule.expression, at, job.party)
        await job.call(cron, self._lobbies[job.party])
