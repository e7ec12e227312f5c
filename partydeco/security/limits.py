"""Admission control: per-address and per-room limits, origin checks, at the handshake.

One :class:`Guard` per app holds the process-wide tables. Every table is
bounded: the handshake-rate table forgets idle addresses and never holds more
than ``max_tracked_addresses``; the connection counters only hold keys with at
least one open socket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..response import Response
from .origins import DEFAULT_ORIGINS, OriginPolicy
from .proxies import Client, forwarded_client, is_loopback, limit_key, networks

if TYPE_CHECKING:
    from ..config import Config
    from .expiry import Expiry

__all__ = ["Admission", "ByteBudget", "Guard", "MessageRate", "RateTable", "header"]


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The value of header *name* (lower case) in an ASGI scope; ``""`` if it is repeated."""
    found: str | None = None
    size = len(name)
    for key, value in scope.get("headers", ()):
        if len(key) == size and key.lower() == name:  # lower() only where it can match
            if found is not None:
                return ""
            found = value.decode("latin-1")
    return found


def _origin_and_forwarded(
    headers: Iterable[tuple[bytes, bytes]], forwarded: bytes
) -> tuple[str | None, list[bytes]]:
    """``Origin`` as :func:`header` reads it, and the values of the *forwarded* header,
    in one pass over *headers*."""
    origin: str | None = None
    values: list[bytes] = []
    size = len(forwarded)
    for key, value in headers:
        length = len(key)
        if length == 6 and key.lower() == b"origin":
            origin = "" if origin is not None else value.decode("latin-1")
        elif length == size and key.lower() == forwarded:
            values.append(value)
    return origin, values


