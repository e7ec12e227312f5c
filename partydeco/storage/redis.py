"""Room storage and alarms in Redis (``"redis://host:6379/0"``).

Each room's entries live in a hash (key -> msgpack value) beside a sorted set of
the same keys, all with score 0, so ``ZRANGEBYLEX`` lists them in bytewise order;
every write is one Lua script, so a batch (and a committed transaction) is applied
atomically. Alarms are one sorted set for the whole app (room -> epoch seconds).

In a cluster (:class:`partydeco.backplane.redis.RedisBackplane`) two more rules apply:

- **fencing**: a write fails with :class:`NotOwnerError` when another process holds
  the room's ownership lease, so a process that lost a room cannot overwrite the
  new owner's data;
- **alarm claims**: ``due_alarms`` claims each due alarm for this process (a key with
  a short, renewed expiry) before returning it, so an alarm fires once across the
  cluster; a claim whose process died expires and the alarm fires elsewhere. Alarm
  changes are published, so every process's scheduler learns about new alarms.

The Redis must not be a Redis Cluster (keys of one room are touched by one script),
and durability is Redis's: use ``appendonly yes`` (``appendfsync everysec`` or
``always``) if data must survive a Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import msgspec

from partydeco.extras import missing

try:
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ModuleNotFoundError as error:
    raise missing(error, "Redis storage (partydeco.storage.redis)") from None

from partydeco.storage.base import KeyRange, RoomKey, StorageBackend, WriteBatch
from partydeco.storage.errors import NotOwnerError, StorageError, StorageUnavailableError
from partydeco.storage.rediskeys import Keyspace, connect

__all__ = ["NotOwnerError", "RedisStorage", "StorageUnavailableError"]

logger = logging.getLogger("partydeco")

#: Seconds a claimed alarm stays claimed without renewal (the claimer renews it
#: while it delivers; when the claimer dies, another process fires it after this).
CLAIM_TTL = 10.0

_NOT_OWNER = "PARTYDECO_NOT_OWNER"

_WRITE = """
if ARGV[1] ~= '' then
  local owner = redis.call('GET', KEYS[3])
  if owner and owner ~= ARGV[1] then return redis.error_reply('PARTYDECO_NOT_OWNER') end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1], KEYS[2]) end
local deleted = 0
local i = 3
while i <= #ARGV do
  local op, key = ARGV[i], ARGV[i + 1]
  if op == 'p' then
    redis.call('HSET', KEYS[1], key, ARGV[i + 2])
    redis.call('ZADD', KEYS[2], 0, key)
    i = i + 3
  else
    deleted = deleted + redis.call('HDEL', KEYS[1], key)
    redis.call('ZREM', KEYS[2], key)
    i = i + 2
  end
end
return deleted
"""

_SCAN = """
local keys
local cmd = ARGV[3] == '1' and 'ZREVRANGEBYLEX' or 'ZRANGEBYLEX'
local a, b = ARGV[1], ARGV[2]
if ARGV[3] == '1' then a, b = ARGV[2], ARGV[1] end
if ARGV[4] == '-1' then
  keys = redis.call(cmd, KEYS[1], a, b)
else
  keys = redis.call(cmd, KEYS[1], a, b, 'LIMIT', 0, ARGV[4])
