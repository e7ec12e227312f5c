"""The operations side of one server: metrics, probes, the admin API, logs and traces.

:class:`Operations` is built with the server's :class:`~partydeco.server.runtime.Runtime`
from the app's options and the environment (:mod:`.settings`). The server asks it
for a watch per socket or request (``None`` when nothing observes them), for the
handler tables to serve (:mod:`.instrument`), and hands it every request to a URL
that is not a party's (:meth:`serve`), which answers partydeco's own URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .instrument import instrument
from .settings import Settings
from .watch import RequestWatch, SocketWatch

if TYPE_CHECKING:
    from ..config import Config
    from ..dispatch import Dispatch
    from ..routing import Route
    from ..server.runtime import Runtime
    from ..types import Receive, Scope, Send
    from .endpoints import Endpoints
    from .metrics import Metrics
    from .tracing import Tracer

__all__ = ["FLUSH_INTERVAL", "Operations"]

logger = logging.getLogger("partydeco")

#: Seconds between two moves of the frame counters into Prometheus (and samples of
#: the rooms and the backplane): how stale another worker's numbers can be.
FLUSH_INTERVAL = 1.0


class Operations:
    """The operations features of one server (see the module).

    Args:
        config: the app's configuration.
        parties: the app's party names.

    Raises:
        SetupError: a feature is on but its package is missing, or an environment
            variable is wrong.

    Attributes:
        settings: which features are on.
        metrics: the metrics, when on.
        tracer: the OpenTelemetry spans, when on.
        draining: set when the server starts shutting down (``/readyz`` answers 503).
    """

    def __init__(self, config: Config, parties: Mapping[str, object]) -> None:
        self.settings = settings = Settings.resolve(config)
        self.metrics: Metrics | None = None
        self.tracer: Tracer | None = None
        if settings.metrics:
            from .metrics import Metrics

            self.metrics = Metrics(parties)
        if settings.tracing:
            from .tracing import Tracer

            self.tracer = Tracer()
        self._watching = (
            self.metrics is not None or self.tracer is not None or settings.json_logs
        )
        self.draining = False
        self._endpoints: Endpoints | None = None
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Operations {self.settings!r}>"

    def instrument(self, tables: Mapping[str, Dispatch]) -> Mapping[str, Dispatch]:
        """The handler tables to serve (see :mod:`.instrument`)."""
        return instrument(tables, self.metrics, self.tracer, self.settings.json_logs)

    def watch_socket(self, route: Route, scope: Scope) -> SocketWatch | None:
        """What observes one WebSocket, or ``None`` when nothing does."""
        if not self._watching:
            return None
        meter = self.metrics.meter(route.party) if self.metrics is not None else None
        return SocketWatch(route, scope, meter, self.tracer, self.settings.json_logs)

    def watch_request(self, route: Route, scope: Scope) -> RequestWatch | None:
        """What observes one HTTP request to a party URL, or ``None`` when nothing does."""
        if not self._watching:
            return None
        meter = self.metrics.meter(route.party) if self.metrics is not None else None
        return RequestWatch(route, scope, meter, self.tracer, self.settings.json_logs)

    async def serve(self, runtime: Runtime, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request to one of partydeco's own URLs; ``False`` for any other URL."""
        if not self.settings.serves_urls:
            return False
        if self._endpoints is None:
            from .endpoints import Endpoints

            self._endpoints = Endpoints(runtime, self)
        return await self._endpoints.serve(scope, receive, send)

    # -- while the server runs -----------------------------------------------------------

    def start(self, runtime: Runtime) -> None:
        """Start moving the counters into Prometheus and sampling the gauges."""
        metrics = self.metrics
        if metrics is None or self._flusher is not None:
            return
        backplane = runtime.backplane

        def sample(metrics: Metrics) -> None:
            counts = Counter(room.party for room in backplane.local_rooms())
            metrics.set_rooms(counts)
            metrics.by_name["partydeco_backplane_up"].set(1 if backplane.available else 0)

        metrics.samplers.append(sample)
        if runtime.redis_url:
            _observe_relay(runtime, metrics)

        def retried(party: str) -> None:
            if party in metrics.meters:
                metrics.meters[party].alarm_retry()

        runtime.lifecycle.on_alarm_retry = retried
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_forever(metrics), name="partydeco-metrics"
        )

    async def _flush_forever(self, metrics: Metrics) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                metrics.flush()
            except Exception:
                logger.exception("could not update the metrics")

    async def stop(self) -> None:
        """Stop the flushing task and flush what is left."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if self.metrics is not None:
            self.metrics.flush()


def _observe_relay(runtime: Runtime, metrics: Metrics) -> None:
    """Time the Redis backplane's publishing, and sample its queue."""
    from ..backplane.redis import RedisBackplane

    backplane = runtime.backplane
    if not isinstance(backplane, RedisBackplane):
        return
    publisher = backplane.publisher
    seconds = metrics.by_name["partydeco_relay_publish_seconds"]
    events = metrics.by_name["partydeco_relay_events"]
    queue = metrics.by_name["partydeco_relay_queue"]

    def published(elapsed: float, count: int) -> None:
        seconds.observe(elapsed)
        events.inc(count)

    publisher.on_published = published
    metrics.samplers.append(lambda _: queue.set(publisher.queued))
