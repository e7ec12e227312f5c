"""The application: parties, their handlers, and the ASGI entry point."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .closecodes import GOING_AWAY
from .config import PARTY_OPTIONS, Config
from .dispatch import KINDS, Dispatch, PartyHandlers
from .env import load_env
from .errors import SetupError
from .hypercorn_fixes import install as install_hypercorn_fixes
from .party import Party
from .routing import MAIN

if TYPE_CHECKING:
    from quart import Quart
    from quart.testing import QuartClient

    from .backplane import Backplane
    from .lifecycle import RoomLifecycle
    from .outbox import Outbox
    from .security.limits import Guard
    from .static import StaticFiles
    from .storage import StorageBackend
    from .types import Receive, Scope, Send

__all__ = ["App", "default_app"]

logger = logging.getLogger("partydeco")


#: Environment variable naming the Redis URL when ``App(redis_url=...)`` is not given.
REDIS_ENV_VAR = "PARTYDECO_REDIS_URL"


class App:
    """A partydeco application: named parties and their handlers, served over ASGI.

    Most apps use the global default app through :data:`partydeco.party` and
    :class:`partydeco.Party`. Make an ``App`` yourself to set options, or to
    isolate a test: inside ``with App() as app:`` the default app is ``app``,
    so ``party`` and ``Party(...)`` register on it.

    Example::

        app = App(max_message_size=64 * 1024)
        chat = app.party("chat")

    The app is an ASGI application (``hypercorn module:app``). It is built on
    Quart: :attr:`quart` serves every URL that is not a party URL, so plain
    Quart routes can live beside the parties.

    Args:
        **options: fields of :class:`~partydeco.config.Config`.
    """

    def __init__(self, **options: Any) -> None:
        self.config = Config(**options)
        #: handlers by party name, filled by the decorators.
        self.handlers: dict[str, PartyHandlers] = {MAIN: PartyHandlers()}
        self._dispatch: dict[str, Dispatch] | None = None
        self._env: Mapping[str, str] | None = None
        self._backplane: Backplane | None = None
        self._quart: Quart | None = None
        #: open sockets, for graceful shutdown; filled by the ASGI layer.
        self.sockets: dict[Outbox, asyncio.Event] = {}
        #: asset folders served at non-party URLs, in order; filled by ``add_static``.
        self.static_files: list[StaticFiles] = []
        self._storage: StorageBackend | None = None
        self._lifecycle: RoomLifecycle | None = None
        #: per-party configurations, for parties given options with ``Party.configure``.
        self.party_configs: dict[str, Config] = {}
        self._guard: Guard | None = None

    # -- registering ----------------------------------------------------------------

    def party(self, name: str = MAIN) -> Party:
        """The handle of party *name* on this app."""
        return Party(name, self)

    def add_handler(self, party: str, kind: str, f: Callable[..., Any]) -> None:
        """Register *f* as a handler of *kind* (``"on_message"`` etc.) for *party*.

        The decorators call this; it can be called directly too.

        Raises:
            SetupError: the app already started serving.
            ValueError: *kind* is unknown or *f* is not callable.
        """
        if self._dispatch is not None:
            raise SetupError(
                f"cannot register {kind} for party {party!r}: the app is already serving. "
                "Register every handler at import time, before the server starts."
            )
        if kind not in KINDS:
            raise ValueError(f"unknown handler kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not callable(f):
            raise ValueError(f"{kind} handler must be callable, not {f!r}")
        handlers = self.handlers.get(party)
        if handlers is None:
            handlers = self.handlers[party] = PartyHandlers()
        getattr(handlers, kind).append(f)

    def configure_party(self, party: str, **options: Any) -> Config:
        """Override security options for one party (see :meth:`Party.configure`).

        Raises:
            SetupError: the app already started serving.
            ValueError: an option is unknown, process-wide, or has a bad value.
        """
        if self._dispatch is not None:
            raise SetupError(
                f"cannot configure party {party!r}: the app is already serving. "
                "Configure parties at import time, before the server starts."
            )
        unknown = sorted(set(options) - PARTY_OPTIONS)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} cannot be set per party; per-party options are "
                f"{', '.join(sorted(PARTY_OPTIONS))} (pass the others to App())"
            )
        base = self.party_configs.get(party, self.config)
        config = self.party_configs[party] = replace(base, **options)
        return config

    def config_for(self, party: str) -> Config:
        """The configuration serving *party*: the app's, with the party's overrides."""
        return self.party_configs.get(party, self.config)

    @property
    def guard(self) -> Guard:
        """The admission state (handshake rates, connections per address and room)."""
        if self._guard is None:
            from .security.limits import Guard

            self._guard = Guard(self.config)
        return self._guard

    def add_static(self, directory: str | os.PathLike[str]) -> None:
        """Serve the files under *directory* at non-party URLs (see ``Party.static``).

        Raises:
            SetupError: the app already started serving.
        """
        if self._dispatch is not None:
            raise SetupError(
                "cannot add a static folder: the app is already serving. "
                "Call party.static() at import time, before the server starts."
            )
        from .static import StaticFiles

        if not os.path.isdir(directory):
            raise SetupError(f"static folder {os.fspath(directory)!r} does not exist")
        self.static_files.append(StaticFiles(directory))

    # -- serving ----------------------------------------------------------------------

    @property
    def storage(self) -> StorageBackend:
        """The storage backend behind every ``room.storage``, made from ``config.storage``.

        It is created on first use (nothing touches the disk before a room uses its
        storage or an alarm handler exists), and closed when the server stops.
        Assign a backend to share one between apps or to use a custom one.
        """
        if self._storage is None:
            from .storage import open_storage
            from .storage.config import STORAGE_ENV_VAR

            redis_url = self.redis_url
            if self.config.storage is None and not os.environ.get(STORAGE_ENV_VAR) and redis_url:
                _need_redis()
                from .storage.redis import RedisStorage

                self._storage = RedisStorage(redis_url, prefix=self.config.redis_prefix)
            else:
                self._storage = open_storage(self.config.storage)
        return self._storage

    @storage.setter
    def storage(self, value: StorageBackend) -> None:
        self._storage = value

    async def start_services(self) -> None:
        """Start the backplane, the alarm scheduler and idle-room unloading; the server
        calls this."""
        await self.backplane.start()
        if self._lifecycle is None:
            from .lifecycle import RoomLifecycle

            self._lifecycle = RoomLifecycle(self)
        await self._lifecycle.start()

    async def stop_services(self) -> None:
        """Stop what :meth:`start_services` started and close the storage backend."""
        if self._lifecycle is not None:
            await self._lifecycle.stop()
        if self._backplane is not None:
            await self._backplane.stop()
        if self._storage is not None:
            await self._storage.close()
            self._storage = None

    @property
    def lifecycle(self) -> RoomLifecycle | None:
        """The running alarm scheduler and idle-room reaper, once the server started."""
        return self._lifecycle

    @property
    def env(self) -> Mapping[str, str]:
        """The process environment merged over ``.env`` in the working directory."""
        if self._env is None:
            self._env = load_env()
        return self._env

    @property
    def started(self) -> bool:
        """Whether the app has started serving (no more handlers can be added)."""
        return self._dispatch is not None

    @property
    def dispatch(self) -> dict[str, Dispatch]:
        """The frozen handler tables; freezes the app on first use."""
        if self._dispatch is None:
            tables = {}
            for name, handlers in self.handlers.items():
                try:
                    tables[name] = Dispatch.freeze(name, handlers)
                except TypeError as exc:
                    raise SetupError(f"party {name!r}: {exc}") from exc
            self._dispatch = tables
            install_hypercorn_fixes(self.config.max_message_size)
        return self._dispatch

    @property
    def redis_url(self) -> str | None:
        """The Redis URL that makes this app a cluster: ``config.redis_url``, else the
        ``PARTYDECO_REDIS_URL`` environment variable, else ``None`` (one process)."""
        return self.config.redis_url or os.environ.get(REDIS_ENV_VAR) or None

    @property
    def backplane(self) -> Backplane:
        """Where this app's rooms live: this process, or a Redis cluster when
        :attr:`redis_url` is set."""
        if self._backplane is None:
            from .parties import Parties

            redis_url = self.redis_url
            if redis_url:
                _need_redis()
                from .cluster import RedisBackplane

                self._backplane = RedisBackplane(
                    redis_url, self.dispatch, self.env, self.config,
                    storage=self.storage, parties=Parties(self),
                )
            else:
                from .backplane import LocalBackplane

                self._backplane = LocalBackplane(
                    self.dispatch, self.env, self.config,
                    storage=self.storage, parties=Parties(self),
                )
        return self._backplane

    @backplane.setter
    def backplane(self, value: Backplane) -> None:
        self._backplane = value

    @property
    def quart(self) -> Quart:
        """The Quart app that serves non-party URLs and the ASGI lifespan."""
        if self._quart is None:
            from .asgi import make_quart

            self._quart = make_quart(self)
        return self._quart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI interface."""
        await self.quart(scope, receive, send)  # type: ignore[arg-type]

    def test_client(self) -> QuartClient:
        """Quart's test client for this app; party URLs work through it too.

        Example::

            async with app.test_client().websocket("/parties/main/r1") as ws:
                print(await ws.receive())
        """
        return self.quart.test_client()  # type: ignore[return-value]

    async def shutdown(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every open socket with *code* and wait for their ``on_close`` handlers.

        Sockets that do not finish within ``shutdown_timeout`` are closed at once.
        """
        if not self.sockets:
            return
        for outbox in list(self.sockets):
            outbox.close(code, reason)
        waits = [event.wait() for event in self.sockets.values()]
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waits], timeout=self.config.shutdown_timeout
        )
        for task in pending:
            task.cancel()
        if pending:
            for outbox in list(self.sockets):
                await outbox.close_now(code, reason)

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        workers: int = 1,
        reload: bool = False,
        **hypercorn_options: Any,
    ) -> None:
        """Serve the app with Hypercorn until SIGINT or SIGTERM.

        On shutdown every socket is closed with 1001 before the process exits.

        Args:
            host: the address to bind: the ``HOST`` environment variable, else
                ``127.0.0.1``.
            port: the port to bind: the ``PORT`` environment variable, else 1999,
                PartyKit's dev port.
            workers: processes to serve with. Rooms are per process unless
                Redis is configured (:attr:`redis_url`).
            reload: restart when a Python file under the working directory changes.
            **hypercorn_options: other ``hypercorn.config.Config`` attributes.
        """
        from .server import run

        run(
            self,
            host=host or os.environ.get("HOST", "127.0.0.1"),
            port=port if port is not None else int(os.environ.get("PORT", "1999")),
            workers=workers,
            reload=reload,
            **hypercorn_options,
        )

    # -- default app --------------------------------------------------------------------

    def __enter__(self) -> App:
        _stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if _stack and _stack[-1] is self:
            _stack.pop()
        else:
            raise SetupError("App contexts were exited out of order")

    def __repr__(self) -> str:
        return f"<App parties={sorted(self.handlers)}>"


_stack: list[App] = []


def _need_redis() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        raise SetupError(
            "Redis is configured (redis_url or PARTYDECO_REDIS_URL) but the redis package "
            "is not installed: pip install 'partydeco[redis]'"
        ) from None


def default_app() -> App:
    """The current default app: the innermost ``with App()``, else the global one."""
    if not _stack:
        _stack.append(App())
    return _stack[-1]
