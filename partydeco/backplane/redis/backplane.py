"""The Redis backplane: every process on one Redis is one cluster, one owner per room.

Per process: one id (``node``), one pub/sub channel it listens on, one publisher
(:mod:`.relay`), and one housekeeping loop that every ``lease / 3`` seconds renews
this process's room leases and its liveness (:mod:`.leases`), checks that the
owners of the sockets it relays still hold their rooms (else it re-homes them, see
:meth:`ClusterRoom.rehome`), and that the processes holding the sockets of its
rooms are alive (else those connections end with 1006). The key schema is
:mod:`partydeco.storage.rediskeys`.

When Redis cannot be reached (the subscription breaks, or the leases could not
be renewed for most of a lease), the process stops serving rooms: every socket
it holds is closed with **1012** (service restart), new handshakes and requests
get **503**, and it reconnects in the background; service resumes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisError

from ...closecodes import ABNORMAL, GOING_AWAY, SERVICE_RESTART
from ...errors import BackplaneUnavailableError
from ...parties import Parties
from ...room import Room
from ...storage import RoomKey
from ...storage.redis import RedisStorage
from ...storage.rediskeys import Keyspace, connect
from .leases import Leases
from .relay import Publisher
from .room import ClusterRoom
from .router import route
from .wire import AlarmCall, Close, Deny, HttpCall, Inspect, Moved, Reply, decode_batch

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ...config import Config
    from ...dispatch import Dispatch
    from ...storage import StorageBackend
    from ..base import RoomHandle
    from .sockets import Link, Remote

__all__ = ["RedisBackplane"]

logger = logging.getLogger("partydeco")

#: Bound of the outgoing relay FIFO.
MAX_RELAY_EVENTS = 65536
MAX_RELAY_BYTES = 64 << 20

_UNAVAILABLE = "Service Unavailable: the cluster's Redis cannot be reached; try again shortly"


def _node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisBackplane:
    """Rooms spread over every process that uses the same Redis (see the module).

    Args:
        url: the Redis URL.
        dispatch, env, config, storage: what every room is made with.
    """

    def __init__(
        self,
        url: str,
        dispatch: Mapping[str, Dispatch],
        env: Mapping[str, str],
        config: Config,
        *,
        storage: StorageBackend | None = None,
    ) -> None:
        self.url = url
        self.dispatch = dispatch
        self.env = env
        self.config = config
        self.storage = storage
        self.keys = Keyspace(config.redis_prefix)
        self.lease = config.redis_lease
        #: seconds an edge waits for the owner to answer a handshake or request.
        self.call_timeout = max(30.0, 3 * self.lease)
        #: the app's parties, as rooms reach them (``room.parties``).
        self.parties = Parties(self, dispatch, config)
        #: this process's id in the cluster (set by :meth:`start`, after any fork).
        self.node = ""
        self._ids = itertools.count()
        self._rooms: dict[RoomKey, ClusterRoom] = {}
        #: rooms this process owns, for lease renewal.
        self.owned: dict[RoomKey, ClusterRoom] = {}
        #: sockets held here for other owners, by socket id.
        self.links: dict[str, Link] = {}
        #: sockets held elsewhere in rooms owned here, by socket id.
        self.remotes: dict[str, Remote] = {}
        # calls (relayed requests and alarms) waiting for a reply: id -> (owner, future).
        self._calls: dict[str, tuple[str, asyncio.Future[Reply]]] = {}
        self.publisher = Publisher(self.keys.channel, MAX_RELAY_EVENTS, MAX_RELAY_BYTES)
        self._client: aioredis.Redis | None = None
        #: the room leases in Redis (see :mod:`.leases`), once started.
        self.leases: Leases | None = None
        self._available = False
        self._last_renewal = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        state = "available" if self._available else "unavailable"
        return f"<RedisBackplane {self.node or 'unstarted'} {state} rooms={len(self._rooms)}>"

    # -- the Backplane interface ----------------------------------------------------------

    def room(self, party: str, room_id: str) -> ClusterRoom:
        """The room *room_id* of *party* as seen from this process."""
        return self.cluster_room(party, room_id)

    def cluster_room(self, party: str, room_id: str) -> ClusterRoom:
        """The :class:`ClusterRoom` *room_id* of *party*, created on first use."""
        key = RoomKey(party, room_id)
        room = self._rooms.get(key)
        if room is None:
            local = Room(
                room_id, self.dispatch[party], self.env, self.config,
                storage=self.storage, parties=self.parties,
            )
            room = self._rooms[key] = ClusterRoom(self, local)
        return room

    def rooms(self) -> Iterator[ClusterRoom]:
        """The rooms this process knows (owned here, or with sockets held here)."""
        return iter(list(self._rooms.values()))

    def local_rooms(self) -> Iterator[Room]:
        """The rooms this process owns (their handlers run here)."""
        return iter([room.room for room in list(self.owned.values())])

    @property
    def available(self) -> bool:
        """Whether Redis is reachable and this process serves rooms."""
        return self._available

    def release(self, room: RoomHandle) -> None:
        """Forget an idle room and give its lease back."""
        key = RoomKey(room.party, room.id)
        if not room.idle or self._rooms.get(key) is not room:
            return
        self._rooms.pop(key).room.unload()
        if self.owned.get(key) is room:
            del self.owned[key]
            if self._available:
                self.spawn(self._release_idle(room))

    async def start(self) -> None:
        """Connect to Redis, subscribe, and start the housekeeping; if Redis is down,
        start anyway (answering 503) and keep trying."""
        if self._supervisor is not None:
            return
        self.node = _node_id()
        self._client = connect(self.url)
        self.leases = Leases(self._client, self.keys, self.node, self.lease)
        if isinstance(self.storage, RedisStorage):
            await self.storage.start_cluster(self.node)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(ready), name="partydeco-redis"
        )
        # Serve at once if Redis answers soon; otherwise answer 503 until it does.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ready), 5.0)
        logger.info("partydeco cluster node %s on Redis (%s)", self.node,
                    "connected" if self._available else "unavailable, retrying")

    async def stop(self) -> None:
        """Hand the rooms owned here over (their other sockets re-attach to a new owner)
        and disconnect."""
        if self._supervisor is None:
            return
        if self._available:
            await self._hand_over()
        supervisor, self._supervisor = self._supervisor, None
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._available = False
        self.publisher.enabled = False
        if isinstance(self.storage, RedisStorage):
            await self.storage.stop_cluster()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _hand_over(self) -> None:
        # Sockets held elsewhere end here (on_close runs), the leases are given back,
        # and then their holders are told to re-attach to whoever takes the room next.
        rooms = list(self.owned.values())
        remotes = [remote for room in rooms for remote in room.remotes.values()]
        for remote in remotes:
            remote.sink.detach()
            remote.push(Close(remote.open.sock, GOING_AWAY, "server shutting down"))
        tasks = [remote.task for remote in remotes if remote.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.shutdown_timeout)
        await asyncio.gather(*(room.disown() for room in rooms))
        self.owned.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._release([room.key for room in rooms])
        for remote in remotes:
            self.post(remote.open.edge, Moved(remote.open.sock), force=True)
        for link in list(self.links.values()):
            self.post(link.owner, Close(link.sock, GOING_AWAY, "server shutting down"), force=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.publisher.drain(), 2.0)

    # -- helpers for rooms ----------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh id, unique in the cluster (for sockets and calls)."""
        return f"{self.node}.{next(self._ids)}"

    def check(self) -> None:
        """Raise :class:`BackplaneUnavailableError` while Redis cannot be reached."""
        if not self._available:
            raise BackplaneUnavailableError(_UNAVAILABLE)

    def post(self, node: str, event: Any, size: int = 0, *, force: bool = False) -> bool:
        """Queue *event* for process *node* (see :class:`Publisher`)."""
        return self.publisher.post(node, event, size, force=force)

    def deny(self, edge: str, sock: str, status: int, owner: str) -> None:
        """Refuse a socket: redirect it to *owner* (status 0), or fail it with *status*."""
        self.post(edge, Deny(sock, status, owner), force=True)

    def reply(self, edge: str, reply: Reply) -> None:
        """Answer a call."""
        self.post(edge, reply, len(reply.body), force=True)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep *task* referenced until it ends (cancelled by :meth:`stop`)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run *coro* in a task of the backplane's (cancelled by :meth:`stop`)."""
        self.track(asyncio.get_running_loop().create_task(coro))

    async def acquire(self, key: RoomKey) -> str:
        """Take *key*'s lease if nobody holds it; return the owner's process id.

        Raises:
            BackplaneUnavailableError: Redis cannot be reached.
        """
        self.check()
        assert self.leases is not None
        try:
            return await self.leases.acquire(key)
        except (RedisError, OSError):
            raise BackplaneUnavailableError(_UNAVAILABLE) from None

    async def _release_idle(self, room: ClusterRoom) -> None:
        await room.disown()  # its history is stored before another owner may load it
        if (key := room.key) not in self.owned:  # not taken again in the meantime
            with contextlib.suppress(RedisError, OSError):
                await self._release([key])

    async def _release(self, keys: list[RoomKey]) -> None:
        assert self.leases is not None
        await self.leases.release(keys)

    async def call(
        self, owner: str, make: Callable[[str], HttpCall | AlarmCall | Inspect]
    ) -> Reply:
        """Send a request, alarm or inspection to *owner* and wait for its :class:`Reply`.

        Raises:
            BackplaneUnavailableError: no answer within :attr:`call_timeout`, the owner
                died, or Redis is gone.
        """
        call = self.new_id()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._calls[call] = (owner, future)
        event = make(call)
        size = len(event.body) if isinstance(event, HttpCall) else 0
        try:
            await self.publisher.post_wait(owner, event, size)
            return await asyncio.wait_for(future, self.call_timeout)
        except TimeoutError:
            raise BackplaneUnavailableError(
                "Service Unavailable: the room's owner did not answer in time"
            ) from None
        finally:
            self._calls.pop(call, None)

    def answered(self, reply: Reply) -> None:
        """A call of this process was answered (called by the router)."""
        entry = self._calls.get(reply.call)
        if entry is not None and not entry[1].done():
            entry[1].set_result(reply)

    def _fail_calls(self, owner: str | None, reason: str) -> None:
        for _call, (node, future) in list(self._calls.items()):
            if (owner is None or node == owner) and not future.done():
                future.set_exception(BackplaneUnavailableError(f"Service Unavailable: {reason}"))

    # -- the connection to Redis ----------------------------------------------------------

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        delay = 0.1
        while True:
            assert self._client is not None and self.leases is not None
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.keys.channel(self.node))
                await self.leases.announce()
                self._last_renewal = time.monotonic()
                self._available = True
                self.publisher.enabled = True
                delay = 0.1
                if not ready.done():
                    ready.set_result(None)
                await self._serve(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._outage(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _serve(self, pubsub: Any) -> None:
        """Listen, publish and keep house until one of them fails."""
        assert self._client is not None
        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(self._listen(pubsub), name="partydeco-redis-listen"),
            loop.create_task(self.publisher.run(self._client), name="partydeco-redis-publish"),
            loop.create_task(self._housekeeping(), name="partydeco-redis-leases"),
        ]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _listen(self, pubsub: Any) -> None:
        channel = self.keys.channel(self.node)
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            try:
                events = decode_batch(message["data"])
            except msgspec.DecodeError:
                logger.error("ignored a malformed message on %s", channel)
                continue
            for event in events:
                try:
                    route(self, event)
                except Exception:
                    logger.exception("could not handle a cluster event %s", type(event).__name__)

    async def _housekeeping(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except (RedisError, OSError) as exc:
                if time.monotonic() - self._last_renewal > self.lease * 0.6:
                    raise
                logger.warning("could not renew room leases (%s); retrying", type(exc).__name__)

    async def _renew(self) -> None:
        assert self.leases is not None
        owned = list(self.owned.values())
        linked = [room for room in self._rooms.values() if room.links and not room.owned]
        peers = sorted(
            {remote.open.edge for remote in self.remotes.values()}
            | {owner for owner, _ in self._calls.values()}
        )
        renewal = await self.leases.renew(
            [room.key for room in owned], [room.key for room in linked], peers
        )
        self._last_renewal = time.monotonic()
        for room, kept in zip(owned, renewal.kept, strict=True):
            if not kept and self.owned.get(room.key) is room:
                logger.warning("lost the lease of %r; closing its connections", room)
                room.lose()
                if self._rooms.get(room.key) is room:
                    del self._rooms[room.key]
        for room, owner in zip(linked, renewal.owners, strict=True):
            if any(link.owner != owner for link in room.links.values()):
                self.spawn(room.rehome())
        for peer, alive in zip(peers, renewal.alive, strict=True):
            if not alive:
                self._peer_died(peer)

    def _peer_died(self, peer: str) -> None:
        logger.warning("cluster process %s is gone", peer)
        for remote in list(self.remotes.values()):
            if remote.open.edge == peer:
                remote.sink.detach()
                remote.push(Close(remote.open.sock, ABNORMAL, ""))
        self._fail_calls(peer, "the room's owner stopped")

    def _outage(self, exc: BaseException) -> None:
        if self._available:
            sockets = sum(
                sum(1 for _ in room.room.get_connections()) + len(room.links)
                for room in self._rooms.values()
            )
            logger.error(
                "lost Redis (%s): closing %d sockets with 1012 and answering 503 until it is back",
                type(exc).__name__, sockets,
            )
        self._available = False
        self.publisher.enabled = False
        self.publisher.clear()
        rooms = list(self._rooms.values())
        self._rooms.clear()
        self.owned.clear()
        for room in rooms:
            room.abandon(SERVICE_RESTART, "redis unavailable")
        self.links.clear()
        self._fail_calls(None, "the cluster's Redis cannot be reached")
