"""The Redis key schema and client settings that storage and the cluster share.

Every key and channel partydeco uses in Redis is spelled here once, under one
prefix (``config.redis_prefix``), so :class:`~partydeco.storage.redis.RedisStorage`
(whose writes are fenced by the ownership lease) and the Redis backplane (which
takes and renews that lease) cannot drift apart. ``P`` below is the prefix:

- ``P:d:<party>/<room>`` / ``P:k:<party>/<room>``: a room's values (hash) and keys (sorted set);
- ``P:alarms``: every room's alarm time (sorted set), and the channel announcing changes;
  it also holds each cron's next tick, as the member ``<party>/cron/<name>``
  (:mod:`partydeco.crontab`);
- ``P:claim:<party>/<room>``: the process delivering a due alarm, with a short expiry;
- ``P:owner:<party>/<room>``: the process owning a room, with a lease;
- ``P:alive:<node>``: a process is alive, with the same lease;
- ``P:node:<node>``: the channel a process listens on.
"""

from __future__ import annotations

from ..extras import missing

try:
    import redis.asyncio as aioredis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as error:
    raise missing(error, "Redis (partydeco.storage.rediskeys)") from None

from .base import RoomKey

__all__ = ["Keyspace", "connect"]


def connect(url: str) -> aioredis.Redis:
    """A redis-py asyncio client for *url* that fails fast instead of retrying,
    so an outage is noticed (and reported as 503) at once."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
    )
    return client


class Keyspace:
    """The names of every Redis key and channel under *prefix* (see the module)."""

    __slots__ = ("alarms", "claim_prefix", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        #: the alarms sorted set, and the channel on which alarm changes are published.
        self.alarms = f"{prefix}:alarms"
        #: what a claim key starts with (the Lua that claims alarms appends the member).
        self.claim_prefix = f"{prefix}:claim:"

    def __repr__(self) -> str:
        return f"Keyspace({self.prefix!r})"

    @staticmethod
    def member(room: RoomKey) -> str:
        """The room's part of key names and its member in the alarms set: ``party/room``
        (party names have no ``/``)."""
        return f"{room.party}/{room.room}"

    @staticmethod
    def room(member: bytes | str) -> RoomKey:
        """The room a :meth:`member` names."""
        text = member.decode("utf-8") if isinstance(member, bytes) else member
        party, _, room = text.partition("/")
        return RoomKey(party, room)

    def data(self, room: RoomKey) -> tuple[str, str]:
        """The room's values (a hash) and its keys (a sorted set, for ordered listing)."""
        name = self.member(room)
        return f"{self.prefix}:d:{name}", f"{self.prefix}:k:{name}"

    def claim(self, member: str) -> str:
        """The key naming the process delivering *member*'s due alarm."""
        return self.claim_prefix + member

    def owner(self, room: RoomKey) -> str:
        """The key holding *room*'s ownership lease."""
        return f"{self.prefix}:owner:{self.member(room)}"

    def alive(self, node: str) -> str:
        """The key saying process *node* is alive."""
        return f"{self.prefix}:alive:{node}"

    def channel(self, node: str) -> str:
        """The pub/sub channel process *node* listens on."""
        return f"{self.prefix}:node:{node}"
