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
from ..security.limits import Guard
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
        sockets: the open sockets, each with the event set when its ``on_close`` ran.
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
        self.sockets: dict[Outbox, asyncio.Event] = {}
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
        """Close every open socket with *code* and wait for their ``on_close`` handlers.

        Sockets that do not finish within ``shutdown_timeout`` are closed at once.
        """
        self.ops.draining = True
        if not self.sockets:
            return
        for outbox in list(self.sockets):
            outbox.close(code, reason)
        waits = [asyncio.ensure_future(event.wait()) for event in self.sockets.values()]
        _, pending = await asyncio.wait(waits, timeout=self.config.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            for outbox in list(self.sockets):
                await outbox.close_now(code, reason)


def _need_redis() -> None:
    require("redis", "Redis (redis_url or PARTYDECO_REDIS_URL is set)")
