"""Serving an app: with Hypercorn (its configuration, graceful shutdown) or Uvicorn,
in one process or several workers, with reload."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from ..extras import missing
from ..observability import logs
from ..observability.multiprocess import shared_directory, worker_exited
from ..observability.settings import Settings
from .hypercorn import apply as apply_hypercorn_fixes
from .reload import RELOADER_ENV, supervise
from .runtime import REDIS_ENV_VAR
from .shutdown import force_exit_on_second_signal, quiet_cancelled_connections

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ACCESS_LOG_FORMAT", "SERVERS", "hypercorn_config", "run", "serve", "supervise"]

logger = logging.getLogger("partydeco")

T = TypeVar("T")

#: Hypercorn's access log without the query string (where ``?token=`` lives)
#: and without any request header that could carry a credential.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


def hypercorn_config(
    app: App, host: str = "127.0.0.1", port: int = 1999, **options: Any
) -> HypercornConfig:
    """The Hypercorn configuration partydeco serves with.

    Defaults chosen for a real-time server: the access log leaves out query
    strings and credentials; WebSocket pings every 20 s with a 60 s read
    timeout drop dead peers; the message-size limit is the app's.
    Any ``hypercorn.config.Config`` attribute can be overridden in *options*.
    """
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = logging.getLogger("partydeco.access")
    config.errorlog = logging.getLogger("partydeco.server")
    config.access_log_format = ACCESS_LOG_FORMAT
    config.websocket_max_message_size = app.config.max_message_size
    config.websocket_ping_interval = 20.0
    config.read_timeout = 60
    config.graceful_timeout = app.config.shutdown_timeout
    for key, value in options.items():
        if not hasattr(config, key):
            raise TypeError(f"unknown Hypercorn option {key!r}")
        setattr(config, key, value)
    return config


async def serve(
    app: App,
    config: HypercornConfig,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """Serve *app* until *shutdown_trigger* returns (by default SIGINT or SIGTERM).

    Before Hypercorn stops, every socket is closed with 1001 and its ``on_close``
    handlers have run, all within ``shutdown_timeout`` of the trigger: peers that
    do not answer the close are dropped. After a signal, a second one exits at once.
    """
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.utils import wrap_app

    app.freeze()  # a setup error stops start-up here, before the port is bound
    apply_hypercorn_fixes(app.config)
    loop = asyncio.get_running_loop()
    quiet_cancelled_connections(loop)
    wait = shutdown_trigger or _signal_trigger()

    async def trigger() -> None:
        await wait()
        started = loop.time()
        if shutdown_trigger is None:
            force_exit_on_second_signal()
        await app.shutdown()
        # Hypercorn then waits for the connections (they end as their apps return)
        # for what is left of shutdown_timeout, not for a timeout of its own.
        spent = loop.time() - started
        config.graceful_timeout = max(0.05, app.config.shutdown_timeout - spent)

    await worker_serve(
        # the ASGI entry as the app has it now: one call fewer than App.__call__
        wrap_app(app.quart.asgi_app, config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=trigger,
    )


def _signal_trigger() -> Callable[[], Awaitable[Any]]:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    return event.wait


#: The servers :func:`run` can serve with; Hypercorn is the default.
SERVERS = ("hypercorn", "uvicorn")


def run(
    app: App,
    host: str = "127.0.0.1",
    port: int = 1999,
    *,
    server: str = "hypercorn",
    workers: int = 1,
    reload: bool = False,
    argv: list[str] | None = None,
    **options: Any,
) -> None:
    """Serve *app* from the main thread until SIGINT or SIGTERM.

    *server* is ``"hypercorn"`` (the default) or ``"uvicorn"``, the fast lane (see
    :mod:`partydeco.server.uvicorn`); *options* are the chosen server's own settings.
    With *reload*, a supervisor re-runs the program (*argv*, by default this
    process's command line) whenever one of the app's files changes (see
    :mod:`partydeco.server.reload`). With several *workers*, the port is bound once
    and shared by forked worker processes.

    Raises:
        SystemExit: the address is already in use (a one-line message saying so).
        ValueError: *server* is not one of :data:`SERVERS`.
        MissingExtraError: *reload* without watchfiles (the ``dev`` extra), or
            Uvicorn without the ``uvicorn`` extra.
    """
    if server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(map(repr, SERVERS))}, not {server!r}")
    if reload and os.environ.get(RELOADER_ENV) != "1":
        supervise(argv or [sys.executable, *sys.argv], _reload_roots())
        return
    settings = Settings.resolve(app.config)
    logs.configure(settings.json_logs)
    if workers > 1 and not hasattr(os, "fork"):
        raise RuntimeError("workers > 1 needs os.fork (Linux or macOS)")
    serve_here = (_uvicorn if server == "uvicorn" else _hypercorn)(app, host, port, options)
    if workers <= 1:
        serve_here()
        return
    # With metrics, the workers share prometheus-client's multiprocess directory.
    with shared_directory() if settings.metrics else contextlib.nullcontext():
        _serve_workers(app, workers, serve_here)


def _hypercorn(app: App, host: str, port: int, options: dict[str, Any]) -> Callable[[], None]:
    config = hypercorn_config(app, host, port, **options)
    sockets = _bind(config.create_sockets, ", ".join(config.bind))
    return lambda: _run_loop(serve(app, config, sockets=sockets))


def _uvicorn(app: App, host: str, port: int, options: dict[str, Any]) -> Callable[[], None]:
    try:
        from . import uvicorn
    except ModuleNotFoundError as error:
        raise missing(error, "serving with Uvicorn") from None
    config = uvicorn.uvicorn_config(app, host, port, **options)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = _bind(lambda: uvicorn.bind(host, port), address)
    return lambda: uvicorn.serve(app, config, sock)


def _serve_workers(app: App, workers: int, serve_here: Callable[[], None]) -> None:
    if not (app.config.redis_url or os.environ.get(REDIS_ENV_VAR)):
        logger.warning(
            "serving with %d worker processes: each holds its own rooms, so clients of "
            "one room may land in different processes (set PARTYDECO_REDIS_URL)",
            workers,
        )
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                # Its own process group: a terminal's Ctrl+C reaches the parent alone,
                # which forwards it once, so a single Ctrl+C is one graceful stop.
                os.setpgid(0, 0)
                serve_here()
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        os.waitpid(child, 0)
        worker_exited(child)


def _bind(bind: Callable[[], T], address: str) -> T:
    """``bind()`` the addresses before anything starts; a busy port is one line."""
    try:
        return bind()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(
            f"partydeco: address already in use: {address} (set PORT or --port)"
        ) from None


def _run_loop(main: Awaitable[None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]


def _reload_roots() -> list[Path]:
    """The folders the reloader watches: the working directory, and the folder of the
    program's script when it is elsewhere."""
    roots = [Path.cwd()]
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if script is not None and script.is_file() and not script.parent.is_relative_to(roots[0]):
        roots.append(script.parent)
    return roots