class RateTable:
    """Token buckets keyed by client address, with bounded memory.

    A bucket holds up to *burst* tokens and gains *rate* per second; each event
    takes one. A bucket that has been idle long enough to be full again is the
    same as no bucket, so such entries are dropped as new keys arrive; when the
    table is at *max_entries*, the least recently seen key is dropped.
    """

    __slots__ = ("_buckets", "_full_after", "burst", "max_entries", "rate")

    def __init__(self, rate: float, burst: int, max_entries: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_entries = max_entries
        self._full_after = burst / rate
        # key -> [tokens, last update], least recently seen first
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """Take a token for *key*: ``0.0`` if there was one, else seconds until one is due."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._prune(now)
            bucket = buckets[key] = [self.burst, now]
        else:
            buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate

    def _prune(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            _, (_, last) = next(iter(buckets.items()))
            if len(buckets) >= self.max_entries or now - last >= self._full_after:
                buckets.popitem(last=False)
            else:
                break

    def __len__(self) -> int:
        return len(self._buckets)


class MessageRate:
    """One connection's budget: a token bucket of *burst* tokens gaining *rate* a
    second; each message takes one (or, counting bytes, one per byte).

    Two floats per connection, touched once per message by the socket's reader.
    """

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = self.burst
        self.last = time.monotonic()

    def allow(self, cost: float = 1.0) -> bool:
        """Take *cost* tokens; ``False`` (taking none) when the connection is over its rate."""
        now = time.monotonic()
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if tokens < cost:
            self.tokens = tokens
            return False
        self.tokens = tokens - cost
        return True


class ByteBudget:
    """Bytes that the sockets of one process hold together, and their limit.

    Attributes:
        limit: the most they may hold.
        held: what they hold now.
    """

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0


class Admission:
    """The slots one accepted WebSocket holds; :meth:`release` gives them back once."""

    __slots__ = ("_guard", "address", "room", "timer")

    def __init__(self, guard: Guard, address: str, room: tuple[str, str]) -> None:
        self._guard: Guard | None = guard
        self.address = address
        self.room = room
        #: the token expiry of the connection, cancelled on release
        self.timer: Expiry | None = None

    def release(self) -> None:
        """Give back the connection slots and cancel the expiry timer (idempotent)."""
        guard = self._guard
        if guard is None:
            return
        self._guard = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        _decrement(guard.per_address, self.address)
        _decrement(guard.per_room, self.room)


def _decrement(counts: MutableMapping[Any, int], key: Any) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


class Guard:
    """The app's admission state: who may connect, and how many.

    Args:
        config: the app's configuration (process-wide limits, trusted proxies).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._trusted = networks(config.trusted_proxies)
        self._forwarded = config.forwarded_header.lower().encode("latin-1")
        self.handshakes = (
            RateTable(config.handshake_rate, config.handshake_burst, config.max_tracked_addresses)
            if config.handshake_rate is not None
            else None
        )
        #: open sockets by client address key (see :func:`partydeco.security.proxies.limit_key`)
        self.per_address: dict[str, int] = {}
        #: open sockets by (party, room id)
        self.per_room: dict[tuple[str, str], int] = {}
        self._policies: dict[tuple[tuple[str, ...] | None, bool], OriginPolicy] = {}

    def client_and_origin(self, scope: MutableMapping[str, Any]) -> tuple[Client, str | None]:
        """The client, resolved through trusted proxies and recorded in *scope*, and the
        ``Origin`` header as :func:`header` reads it, from one pass over the headers.

        ``request.remote_addr`` (and the access log) then show the client, not the
        proxy; its address is ``None`` when the proxy header's hop is not an address.
        """
        origin, forwarded = _origin_and_forwarded(scope.get("headers", ()), self._forwarded)
        peer = scope.get("client")
        client = forwarded_client(
            peer[0] if peer else None, forwarded, self._trusted, self._forwarded
        )
        if client.forwarded:
            scope["client"] = (client.address, 0) if client.address is not None else None
        return client, origin

    def policy(self, config: Config) -> OriginPolicy:
        """The compiled origin policy of a (party's) configuration."""
        key = (config.allowed_origins, config.require_origin)
        policy = self._policies.get(key)
        if policy is None:
            entries = config.allowed_origins
            policy = self._policies[key] = OriginPolicy(
                DEFAULT_ORIGINS if entries is None else entries, config.require_origin
            )
        return policy

    def origin_allowed(self, scope: Mapping[str, Any], config: Config, origin: str | None) -> bool:
        """Whether *origin*, the request's ``Origin`` as :func:`header` reads it, passes
        the configuration's allow-list."""
        host = header(scope, b"host") if origin is not None else None  # without one, unused
        return self.policy(config).allows(origin, host)

    def admit(
        self, scope: MutableMapping[str, Any], party: str, room: str, config: Config
    ) -> Admission | Response:
        """Check a WebSocket handshake against the limits and the origin policy.

        Returns the slots the connection holds, or the refusal to send:
        429 with ``Retry-After`` (too many handshakes from the address), 403 (the
        origin is not allowed), 429 (too many sockets from the address) or 503
        (the room is full).
        """
        client, origin = self.client_and_origin(scope)
        address = limit_key(client.address)
        # Only a loopback TCP peer is exempt: a forwarded address is whatever a header says.
        exempt = (
            not self.config.limit_loopback and not client.forwarded and is_loopback(client.address)
        )
        if self.handshakes is not None and not exempt:
            wait = self.handshakes.take(address, time.monotonic())
            if wait:
                return Response(
                    "Too many connection attempts; retry later",
                    429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if not self.origin_allowed(scope, config, origin):
            return Response("Origin not allowed", 403)
        cap = self.config.max_connections_per_address
        if cap is not None and not exempt and self.per_address.get(address, 0) >= cap:
            return Response("Too many connections from this address", 429)
        key = (party, room)
        cap = config.max_connections_per_room
        if cap is not None and self.per_room.get(key, 0) >= cap:
            return Response("Room is full", 503)
        self.per_address[address] = self.per_address.get(address, 0) + 1
        self.per_room[key] = self.per_room.get(key, 0) + 1
        return Admission(self, address, key)
