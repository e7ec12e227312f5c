"""The limits and timings an app runs with."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from typing import Literal

from .observability.settings import check_options as check_operations
from .security.origins import OriginPolicy
from .security.proxies import FORWARDED_HEADERS

__all__ = ["PARTY_OPTIONS", "Config"]

#: The options :meth:`partydeco.Party.configure` may set for one party; the
#: others are process-wide and only :class:`~partydeco.App` takes them.
PARTY_OPTIONS = frozenset(
    {
        "allowed_origins",
        "require_origin",
        "cors",
        "cors_max_age",
        "token_refresh",
        "token_leeway",
        "max_connections_per_room",
        "max_messages_per_second",
        "message_burst",
        "message_rate_action",
        "presence",
        "presence_grace",
        "presence_snapshot",
        "history",
        "history_ttl",
        "history_bytes",
        "max_bytes_per_second",
        "byte_burst",
    }
)

# Fields that are not "a positive number", checked on their own in __post_init__.
_SPECIAL = frozenset(
    {
        "storage",
        "redis_url",
        "redis_prefix",
        "alarm_max_retries",
        "allowed_origins",
        "require_origin",
        "cors",
        "token_refresh",
        "limit_loopback",
        "token_leeway",
        "max_connections_per_room",
        "max_connections_per_address",
        "handshake_rate",
        "max_messages_per_second",
        "message_rate_action",
        "trusted_proxies",
        "principal_header",
        # operations: checked by partydeco.observability.settings
        "metrics",
        "metrics_path",
        "metrics_token",
        "health",
        "admin_token",
        "json_logs",
        "tracing",
        "presence",
        "presence_grace",
        "presence_snapshot",
        "history",
        "history_ttl",
        "forwarded_header",
        "max_bytes_per_second",
    }
)


@dataclass(frozen=True, slots=True)
class Config:
    """Options for an :class:`~partydeco.App`, all with safe defaults.

    Attributes:
        max_message_size: largest incoming WebSocket message, in bytes (UTF-8
            bytes for text, after permessage-deflate decompression). On Hypercorn
            the size is checked as the message arrives, before it is assembled;
            larger messages close the socket with 1009.
        max_body_size: largest HTTP request body, in bytes; larger bodies get 413.
        max_pending_messages: frames one connection may have queued for sending;
            a peer that falls further behind is closed with 1013.
        max_pending_bytes: the same bound in bytes (UTF-8 bytes for text frames).
        max_pending_bytes_per_process: bytes queued for slow receivers in the whole
            process, summed over its sockets; past it, the receivers with the most
            bytes queued are closed with 1013 until the total is under it again.
        max_unfinished_bytes: bytes of messages still arriving (a large frame, or
            the fragments of one message) that all sockets of the process may hold
            at once; the socket whose message would go past it is closed with 1013.
            Hypercorn only (other servers buffer messages themselves).
        message_timeout: seconds a client may take to finish a message once its
            first bytes arrived; a slower one is closed with 1008. Hypercorn only.
        max_room_id_length: the longest room id (the raw URL segment, in
            characters); a longer one gets HTTP 414 before any hook runs.
        close_timeout: seconds to wait for a peer to finish the closing handshake.
        shutdown_timeout: seconds graceful shutdown may take, from the signal to
            the end of serving: every socket is closed with 1001, the ``on_close``
            handlers run, and sockets whose peers do not answer are dropped when
            it is over. A second SIGINT or SIGTERM exits at once.
        state_limit: largest ``Connection.state``, in bytes of JSON.
        storage: where ``room.storage`` keeps data: ``"memory://"``,
            ``"sqlite:///path/file.db"``, or a directory. ``None`` means the
            ``PARTYDECO_STORAGE`` environment variable, else ``.partydeco/storage.db``
            in the working directory (see :func:`partydeco.storage.open_storage`).
        idle_timeout: seconds a room with no connections, no request in progress and
            no pending alarm stays loaded; then it is unloaded and the next arrival
            runs ``on_start`` again.
        alarm_retry_delay: seconds before the first retry of an ``on_alarm`` handler
            that raised; each further retry waits twice as long.
        alarm_max_retries: retries of a failing alarm before it is dropped.
        allowed_origins: the browser origins allowed to open WebSockets and to send
            HTTP requests carrying an ``Origin`` header; others get 403 before any
            hook runs. Entries are ``"https://app.example.com"`` (scheme, host and
            port must all match), ``"https://*.example.com"`` (any subdomain),
            ``"*"`` (any origin), ``"null"``, and the keywords ``"same-host"`` (the
            origin's host and port equal the request's ``Host``) and
            ``"localhost"`` (localhost, 127.0.0.1 or [::1] on any port). ``None``
            means ``("same-host", "localhost")``: right for development; list your
            sites in production.
        require_origin: refuse WebSocket upgrades without an ``Origin`` header
            (by default they are allowed: only browsers send one, and a
            non-browser client can send any value anyway).
        cors: answer CORS preflight (``OPTIONS``) requests and add CORS headers to
            HTTP responses for the allowed origins. Off by default.
        cors_max_age: seconds a browser may cache a preflight answer.
        token_refresh: let clients send a new token over an open socket (a text
            frame ``{"type":"partydeco.refresh","token":"..."}``) to keep it open
            past the first token's expiry. Off by default.
        token_leeway: seconds of grace after a connection's ``expires_at`` before
            it is closed with 3005 (must not be negative).
        max_connections_per_room: open sockets one room accepts; more get HTTP 503
            at the handshake. ``None`` for no limit.
        max_connections_per_address: open sockets one client address may hold in
            the process; more get HTTP 429. ``None`` for no limit.
        handshake_rate: WebSocket handshakes per second one client address may
            sustain (a token bucket of ``handshake_burst``); more get HTTP 429 with
            ``Retry-After``. ``None`` for no limit.
        handshake_burst: handshakes one client address may make at once.
        max_messages_per_second: messages per second one connection may sustain
            (a token bucket of ``message_burst``). ``None`` for no limit.
        message_burst: messages one connection may send at once.
        message_rate_action: ``"close"`` closes a connection over the rate with
            1008; ``"drop"`` silently drops the excess messages. Pings and pongs
            count against the rate too; on Hypercorn, a connection over the rate
            with them is closed with 1008 whatever the action.
        max_bytes_per_second: bytes per second one connection may send (a token
            bucket of ``byte_burst``), counted after decompression, so that a small
            compressed stream cannot buy unbounded work. Over it, the connection is
            closed with 1008 (``"drop"``: the message is dropped). ``None`` for no
            limit.
        byte_burst: bytes one connection may send at once; at least
            ``max_message_size``. ``None`` means 8 MiB or ``max_message_size``,
            whichever is larger.
        trusted_proxies: IP addresses or CIDR networks of reverse proxies whose
            ``forwarded_header`` names the client; the right-most address that is
            not a trusted proxy is the client. Loopback by default.
        forwarded_header: the one header trusted proxies set to name the client:
            ``"X-Forwarded-For"`` (nginx's usual ``$proxy_add_x_forwarded_for``,
            Caddy, Traefik, HAProxy; the default) or ``"Forwarded"`` (RFC 7239).
            The other header is ignored, whatever it says. A forwarded address is
            never exempt from the per-address limits, and a hop that is not an IP
            address names no client (``request.remote_addr`` is ``None``).
        max_tracked_addresses: the most client addresses the handshake-rate table
            remembers; the least recently seen are forgotten first.
        limit_loopback: apply the per-address limits (``handshake_rate``,
            ``max_connections_per_address``) to loopback clients too. Off by
            default: local tools and load tests are not throttled, while a local
            reverse proxy, trusted by default, has its clients counted by their
            forwarded address.
        redis_url: a Redis URL (``redis://host:6379/0``) that makes every process
            using it one cluster: one owner per room, storage and alarms in Redis.
            ``None`` means the ``PARTYDECO_REDIS_URL`` environment variable, else
            no Redis (one process, embedded storage).
        redis_lease: seconds a room owner's lease in Redis lasts without renewal;
            after an owner dies its rooms move within about this time.
        redis_prefix: prefix of every Redis key and channel, so several apps can
            share one Redis.
        principal_header: the header through which hooks name the user
            (``X-User-ID``, PartyKit's convention). The client's own value of it is
            removed before the hooks run; when a hook sets it, it is the request's
            ``principal`` (unless the hook set ``request.principal`` itself).
            ``None`` turns this off: only ``request.principal`` counts.
        metrics: serve Prometheus metrics (the ``metrics`` extra) at ``metrics_path``.
            ``None`` means the ``PARTYDECO_METRICS`` environment variable, else off.
        metrics_path: the metrics URL; ``None`` means ``PARTYDECO_METRICS_PATH``, else
            ``/metrics``.
        metrics_token: a bearer token the metrics URL asks for; ``None`` means
            ``PARTYDECO_METRICS_TOKEN``, else none (the URL is open).
        health: serve ``/healthz`` and ``/readyz``. ``None`` means ``PARTYDECO_HEALTH``,
            else on whenever metrics or the admin API are.
        admin_token: the admin API's secret (at least 16 characters): with it,
            ``/_partydeco/rooms`` lists rooms and connections. ``None`` means
            ``PARTYDECO_ADMIN_TOKEN``, else the API is off.
        json_logs: ``partydeco serve`` logs one JSON object per line. ``None`` means
            ``PARTYDECO_LOG_FORMAT=json``, else plain text.
        tracing: OpenTelemetry spans for handshakes, requests and handler runs, in
            the trace of the client's request (the ``otel`` extra). ``None`` means
            ``PARTYDECO_TRACING``, else off.
        presence: tell the room's clients who is connected (a ``partydeco.presence``
            list when they join, then ``partydeco.join`` / ``partydeco.leave``) and
            answer ``GET .../presence`` (see the presence guide). Off by default;
            ``on_join`` / ``on_leave`` handlers run either way.
        presence_grace: seconds a user whose last connection closed stays present; a
            connection of theirs arriving meanwhile (a reconnecting tab) means no
            leave and no join. ``0`` reports the leave at once.
        presence_snapshot: most users listed in the ``partydeco.presence`` message a
            connection gets when it joins (the total is always given; the rest is
            read with ``GET .../presence``).
        history: broadcasts each room keeps, with an offset, for clients that
            reconnect with ``?since=<offset>&epoch=<epoch>``; ``0`` (the default)
            keeps none and leaves frames as they are. With history on, broadcast
            text and JSON go out as ``partydeco.message`` envelopes (see the
            history guide). At most half of ``max_pending_messages``: a client that
            missed them all gets them at once.
        history_ttl: seconds a broadcast stays in the history; ``None`` for no age
            limit.
        history_bytes: bytes of broadcasts one room keeps at most, in memory and in
            its storage; the oldest go first. At most half of ``max_pending_bytes``.
    """

    max_message_size: int = 1 << 20
    max_body_size: int = 1 << 20
    max_pending_messages: int = 1024
    max_pending_bytes: int = 8 << 20
    max_pending_bytes_per_process: int = 64 << 20
    max_unfinished_bytes: int = 32 << 20
    message_timeout: float = 30.0
    max_room_id_length: int = 256
    close_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    state_limit: int = 2048
    storage: str | os.PathLike[str] | None = None
    idle_timeout: float = 60.0
    alarm_retry_delay: float = 2.0
    alarm_max_retries: int = 6
    allowed_origins: tuple[str, ...] | None = None
    require_origin: bool = False
    cors: bool = False
    cors_max_age: int = 600
    token_refresh: bool = False
    token_leeway: float = 5.0
    max_connections_per_room: int | None = 10_000
    max_connections_per_address: int | None = 1_000
    handshake_rate: float | None = 20.0
    handshake_burst: int = 200
    max_messages_per_second: float | None = 200.0
    message_burst: int = 1_000
    message_rate_action: Literal["close", "drop"] = "close"
    max_bytes_per_second: float | None = float(1 << 20)
    byte_burst: int | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    forwarded_header: str = "X-Forwarded-For"
    max_tracked_addresses: int = 65_536
    limit_loopback: bool = False
    redis_url: str | None = None
    redis_lease: float = 5.0
    redis_prefix: str = "partydeco"
    principal_header: str | None = "X-User-ID"
    metrics: bool | None = None
    metrics_path: str | None = None
    # secrets stay out of reprs and logs
    metrics_token: str | None = dataclass_field(default=None, repr=False)
    health: bool | None = None
    admin_token: str | None = dataclass_field(default=None, repr=False)
    json_logs: bool | None = None
    tracing: bool | None = None
    presence: bool = False
    presence_grace: float = 10.0
    presence_snapshot: int = 100
    history: int = 0
    history_ttl: float | None = 3600.0
    history_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        check_operations(self)
        if self.storage is not None and not isinstance(self.storage, (str, os.PathLike)):
            raise ValueError(f"storage must be a URL or path string, not {self.storage!r}")
        retries = self.alarm_max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"alarm_max_retries must be a non-negative int, not {retries!r}")
        if self.redis_url is not None and not isinstance(self.redis_url, str):
            raise ValueError(f"redis_url must be a URL string, not {self.redis_url!r}")
        if not isinstance(self.redis_prefix, str) or not self.redis_prefix:
            raise ValueError(f"redis_prefix must be a non-empty string, not {self.redis_prefix!r}")
        header = self.principal_header
        if header is not None and (
            not isinstance(header, str) or not header.isascii() or not _TOKEN.match(header)
        ):
            raise ValueError(f"principal_header must be a header name or None, not {header!r}")
        for name in ("require_origin", "cors", "token_refresh", "limit_loopback", "presence"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if not _is_number(self.token_leeway) or self.token_leeway < 0:
            leeway = self.token_leeway
            raise ValueError(f"token_leeway must be a non-negative number, not {leeway!r}")
        for name in (
            "max_connections_per_room",
            "max_connections_per_address",
            "handshake_rate",
            "max_messages_per_second",
            "max_bytes_per_second",
        ):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or value <= 0):
                raise ValueError(f"{name} must be a positive number or None, not {value!r}")
        for name in ("presence_grace", "presence_snapshot", "history"):
            value = getattr(self, name)
            integral = name != "presence_grace"
            if not _is_number(value) or value < 0 or (integral and not isinstance(value, int)):
                kind = "int" if integral else "number"
                raise ValueError(f"{name} must be a non-negative {kind}, not {value!r}")
        for name, bound in (
            ("history", "max_pending_messages"),
            ("history_bytes", "max_pending_bytes"),
        ):
            half = getattr(self, bound) // 2
            if getattr(self, name) > half:
                raise ValueError(
                    f"{name} must be at most half of {bound} ({half}): a client that missed "
                    "the whole history gets it at once, with live messages"
                )
        ttl = self.history_ttl
        if ttl is not None and (not _is_number(ttl) or ttl <= 0):
            raise ValueError(f"history_ttl must be a positive number or None, not {ttl!r}")
        if self.message_rate_action not in ("close", "drop"):
            raise ValueError(
                f"message_rate_action must be 'close' or 'drop', not {self.message_rate_action!r}"
            )
        if self.allowed_origins is not None:
            origins = _strings("allowed_origins", self.allowed_origins)
            OriginPolicy(origins)  # raises ValueError naming a malformed entry
            object.__setattr__(self, "allowed_origins", origins)
        proxies = _strings("trusted_proxies", self.trusted_proxies)
        for entry in proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies entries must be IP addresses or CIDR networks, not {entry!r}"
                ) from None
        object.__setattr__(self, "trusted_proxies", proxies)
        forwarded = self.forwarded_header
        if not isinstance(forwarded, str) or forwarded.lower() not in FORWARDED_HEADERS:
            raise ValueError(
                f"forwarded_header must be 'X-Forwarded-For' or 'Forwarded', not {forwarded!r}"
            )
        if self.byte_burst is None and _is_number(self.max_message_size):
            object.__setattr__(self, "byte_burst", max(8 << 20, self.max_message_size))
        for field in fields(self):
            if field.name in _SPECIAL:
                continue
            value = getattr(self, field.name)
            if not _is_number(value) or value <= 0:
                raise ValueError(f"{field.name} must be a positive number, not {value!r}")
        for name in _WHOLE:
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be a whole number, not {getattr(self, name)!r}")
        assert self.byte_burst is not None
        if self.byte_burst < self.max_message_size:
            raise ValueError(
                f"byte_burst ({self.byte_burst}) must be at least max_message_size "
                f"({self.max_message_size}): a message that large could never be sent"
            )


# Positive numbers that must also be whole.
_WHOLE = (
    "max_room_id_length",
    "byte_burst",
    "max_pending_bytes_per_process",
    "max_unfinished_bytes",
)

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a list of strings, not {value!r}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{name} must be a list of strings, not {value!r}")
    return items
