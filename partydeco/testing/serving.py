"""Real servers for tests: an app on Hypercorn in the test's event loop, and free ports.

The same serving path as production (:func:`partydeco.server.run.serve`), so a test
through :func:`serving` exercises the handshake, pings and shutdown for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from partydeco.server.run import hypercorn_config, serve

if TYPE_CHECKING:
    from partydeco.app import App

__all__ = ["free_port", "serving"]


@contextlib.asynccontextmanager
async def serving(
    app: App, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[str]:
    """Serve *app* in this event loop; yields ``"host:port"``.

    *port* 0 (the default) picks a free port; a fixed port lets a test restart a
    server where its clients expect it. The port is bound before this yields,
    so clients can connect at once. Leaving the block shuts the server down
    gracefully. Meant for tests.
    """
    config = hypercorn_config(app, host, port, **options)
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)  # accept at once; Hypercorn listens only later
    port = sockets.insecure_sockets[0].getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(
        serve(app, config, sockets=sockets, shutdown_trigger=stop.wait)
    )
    try:
        yield f"{host}:{port}"
    finally:
        stop.set()
        await task

def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for tests that start subprocesses)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
