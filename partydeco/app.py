"""The application: named parties, their handlers and options, and the Quart app beside them.

An :class:`App` only holds what is registered on it. What serving it takes
(storage, the backplane, open sockets) is built when a server starts it, by
:mod:`partydeco.server`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from quart import Quart

from .appstack import default_app as default_app
from .appstack import pop, push
from .blocking import SLOW_HANDLER_SECONDS, dev_mode
from .closecodes import GOING_AWAY
from .config import PARTY_OPTIONS, Config
from .cron import CronJob, Schedule, check_cron_name
from .dispatch import KINDS, Call, Dispatch, PartyHandlers, freeze
from .errors import SetupError
from .party import Party
from .routing import MAIN
from .server.asgi import ASGIEntry
from .server.run import run
from .server.static import StaticFiles
from .signatures import check_handler

if TYPE_CHECKING:
    from quart.testing import QuartClient

    from .server.runtime import Runtime
    from .types import Receive, Scope, Send

__all__ = ["App", "default_app"]


class App:
    """A partydeco application: named parties and their handlers, served over ASGI.

    Most apps use the global default app through :data:`partydeco.party` and
    :class:`partydeco.Party`. Make an ``App`` yourself to set options, or to
    isolate a test: inside ``with App() as app:`` the default app is ``app``,
    so ``party`` and ``Party(...)`` register on it.

    Example::

        app = App(max_message_size=64 * 1024)
        chat = app.party("chat")

    The app is an ASGI application (``hypercorn module:app``). Every URL that is
    not a party URL or a static asset is served by :attr:`quart`, so plain Quart
    routes, blueprints and extensions live beside the parties.

    Args:
        **options: fields of :class:`~partydeco.config.Config`.
    """

    def __init__(self, **options: Any) -> None:
        self.config = Config(**options)
        #: handlers by party name, filled by the decorators.
        self.handlers: dict[str, PartyHandlers] = {MAIN: PartyHandlers()}
        #: per-party configurations, for parties given options with ``Party.configure``.
        self.party_configs: dict[str, Config] = {}
        #: asset folders served at non-party URLs, in order; filled by ``Party.static``.
        self.static_files: list[StaticFiles] = []
        #: the Quart app serving every other URL; add routes with ``@app.quart.route``.
        self.quart = Quart("partydeco")
        #: the ASGI entry, installed as Quart's ``asgi_app`` (Quart's hook for middleware).
        self.asgi = ASGIEntry(self, self.quart.asgi_app)
        self.quart.asgi_app = self.asgi  # type: ignore[method-assign, assignment]
        self._dispatch: dict[str, Dispatch] | None = None

    # -- registering ----------------------------------------------------------------

    def party(self, name: str = MAIN) -> Party:
        """The handle of party *name* on this app."""
        return Party(name, self)

    def _check_setup(self, what: str) -> None:
        if self._dispatch is not None:
            raise SetupError(
                f"cannot {what}: the app is already serving. "
                "Do it at import time, before the server starts."
            )

    def add_handler(self, party: str, kind: str, f: Callable[..., Any]) -> None:
        """Register *f* as a handler of *kind* (``"on_message"`` etc.) for *party*.

        The decorators call this; it can be called directly too.

        Raises:
            SetupError: the app already started serving.
            HandlerSignatureError: partydeco cannot call *f* as a *kind* handler (it
                takes other arguments, or it is a generator function).
            ValueError: *kind* is unknown or *f* is not callable.
        """
        self._check_setup(f"register {kind} for party {party!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown handler kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not callable(f):
            hint = " (pass the function itself, not a call of it)" if inspect.isawaitable(f) else ""
            raise ValueError(f"{kind} handler must be callable, not {f!r}{hint}")
        check_handler(kind, f)
        handlers = self.handlers.get(party)
        if handlers is None:
            handlers = self.handlers[party] = PartyHandlers()
        getattr(handlers, kind).append(f)

    def add_cron(
        self,
        party: str,
        schedule: str | Schedule,
        f: Callable[..., Any],
        *,
        name: str | None = None,
    ) -> CronJob:
        """Register *f* as a cron of *party*, run at every tick of *schedule*.

        ``Party.on_cron`` calls this; it can be called directly too.

        Raises:
            SetupError: the app already started serving; the expression is invalid
                or never fires; the name is invalid or another cron of *party* has it;
                *f* is not callable.
            HandlerSignatureError: partydeco cannot call *f* as ``f(cron, lobby)``.
        """
        self._check_setup(f"register a cron for party {party!r}")
        parsed = schedule if isinstance(schedule, Schedule) else Schedule(schedule)
        if not callable(f):
            raise SetupError(f"a cron handler must be callable, not {f!r}")
        check_handler("on_cron", f)
        cron_name = check_cron_name(name if name is not None else getattr(f, "__name__", None))
        handlers = self.handlers.get(party)
        if handlers is None:
            handlers = self.handlers[party] = PartyHandlers()
        if any(job.name == cron_name for job in handlers.on_cron):
            raise SetupError(
                f"party {party!r} already has a cron named {cron_name!r}; "
                "pass name= to tell them apart"
            )
        slow = SLOW_HANDLER_SECONDS if dev_mode() else None
        job = CronJob(party, cron_name, parsed, Call.of(f, slow=slow))
        handlers.on_cron.append(job)
        return job

    def configure_party(self, party: str, **options: Any) -> Config:
        """Override security options for one party (see :meth:`Party.configure`).

        Raises:
            SetupError: the app already started serving.
            ValueError: an option is unknown, process-wide, or has a bad value.
        """
        self._check_setup(f"configure party {party!r}")
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

    def add_static(self, directory: str | os.PathLike[str]) -> None:
        """Serve the files under *directory* at non-party URLs (see ``Party.static``).

        Raises:
            SetupError: the app already started serving, or *directory* does not exist.
        """
        self._check_setup("add a static folder")
        if not os.path.isdir(directory):
            raise SetupError(f"static folder {os.fspath(directory)!r} does not exist")
        self.static_files.append(StaticFiles(directory))

    def freeze(self) -> Mapping[str, Dispatch]:
        """End registration and return the handler tables the server dispatches with.

        The server calls this as it starts; after it, registering raises
        :class:`SetupError`. Calling it again returns the same tables.

        Raises:
            SetupError: a handler cannot be prepared (a message type msgspec
                cannot decode); nothing is frozen then.
        """
        if self._dispatch is None:
            # dev mode reports handlers that block the event loop
            slow = SLOW_HANDLER_SECONDS if dev_mode() else None
            self._dispatch = freeze(self.handlers, slow, self.party_configs)
        return self._dispatch

    @property
    def started(self) -> bool:
        """Whether registration has ended (:meth:`freeze` ran)."""
        return self._dispatch is not None

    # -- serving ----------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime | None:
        """What serving the app takes (storage, backplane, sockets), once a server
        started it; ``None`` before (see :class:`partydeco.server.runtime.Runtime`)."""
        return self.asgi.runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI interface: Quart's ``asgi_app``, which is partydeco's entry unless an
        ASGI middleware wrapped it."""
        await self.quart.asgi_app(scope, receive, send)  # type: ignore[arg-type]

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
        if self.runtime is not None:
            await self.runtime.shutdown(code, reason)

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        server: str | None = None,
        workers: int = 1,
        reload: bool = False,
        **server_options: Any,
    ) -> None:
        """Serve the app with Hypercorn (or Uvicorn) until SIGINT or SIGTERM.

        On shutdown every socket is closed with 1001 before the process exits.

        Args:
            host: the address to bind: the ``HOST`` environment variable, else
                ``127.0.0.1``.
            port: the port to bind: the ``PORT`` environment variable, else 1999,
                PartyKit's dev port.
            server: ``"hypercorn"`` or ``"uvicorn"``, the fast lane (needs the
                ``uvicorn`` extra): the ``PARTYDECO_SERVER`` environment variable,
                else ``"hypercorn"``.
            workers: processes to serve with. Rooms are per process unless
                Redis is configured (``redis_url``).
            reload: restart when one of the app's files changes (needs the ``dev``
                extra, watchfiles); the app runs in dev mode then.
            **server_options: other settings of the server: ``hypercorn.config.Config``
                attributes, or ``uvicorn.Config`` arguments.

        Raises:
            ValueError: *server* names another server.
        """
        run(
            self,
            host=host or os.environ.get("HOST", "127.0.0.1"),
            port=port if port is not None else int(os.environ.get("PORT", "1999")),
            server=server or os.environ.get("PARTYDECO_SERVER", "hypercorn"),
            workers=workers,
            reload=reload,
            **server_options,
        )

    # -- default app --------------------------------------------------------------------

    def __enter__(self) -> App:
        push(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pop(self)

    def __repr__(self) -> str:
        return f"<App parties={sorted(self.handlers)}>"


push(App())  # the global default app, at the bottom of the stack
