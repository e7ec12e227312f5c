"""What serving one app takes, built when it starts serving.

An :class:`~partydeco.App` holds registrations and configuration. When a server
starts it (the ASGI lifespan, or the first party request under a test client),
:class:`Runtime` is built from them once: the frozen handler tables, the
environment, the admission guard, the storage backend, the backplane that holds
the rooms, the crons, the room lifecycle (alarms, crons and idle unloading), and
the open sockets that a graceful shutdown closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from ..backplane.local import LocalBackplane
from ..closecodes import GOING_AWAY
from ..crontab import Crontab
from ..env import load_env
from ..extras import require
from ..lifecycle import RoomLifecycle
from ..observability.operations import Operations
from ..outbox import OutboxBudget
from ..security.limits import ByteBudget, Guard
from ..storage import StorageBackend, open_storage
from ..storage.config import STORAGE_ENV_VAR

if TYPE_CHECKING:
    from ..app import App
    from ..backplane.base import Backplane
    from ..config import Config
    from ..dispatch import Dispatch
    from ..outbox import Outbox
    from .static import StaticFiles

__all__ = ["REDIS_ENV_VAR", "Runtime"]

logger = logging.getLogger("partydeco")

#: Environment variable naming the Redis URL when ``App(redis_url=...)`` is not given.
REDIS_ENV_VAR = "PARTYDECO_REDIS_URL"


class Runtime:
    """The serving state of one app (see the module).

    Attributes:
        app: the app served.
        config: the app's configuration.
        dispatch: the frozen handler tables, by party name.
        env: the process environment merged over ``.env``.
        guard: admission state (handshake rates, connections per address and room).
        redis_url: the Redis URL that makes this process part of a cluster, or ``None``.
        storage: the backend behind every ``room.storage``.
        backplane: where the rooms live: this process, or a Redis cluster.
        crontab: the app's crons (``await runtime.crontab.run("name")`` runs one now).
        lifecycle: the alarm scheduler (which runs the crons too) and the idle-room reaper.
        sockets: the open sockets, each with the future a shutdown waits on until its
            ``on_close`` ran (``None`` until a shutdown asks for one).
        outbox_budget: the bytes queued for slow receivers in this process.
        unfinished: the bytes of messages still arriving, held by this process's
            sockets (on Hypercorn).
        static_files: the asset folders served at non-party URLs, in order.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.config = app.config
        tables = app.freeze()
        #: metrics, probes, the admin API, logs and traces (see partydeco.observability).
        self.ops = Operations(app.config, tables)
        self.dispatch: Mapping[str, Dispatch] = self.ops.instrument(tables)
        self._party_configs = dict(app.party_configs)
        self.static_files: tuple[StaticFiles, ...] = tuple(app.static_files)
        self.env = load_env()
        self.guard = Guard(app.config)
        header = app.config.principal_header
        #: the principal header's name as it appears in ASGI scopes, removed from
        #: requests before the hooks run.
        self.principal_header = header.lower().encode("latin-1") if header else None
        self.redis_url = app.config.redis_url or os.environ.get(REDIS_ENV_VAR) or None
        self.storage = self._open_storage()
        self.backplane = self._make_backplane()
        self.crontab = Crontab(
            self.dispatch, self.storage, self.backplane, self.env, self.config
        )
        self.lifecycle = RoomLifecycle(
            self.dispatch, self.storage, self.backplane, self.config, self.crontab
        )
        self.sockets: dict[Outbox, asyncio.Future[None] | None] = {}
        self.outbox_budget = OutboxBudget(app.config.max_pending_bytes_per_process)
        self.unfinished = ByteBudget(app.config.max_unfinished_bytes)
        #: whether a graceful shutdown has begun: new sockets are refused with 503.
        self.stopping = False
        self._closing: asyncio.Future[None] | None = None
        #: ``"built"``, then ``"running"`` after :meth:`start`, ``"stopped"`` after :meth:`stop`.
        self.state: Literal["built", "running", "stopped"] = "built"

    def __repr__(self) -> str:
        return f"<Runtime {self.state} parties={sorted(self.dispatch)} sockets={len(self.sockets)}>"

    def config_for(self, party: str) -> Config:
        """The configuration serving *party*: the app's, with the party's overrides."""
        return self._party_configs.get(party, self.config)

    def _open_storage(self) -> StorageBackend:
        if self.config.storage is None and not os.environ.get(STORAGE_ENV_VAR) and self.redis_url:
            _need_redis()
            from ..storage.redis import RedisStorage

            return RedisStorage(self.redis_url, prefix=self.config.redis_prefix)
        return open_storage(self.config.storage)

    def _make_backplane(self) -> Backplane:
        if not self.redis_url:
            return LocalBackplane(self.dispatch, self.env, self.config, storage=self.storage)
        _need_redis()
        from ..backplane.redis import RedisBackplane

        return RedisBackplane(
            self.redis_url, self.dispatch, self.env, self.config, storage=self.storage
        )

    async def start(self) -> None:
        """Start the backplane, the alarm scheduler and idle-room unloading."""
        await self.backplane.start()
        self.ops.start(self)
        await self.lifecycle.start()
        self.state = "running"

    async def stop(self) -> None:
        """Stop what :meth:`start` started and close the storage backend."""
        self.state = "stopped"
        await self.ops.stop()
        await self.lifecycle.stop()
        await self.backplane.stop()
        await self.storage.close()

    async def shutdown(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every open socket with *code* and wait for their ``on_close`` handlers,
        for at most ``shutdown_timeout`` seconds.

        New sockets are refused from now on. For three quarters of the time the
        peers may answer the close; then the sockets left are dropped (their
        ``on_close`` runs with *code*) and the rest of the time is theirs. A second
        call while one runs waits for it.
        """
        self.ops.draining = True
        self.stopping = True
        if self._closing is None or self._closing.done():
            limit = self.config.shutdown_timeout
            self._closing = asyncio.ensure_future(self._close_all(code, reason, limit))
        await asyncio.shield(self._closing)

    async def _close_all(self, code: int, reason: str, seconds: float) -> None:
        if not self.sockets:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        for outbox in list(self.sockets):
            outbox.close(code, reason)
        await _finished(self.sockets, deadline - seconds / 4 - loop.time())
        if not self.sockets:
            return
        logger.info("dropping %d sockets that did not answer the close", len(self.sockets))
        for outbox in list(self.sockets):
            if outbox.on_timeout is not None:
                outbox.on_timeout()  # the socket's reader ends, then on_close runs
        await _finished(self.sockets, deadline - loop.time())


async def _finished(sockets: dict[Outbox, asyncio.Future[None] | None], seconds: float) -> None:
    """Wait until the ``on_close`` of every socket in *sockets* ran, or *seconds* passed."""
    if not sockets:
        return
    loop = asyncio.get_running_loop()
    for outbox, waiter in sockets.items():
        if waiter is None:
            sockets[outbox] = loop.create_future()
    waits = [waiter for waiter in sockets.values() if waiter is not None]
    await asyncio.wait(waits, timeout=max(0.0, seconds))


def _need_redis() -> None:
    require("redis", "Redis (redis_url or PARTYDECO_REDIS_URL is set)")
