"""partydeco's Prometheus metrics: what they are, and how the server moves them cheaply.

Every metric is labelled by party at most (never by room id or user), plus small,
fixed label sets (an outcome, a status, a close code class). Frames and
broadcasts are counted in plain integers on a :class:`PartyMeter` (two additions
each) and moved into the Prometheus counters by :meth:`Metrics.flush`, which the
server calls every second and before each scrape; everything else (handshakes,
closes, latencies) is recorded as it happens.

With several worker processes, prometheus-client's multiprocess mode keeps each
process's values in a file under ``PROMETHEUS_MULTIPROC_DIR``, and a scrape of any
worker reads them all (``partydeco serve --workers N`` sets the directory up; see
:mod:`.multiprocess`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..closecodes import REPLACED, TOKEN_EXPIRED
from ..extras import require

if TYPE_CHECKING:
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["METRIC_NAMES", "OTHER_PARTY", "Metrics", "PartyMeter", "close_label"]

#: The label of requests to a party the app does not have (client-chosen names
#: never become label values).
OTHER_PARTY = "_unknown"

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_OWN_CODES = frozenset({REPLACED, TOKEN_EXPIRED})

#: name -> (kind, help, labels); counters are exposed with ``_total`` appended.
METRIC_NAMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "partydeco_connections": ("gauge", "Open WebSocket connections", ("party",)),
    "partydeco_rooms": ("gauge", "Rooms loaded (whose handlers run in this server)", ("party",)),
    "partydeco_handshakes": (
        "counter",
        "WebSocket handshakes by outcome (accepted, limit, hook, conflict, unavailable, "
        "error, not_found) and HTTP status",
        ("party", "outcome", "status"),
    ),
    "partydeco_http_requests": ("counter", "HTTP requests to party URLs", ("party", "status")),
    "partydeco_messages_received": ("counter", "WebSocket messages from clients", ("party",)),
    "partydeco_received_bytes": (
        "counter", "Bytes (characters of text) of messages from clients", ("party",)
    ),
    "partydeco_messages_sent": ("counter", "WebSocket messages to clients", ("party",)),
    "partydeco_sent_bytes": (
        "counter", "Bytes (characters of text) of messages to clients", ("party",)
    ),
    "partydeco_broadcasts": ("counter", "Calls of room.broadcast()", ("party",)),
    "partydeco_broadcast_receivers": (
        "counter", "Connections reached by room.broadcast(), summed over calls", ("party",)
    ),
    "partydeco_closes": ("counter", "WebSocket closes by close code", ("party", "code")),
    "partydeco_outbox_overflows": (
        "counter", "Connections closed with 1013: too far behind on their messages", ("party",)
    ),
    "partydeco_handler_errors": (
        "counter", "Exceptions raised by handlers, by handler and exception class",
        ("party", "handler", "error"),
    ),
    "partydeco_hook_seconds": (
        "histogram", "Time in before_connect / before_request hooks", ("party", "hook")
    ),
    "partydeco_token_verification_seconds": (
        "histogram", "Time verifying tokens in the ready-made auth hooks, by outcome",
        ("party", "outcome"),
    ),
    "partydeco_storage_seconds": (
        "histogram", "Time of room storage operations", ("party", "operation")
    ),
    "partydeco_alarm_runs": ("counter", "on_alarm runs by outcome", ("party", "outcome")),
    "partydeco_alarm_retries": ("counter", "Alarm runs retried after a failure", ("party",)),
    "partydeco_backplane_up": (
        "gauge", "1 while the backplane serves rooms (Redis reachable), else 0", ()
    ),
    "partydeco_relay_publish_seconds": (
        "histogram", "Time to publish one batch of relayed events to Redis", ()
    ),
    "partydeco_relay_events": ("counter", "Events relayed to other processes", ()),
    "partydeco_relay_queue": ("gauge", "Events waiting to be relayed", ()),
}

# How several processes' gauges combine: connections and rooms add up over live
# processes; the backplane is up only if it is up in every live process.
_GAUGE_MODES = {
    "partydeco_connections": "livesum",
    "partydeco_rooms": "livesum",
    "partydeco_backplane_up": "livemin",
    "partydeco_relay_queue": "livesum",
}


def close_label(code: int) -> str:
    """The ``code`` label of a close: protocol codes and partydeco's own as they are,
    application codes by class (a client chooses them, so they stay few)."""
    if 1000 <= code <= 1015 or code in _OWN_CODES:
        return str(code)
    if 3000 <= code <= 4999:
        return f"{code // 1000}xxx"
    return "other"


def _prometheus() -> Any:
    prometheus_client = require(
        "prometheus_client", "metrics (metrics=True or PARTYDECO_METRICS=1)"
    )
    from prometheus_client import values

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not getattr(
        values.ValueClass, "_multiprocess", False
    ):
        # prometheus-client chose its value class at import, before the directory was
        # set (the app imported it first): values must go to the shared files.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return prometheus_client


class PartyMeter:
    """One party's metrics: frame counters in plain integers, and labelled children.

    The server adds to :attr:`received`, :attr:`received_bytes`, :attr:`sent` and
    :attr:`sent_bytes` per frame, and to :attr:`broadcasts` and :attr:`receivers` per
    broadcast; :meth:`flush` moves them into Prometheus.
    """

    __slots__ = (
        "_alarms",
        "_broadcasts",
        "_closes",
        "_errors",
        "_handshakes",
        "_hooks",
        "_metrics",
        "_received",
        "_received_bytes",
        "_receivers",
        "_sent",
        "_sent_bytes",
        "_storage",
        "_verify",
        "broadcasts",
        "connections",
        "party",
        "received",
        "received_bytes",
        "receivers",
        "sent",
        "sent_bytes",
    )

    def __init__(self, metrics: Metrics, party: str) -> None:
        self._metrics = metrics
        self.party = party
        self.received = 0
        self.received_bytes = 0
        self.sent = 0
        self.sent_bytes = 0
        self.broadcasts = 0
        self.receivers = 0
        m = metrics.by_name
        self.connections = m["partydeco_connections"].labels(party)
        self._received = m["partydeco_messages_received"].labels(party)
        self._received_bytes = m["partydeco_received_bytes"].labels(party)
        self._sent = m["partydeco_messages_sent"].labels(party)
        self._sent_bytes = m["partydeco_sent_bytes"].labels(party)
        self._broadcasts = m["partydeco_broadcasts"].labels(party)
        self._receivers = m["partydeco_broadcast_receivers"].labels(party)
        # Children made on first use, by their other labels.
        self._handshakes: dict[tuple[str, int], Any] = {}
        self._closes: dict[str, Any] = {}
        self._errors: dict[tuple[str, str], Any] = {}
        self._hooks: dict[str, Any] = {}
        self._verify: dict[str, Any] = {}
        self._storage: dict[str, Any] = {}
        self._alarms: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<PartyMeter {self.party}>"

    def _child(self, cache: dict[Any, Any], key: Any, name: str, *labels: str) -> Any:
        child = cache.get(key)
        if child is None:
            child = cache[key] = self._metrics.by_name[name].labels(self.party, *labels)
        return child

    def flush(self) -> None:
        """Move the frame counts into the Prometheus counters."""
        if self.received:
            count, size = self.received, self.received_bytes
            self.received = self.received_bytes = 0
            self._received.inc(count)
            self._received_bytes.inc(size)
        if self.sent:
            count, size = self.sent, self.sent_bytes
            self.sent = self.sent_bytes = 0
            self._sent.inc(count)
            self._sent_bytes.inc(size)
        if self.broadcasts:
            count, reached = self.broadcasts, self.receivers
            self.broadcasts = self.receivers = 0
            self._broadcasts.inc(count)
            self._receivers.inc(reached)

    def count_broadcast(self, connections: Collection[str], skip: Iterable[str]) -> None:
        """Count one broadcast to *connections* (ids) but those in *skip*."""
        reached = len(connections)
        for id in skip:
            if id in connections:
                reached -= 1
        self.broadcasts += 1
        self.receivers += reached

    def handshake(self, outcome: str, status: int) -> None:
        """Count a WebSocket handshake's outcome (``accepted`` is status 101)."""
        self._child(self._handshakes, (outcome, status), "partydeco_handshakes", outcome,
                    str(status)).inc()

    def http(self, status: int) -> None:
        """Count an HTTP request's answer."""
        self._metrics.by_name["partydeco_http_requests"].labels(self.party, str(status)).inc()

    def closed(self, code: int, overflow: bool) -> None:
        """Count a socket's end: its close code, and whether its outbox overflowed."""
        label = close_label(code)
        self._child(self._closes, label, "partydeco_closes", label).inc()
        if overflow:
            self._metrics.by_name["partydeco_outbox_overflows"].labels(self.party).inc()

    def handler_error(self, handler: str, error: BaseException) -> None:
        """Count an exception a handler raised."""
        name = type(error).__name__[:64]
        self._child(self._errors, (handler, name), "partydeco_handler_errors", handler,
                    name).inc()

    def hook_time(self, hook: str, seconds: float) -> None:
        """Record the time one ``before_*`` hook took."""
        self._child(self._hooks, hook, "partydeco_hook_seconds", hook).observe(seconds)

    def verification(self, seconds: float, outcome: str) -> None:
        """Record one token verification (outcome ``valid``, ``invalid`` or ``error``)."""
        self._child(self._verify, outcome, "partydeco_token_verification_seconds",
                    outcome).observe(seconds)

    def storage_time(self, operation: str, seconds: float) -> None:
        """Record one room storage operation."""
        self._child(self._storage, operation, "partydeco_storage_seconds",
                    operation).observe(seconds)

    def alarm(self, outcome: str) -> None:
        """Count an ``on_alarm`` run (``ok`` or ``error``)."""
        self._child(self._alarms, outcome, "partydeco_alarm_runs", outcome).inc()

    def alarm_retry(self) -> None:
        """Count an alarm retried after a failure."""
        self._metrics.by_name["partydeco_alarm_retries"].labels(self.party).inc()