end
local out = {}
for start = 1, #keys, 1000 do
  local chunk = {}
  for j = start, math.min(start + 999, #keys) do chunk[#chunk + 1] = keys[j] end
  local values = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j = 1, #chunk do
    out[#out + 1] = chunk[j]
    out[#out + 1] = values[j]
  end
end
return out
"""

# KEYS[1] alarms zset; ARGV: claim key prefix, node, now, claim ttl (ms), limit.
# Returns {member, score, member, score, ...} of alarms not claimed by another
# process, earliest first; the due ones among them are now claimed by ARGV[2];
# and the first alarm skipped because another process holds it ({member, score}).
_CLAIM_DUE = """
local limit = tonumber(ARGV[5])
local now = tonumber(ARGV[3])
local out = {}
local skipped = {}
local offset = 0
local batch = limit + 16
while #out < limit * 2 and offset < 10000 do
  local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'WITHSCORES',
                          'LIMIT', offset, batch)
  if #rows == 0 then break end
  for i = 1, #rows, 2 do
    local member, score = rows[i], rows[i + 1]
    local claim = ARGV[1] .. member
    local holder = redis.call('GET', claim)
    if holder and holder ~= ARGV[2] then
      if #skipped == 0 then skipped = {member, score} end
    else
      if tonumber(score) <= now then
        redis.call('SET', claim, ARGV[2], 'PX', ARGV[4])
      end
      out[#out + 1] = member
      out[#out + 1] = score
      if #out >= limit * 2 then break end
    end
  end
  offset = offset + batch
end
return {out, skipped}
"""

# KEYS[1] alarms zset, KEYS[2] claim key; ARGV: member, time, node.
_REMOVE_IF = """
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS: claim keys; ARGV: node, ttl (ms). Returns 1/0 per key: still ours.
_RENEW_CLAIMS = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

_change = msgspec.msgpack.Encoder()
_change_decoder = msgspec.msgpack.Decoder(tuple[str, float | None])




class RedisStorage(StorageBackend):
    """Keeps every room's data and alarms in Redis (``"redis://..."``).

    Args:
        url: a redis-py URL (``redis://``, ``rediss://`` or ``unix://``).
        prefix: the first part of every key, so several apps can share one Redis.
    """

    def __init__(self, url: str, *, prefix: str = "partydeco") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.keys = Keyspace(prefix)
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        # Cluster mode (see start_cluster): this process's node id, its claims
        # (member -> alarm time) and the task that renews them.
        self._node = ""
        self._claims: dict[str, float] = {}
        self._skipped: tuple[RoomKey, float] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"RedisStorage(prefix={self.prefix!r})"

    # -- plumbing --------------------------------------------------------------------

    @property
    def client(self) -> aioredis.Redis:
        """The redis-py client, created on first use."""
        self._check_open()
        if self._client is None:
            self._client = connect(self.url)
        return self._client

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        self._check_open()
        try:
            return await op()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StorageUnavailableError(f"Redis is unavailable: {type(exc).__name__}") from exc
        except ResponseError as exc:
            if _NOT_OWNER in str(exc):
                raise NotOwnerError(
                    "this process no longer owns the room; the write was refused"
                ) from None
            raise StorageError(f"Redis refused the operation: {exc}") from exc
        except RedisError as exc:
            raise StorageError(f"Redis error: {exc}") from exc

    # -- key-value -------------------------------------------------------------------

    async def get(self, room: RoomKey, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the stored values of those *keys* that exist."""
        if not keys:
            return {}
        data, _ = self.keys.data(room)
        values: list[bytes | None] = await self._call(
            lambda: self.client.hmget(data, list(keys))
        )
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    async def scan(self, room: RoomKey, key_range: KeyRange) -> list[tuple[bytes, bytes]]:
        """Return ``(key, value)`` pairs inside *key_range*, in its order and limit."""
        if key_range.empty:
            return []
        data, index = self.keys.data(room)
        low = b"-" if key_range.low is None else b"[" + key_range.low
        high = b"+" if key_range.high is None else b"(" + key_range.high
        limit = -1 if key_range.limit is None else key_range.limit
        args = [low, high, b"1" if key_range.reverse else b"0", limit]
        flat: list[bytes] = await self._call(
            lambda: self._script(_SCAN)(keys=[index, data], args=args)
        )
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        """Apply *batch* atomically (one Lua script); return how many deleted keys existed.

        Raises:
            NotOwnerError: in a cluster, another process owns the room.
            StorageUnavailableError: Redis cannot be reached.
        """
        data, index = self.keys.data(room)
        args: list[bytes | str] = [self._node, "1" if batch.clear else "0"]
        for key, value in batch.changes.items():
            if value is None:
                args += ["d", key]
            else:
                args += ["p", key, value]
        keys = [data, index, self.keys.owner(room)]
        deleted: int = await self._call(lambda: self._script(_WRITE)(keys=keys, args=args))
        return int(deleted)

    # -- alarms ----------------------------------------------------------------------

    async def get_alarm(self, room: RoomKey) -> float | None:
        """Return the alarm time of *room*, or ``None``."""
        score: float | None = await self._call(
            lambda: self.client.zscore(self.keys.alarms, self.keys.member(room))
        )
        return None if score is None else float(score)

    async def _store_alarm(self, room: RoomKey, at: float | None) -> None:
        member = self.keys.member(room)
        pipe = self.client.pipeline(transaction=True)
        if at is None:
            pipe.zrem(self.keys.alarms, member)
            pipe.delete(self.keys.claim(member))
        else:
            # A claim held while the alarm is being delivered stays: the new time fires
            # after that delivery ends (as in one process), not concurrently with it.
            pipe.zadd(self.keys.alarms, {member: at})
        pipe.publish(self.keys.alarms, _change.encode((member, at)))
        await self._call(pipe.execute)
        if at is None:
            self._claims.pop(member, None)

    async def _remove_alarm_if(self, room: RoomKey, at: float) -> bool:
        member = self.keys.member(room)
        removed: int = await self._call(
            lambda: self._script(_REMOVE_IF)(
                keys=[self.keys.alarms, self.keys.claim(member)],
                args=[member, repr(at), self._node],
            )
        )
        self._claims.pop(member, None)
        return bool(removed)

    async def due_alarms(self, until: float, limit: int = 100) -> list[tuple[RoomKey, float]]:
        """Return up to *limit* ``(room, time)`` alarms with ``time <= until``, earliest first.

        In a cluster the due alarms returned are claimed by this process, and alarms
        another process claimed are left out (see the module docs).
        """
        if not self._node:
            high = "+inf" if until == math.inf else repr(until)
            rows: list[tuple[bytes, float]] = await self._call(
                lambda: self.client.zrangebyscore(
                    self.keys.alarms, "-inf", high, start=0, num=limit, withscores=True
                )
            )
            return [(self.keys.room(member), float(score)) for member, score in rows]
        now = time.time()
        result: list[Any] = await self._call(
            lambda: self._script(_CLAIM_DUE)(
                keys=[self.keys.alarms],
                args=[self.keys.claim_prefix, self._node, repr(now), int(CLAIM_TTL * 1000), limit],
            )
        )
        flat, skipped = result
        due: list[tuple[RoomKey, float]] = []
        for i in range(0, len(flat), 2):
            member = flat[i].decode("utf-8")
            at = float(flat[i + 1])
            if at > until:
                break
            if at <= now:
                self._claims[member] = at
            due.append((self.keys.room(member), at))
        self._skipped = None
        if skipped:
            self._skipped = (self.keys.room(skipped[0]), float(skipped[1]))
        return due

    # -- cluster mode ----------------------------------------------------------------

    async def start_cluster(self, node: str) -> None:
        """Fence writes and claim alarms as process *node* (a backplane calls this)."""
        self._node = node
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._renew_claims(), name="partydeco-alarm-claims"),
            loop.create_task(self._watch_alarms(), name="partydeco-alarm-changes"),
        ]

    async def stop_cluster(self) -> None:
        """Stop renewing claims and watching alarm changes."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew_claims(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_TTL / 3)
            if self._skipped is not None:
                # An alarm held by another process: look again, in case it died.
                self._notify(*self._skipped)
            members = list(self._claims)
            if not members:
                continue
            keys = [self.keys.claim(m) for m in members]
            args = [self._node, int(CLAIM_TTL * 1000)]
            try:
                kept = await self._call(partial(self._script(_RENEW_CLAIMS), keys=keys, args=args))
            except StorageError:
                continue
            for member, ok in zip(members, kept, strict=True):
                if not ok:
                    self._claims.pop(member, None)

    async def _watch_alarms(self) -> None:
        """Wake this process's scheduler when another process changes an alarm."""
        delay = 0.1
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.keys.alarms)
                delay = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    member, at = _change_decoder.decode(message["data"])
                    self._notify(self.keys.room(member), at)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, msgspec.DecodeError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the cluster tasks and close the connection pool."""
        await self.stop_cluster()
        client, self._client = self._client, None
        await super().close()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
