"""The probes: ``/healthz`` (the process serves) and ``/readyz`` (it can serve rooms).

``/readyz`` answers 200 only when the server is running and not shutting down,
room storage answers a read, and the backplane serves rooms (with Redis: Redis is
reachable); otherwise 503, naming the failed checks without internals. One check
runs at a time and its answer is reused for :data:`CACHE_SECONDS`, so probes,
however many, cost one storage read a second at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..storage import RoomKey

if TYPE_CHECKING:
    from ..server.runtime import Runtime
    from .operations import Operations

__all__ = ["CACHE_SECONDS", "CHECK_TIMEOUT", "Readiness"]

logger = logging.getLogger("partydeco")

#: Seconds one readiness answer is reused.
CACHE_SECONDS = 1.0
#: Seconds the storage read may take before storage counts as unavailable.
CHECK_TIMEOUT = 2.0

#: The room and key the storage check reads (never written).
_PROBE_ROOM = RoomKey("_partydeco", "readyz")


class Readiness:
    """Answers whether a server can take traffic (see the module).

    Args:
        runtime: the server's runtime (its state, storage and backplane).
        ops: the server's operations (whether it is draining).
    """

    def __init__(self, runtime: Runtime, ops: Operations) -> None:
        self._runtime = runtime
        self._ops = ops
        self._answer: tuple[float, bool, dict[str, str]] | None = None
        self._running: asyncio.Future[tuple[bool, dict[str, str]]] | None = None

    def __repr__(self) -> str:
        return f"<Readiness {self._answer[1] if self._answer else 'unchecked'}>"

    async def check(self) -> tuple[bool, dict[str, str]]:
        """Whether the server is ready, and each check's result (``ok`` or why not)."""
        now = time.monotonic()
        if self._answer is not None and now - self._answer[0] < CACHE_SECONDS:
            return self._answer[1], self._answer[2]
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        running = self._running
        try:
            ready, checks = await asyncio.shield(running)
        finally:
            if running.done() and self._running is running:
                self._running = None
        self._answer = (time.monotonic(), ready, checks)
        return ready, checks

    async def _check(self) -> tuple[bool, dict[str, str]]:
        runtime = self._runtime
        checks: dict[str, str] = {}
        if self._ops.draining or runtime.state == "stopped":
            checks["server"] = "shutting down"
        else:
            checks["server"] = "ok"
        checks["storage"] = await self._storage()
        checks["backplane"] = "ok" if runtime.backplane.available else "unavailable"
        return all(value == "ok" for value in checks.values()), checks

    async def _storage(self) -> str:
        try:
            await asyncio.wait_for(
                self._runtime.storage.get(_PROBE_ROOM, [b"probe"]), CHECK_TIMEOUT
            )
        except TimeoutError:
            return "timed out"
        except Exception as exc:
            logger.warning("readiness: room storage failed (%s)", type(exc).__name__)
            return "unavailable"
        return "ok"
