"""Who owns which room, and which processes are alive: leases in Redis.

A room's owner holds ``P:owner:<party>/<room>`` (see
:mod:`partydeco.storage.rediskeys`) with an expiry of one lease; it renews its
leases every third of a lease, and with them its ``P:alive:<node>`` key. A lease
that expired, or was given back, is free: the next arrival anywhere takes it.
Every change is one Lua script, so taking, renewing and giving back never race.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ...storage import RoomKey
    from ...storage.rediskeys import Keyspace

__all__ = ["Leases", "Renewal"]

# Take the lease if nobody holds it (renewing our own); answer the owner.
_ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return owner
"""

# Renew our leases; a lease that vanished (given back by a release racing with a new
# arrival, or a Redis that restarted empty) is taken again: nobody else holds the room.
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


def _glob_escape(text: str) -> str:
    """*text* as a literal in a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Renewal(NamedTuple):
    """What one :meth:`Leases.renew` found."""

    #: for each owned room: whether this process still holds its lease.
    kept: list[bool]
    #: for each linked room: the owner's process id, or ``None`` if nobody holds it.
    owners: list[str | None]
    #: for each peer: whether it is alive.
    alive: list[bool]


class Leases:
    """The leases of process *node* in one Redis (see the module).

    Args:
        client: the Redis client.
        keys: the key schema.
        node: this process's id.
        lease: seconds a lease lasts without renewal.
    """

    def __init__(self, client: aioredis.Redis, keys: Keyspace, node: str, lease: float) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.lease_ms = int(lease * 1000)
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Leases {self.node}>"

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    async def acquire(self, room: RoomKey) -> str:
        """Take *room*'s lease if nobody holds it; return the owner's process id."""
        owner = await self._script(_ACQUIRE)(
            keys=[self.keys.owner(room)], args=[self.node, self.lease_ms]
        )
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def release(self, rooms: Sequence[RoomKey]) -> None:
        """Give back the leases of *rooms* that this process holds."""
        if rooms:
            await self._script(_RELEASE)(
                keys=[self.keys.owner(room) for room in rooms], args=[self.node]
            )

    async def owner(self, room: RoomKey) -> str | None:
        """The process owning *room*, or ``None`` if nobody does."""
        owner = await self.client.get(self.keys.owner(room))
        return owner.decode() if isinstance(owner, bytes) else owner

    async def nodes(self) -> list[str]:
        """The processes of the cluster: those listening on their channel now
        (``PUBSUB CHANNELS``, one channel per live process)."""
        start = len(self.keys.channel(""))
        channels = await self.client.pubsub_channels(_glob_escape(self.keys.channel("")) + "*")
        return sorted((c.decode() if isinstance(c, bytes) else c)[start:] for c in channels)

    async def announce(self) -> None:
        """Say this process is alive, for one lease."""
        await self.client.set(self.keys.alive(self.node), b"1", px=self.lease_ms)

    async def renew(
        self, owned: Sequence[RoomKey], linked: Sequence[RoomKey], peers: Sequence[str]
    ) -> Renewal:
        """In one round trip: renew the leases of *owned* rooms and this process's
        liveness, read the owners of *linked* rooms, and check that *peers* are alive."""
        pipe = self.client.pipeline(transaction=False)
        if owned:
            await self._script(_RENEW)(
                keys=[self.keys.owner(room) for room in owned],
                args=[self.node, self.lease_ms],
                client=pipe,
            )
        pipe.set(self.keys.alive(self.node), b"1", px=self.lease_ms)
        if linked:
            pipe.mget([self.keys.owner(room) for room in linked])
        for peer in peers:
            pipe.exists(self.keys.alive(peer))
        results = list(await pipe.execute())
        kept = [bool(k) for k in results.pop(0)] if owned else []
        results.pop(0)
        owners = (
            [v.decode() if isinstance(v, bytes) else None for v in results.pop(0)]
            if linked
            else []
        )
        return Renewal(kept, owners, [bool(alive) for alive in results])