class Metrics:
    """The metrics of one server process (see the module).

    Args:
        parties: the app's party names (each gets a meter; other names share
            :data:`OTHER_PARTY`'s).

    Raises:
        MissingExtraError: prometheus-client is not installed (a SetupError).
    """

    def __init__(self, parties: Iterable[str]) -> None:
        prometheus = _prometheus()
        self._prometheus = prometheus
        #: partydeco's own metrics (the process's default registry keeps the app's).
        self.registry: CollectorRegistry = prometheus.CollectorRegistry(auto_describe=True)
        #: every metric, by name.
        self.by_name: dict[str, Any] = {}
        for name, (kind, help_text, labels) in METRIC_NAMES.items():
            options: dict[str, Any] = {"registry": self.registry}
            if kind == "gauge":
                options["multiprocess_mode"] = _GAUGE_MODES[name]
            elif kind == "histogram":
                options["buckets"] = _SECONDS
            cls = {"gauge": prometheus.Gauge, "counter": prometheus.Counter,
                   "histogram": prometheus.Histogram}[kind]  # fmt: skip
            self.by_name[name] = cls(name, help_text, labels, **options)
        self.meters: dict[str, PartyMeter] = {
            party: PartyMeter(self, party) for party in (*parties, OTHER_PARTY)
        }
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        #: called by :meth:`flush` to set the sampled gauges (rooms, backplane state).
        self.samplers: list[Callable[[Metrics], None]] = []

    def __repr__(self) -> str:
        mode = "multiprocess" if self.multiprocess else "single process"
        return f"<Metrics {mode} parties={sorted(self.meters)}>"

    def meter(self, party: str) -> PartyMeter:
        """The meter of *party* (parties the app does not have share one)."""
        return self.meters.get(party) or self.meters[OTHER_PARTY]

    def flush(self) -> None:
        """Move the frame counts into Prometheus and sample the gauges."""
        for meter in self.meters.values():
            meter.flush()
        for sample in self.samplers:
            sample(self)

    def set_rooms(self, counts: dict[str, int]) -> None:
        """Set the loaded-rooms gauge of every party from *counts*."""
        gauge = self.by_name["partydeco_rooms"]
        for party in self.meters:
            gauge.labels(party).set(counts.get(party, 0))

    def exposition(self) -> tuple[bytes, str]:
        """Flush, then the text exposition of every metric of every worker, and its
        content type."""
        prometheus = self._prometheus
        self.flush()
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = prometheus.CollectorRegistry(auto_describe=False)
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return prometheus.generate_latest(registry), prometheus.CONTENT_TYPE_LATEST
        both = prometheus.CollectorRegistry(auto_describe=False)
        both.register(_Both((self.registry, prometheus.REGISTRY)))
        return prometheus.generate_latest(both), prometheus.CONTENT_TYPE_LATEST


class _Both:
    """A collector yielding the metrics of several registries."""

    def __init__(self, registries: tuple[Collector, ...]) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Any]:
        for registry in self._registries:
            yield from registry.collect()
