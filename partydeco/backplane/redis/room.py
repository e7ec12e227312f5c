"""A room in a cluster: run here when this process owns it, relayed when another does.

The server glue calls the same methods as on a local :class:`~partydeco.Room`
(``connect``, ``message``, ``disconnect``, ``request``, ``alarm``). A
:class:`ClusterRoom` first finds the owner through the lease in Redis (taking
the lease when nobody holds it), then either runs the handlers itself, or relays:

- a socket accepted here for a room owned elsewhere becomes a :class:`Link`: its
  frames go to the owner, which attaches a connection whose outbox
  (:class:`~partydeco.backplane.redis.relay.RelayOutbox`) sends back here;
- on the owner, each such socket is a :class:`Remote`, fed by a bounded inbox
  and served by one task, so its frames are handled in order, one at a time, as
  a local socket's are.

When the owner dies, the processes holding links find the lease gone, one takes
it (``on_start`` runs there) and every link is re-attached: ``on_connect`` runs
again for it on the new owner; the sockets stay open.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ...closecodes import ABNORMAL, INTERNAL_ERROR, SERVICE_RESTART, TRY_AGAIN_LATER
from ...codec import encode_frame
from ...connection import ConnectContext, Connection
from ...errors import BackplaneUnavailableError, PartydecoError
from ...request import Request
from ...response import Response
from ...room import Room
from ...storage import RoomKey
from .relay import RelayOutbox
from .wire import AlarmCall, Close, Fanout, HttpCall, Message, Open, Reply, WireRequest

if TYPE_CHECKING:
    from ...config import Config
    from ...dispatch import Dispatch
    from ...parties import Parties
    from ...storage import StorageBackend
    from ..base import Sink
    from .backplane import RedisBackplane

__all__ = ["ClusterRoom", "Link", "Remote"]

logger = logging.getLogger("partydeco")

#: How often an arrival asks again when the process it was sent to is not the owner.
REDIRECTS = 3


class Link:
    """A socket held here whose room another process owns.

    Attributes:
        sock: the socket's id in the cluster.
        owner: the process the frames go to.
        conn: the connection the server glue holds (its outbox is the real socket's).
        request: the upgrade request as the hooks forwarded it (sent again on re-attach).
        accepted: resolves to 0 when the owner accepted, -1 when it is not the owner,
            or an HTTP status when it refused.
        dead: the owner or Redis is gone: nothing more is relayed.
    """

    __slots__ = ("accepted", "conn", "dead", "owner", "request", "sock")

    def __init__(self, sock: str, owner: str, conn: Connection, request: Request) -> None:
        self.sock = sock
        self.owner = owner
        self.conn = conn
        self.request = request
        self.accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.dead = False

    def __repr__(self) -> str:
        return f"<Link {self.sock} -> {self.owner}>"


class Remote:
    """On the owner: a socket another process holds.

    Attributes:
        open: the event that announced it.
        outbox: where the room's sends for it go.
        inbox: its frames (and finally its close) waiting for the handlers, bounded.
    """

    __slots__ = ("inbox", "limit", "open", "outbox", "task", "wake")

    def __init__(self, open: Open, outbox: RelayOutbox, limit: int) -> None:
        self.open = open
        self.outbox = outbox
        self.limit = limit
        self.inbox: deque[Message | Close] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Remote {self.open.sock} from {self.open.edge}>"

    def push(self, event: Message | Close) -> None:
        """Queue a frame or the close; a client too far ahead is closed with 1013."""
        if isinstance(event, Message) and len(self.inbox) >= self.limit:
            self.outbox.close(TRY_AGAIN_LATER, "too many messages queued")
            return
        self.inbox.append(event)
        self.wake.set()


class ClusterRoom(Room):
    """A room whose handlers run in exactly one process of the cluster (see the module)."""

    __slots__ = ("_cluster", "_gate", "_links", "_owner", "_remotes")

    def __init__(
        self,
        cluster: RedisBackplane,
        id: str,
        dispatch: Dispatch,
        env: Mapping[str, str],
        config: Config,
        *,
        storage: StorageBackend | None = None,
        parties: Parties | None = None,
    ) -> None:
        super().__init__(id, dispatch, env, config, storage=storage, parties=parties)
        self._cluster = cluster
        # The owner's process id as last seen (this process's id when it owns the room).
        self._owner: str | None = None
        # Sockets held here for another owner, by the connection the glue holds.
        self._links: dict[Connection, Link] = {}
        # On the owner: sockets held by other processes, by socket id.
        self._remotes: dict[str, Remote] = {}
        # Set while ownership is changing hands here; arrivals wait for it.
        self._gate: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<ClusterRoom {self.party}/{self.id} owner={self._owner}>"

    @property
    def key(self) -> RoomKey:
        """``(party, room id)``."""
        return RoomKey(self.party, self.id)

    @property
    def owned(self) -> bool:
        """Whether this process owns the room (holds its lease)."""
        return self._owner == self._cluster.node

    @property
    def owner(self) -> str | None:
        """The owner's process id as last seen here."""
        return self._owner

    @property
    def links(self) -> list[Link]:
        """Sockets held here for another owner."""
        return list(self._links.values())

    @property
    def idle(self) -> bool:
        """Whether nothing is attached, held or in progress here."""
        return super().idle and not self._links and not self._remotes

    # -- the public API on the owner ----------------------------------------------------

    def broadcast(self, message: Any, without: Iterable[str] = ()) -> None:
        """Send *message* to every open connection except the ids in *without*.

        Encoded once; sockets held by another process get one event per process.
        """
        frame = encode_frame(message)
        skip = without if isinstance(without, (set, frozenset)) else set(without)
        groups: dict[str, list[RelayOutbox]] = {}
        for conn in self._connections.values():
            if conn.id in skip:
                continue
            outbox = conn.sink
            if isinstance(outbox, RelayOutbox):
                if not outbox.closing:
                    groups.setdefault(outbox.edge, []).append(outbox)
            else:
                outbox.put(frame)
        publisher = self._cluster.publisher
        for edge, outboxes in groups.items():
            if not publisher.post(edge, Fanout([o.sock for o in outboxes], frame), len(frame)):
                for outbox in outboxes:
                    outbox.close(TRY_AGAIN_LATER, "relay queue full")

    # -- finding the owner --------------------------------------------------------------

    async def _wait_gate(self) -> None:
        while self._gate is not None:
            await self._gate.wait()

    async def resolve(self) -> str:
        """The owner's process id; this process takes the lease when nobody holds it.

        Raises:
            BackplaneUnavailableError: Redis cannot be reached.
        """
        cluster = self._cluster
        cluster.check()
        await self._wait_gate()
        if self.owned:
            return cluster.node
        owner = await cluster.acquire(self.key)
        if owner == cluster.node:
            await self._become_owner()
        else:
            self._owner = owner
        return owner

    async def _become_owner(self) -> None:
        if self.owned or self._gate is not None:
            await self._wait_gate()
            return
        gate = self._gate = asyncio.Event()
        try:
            self._owner = self._cluster.node
            self._cluster.owned[self.key] = self
            if self._links:
                await self._adopt_links()
        finally:
            self._gate = None
            gate.set()

    async def _adopt_links(self) -> None:
        """The owner died and this process took over: its sockets become local."""
        logger.info("%r: took over from a lost owner; re-attaching %d sockets", self,
                    len(self._links))
        try:
            await self.start()
        except Exception:
            logger.exception("on_start failed while taking over %r", self)
            for link in list(self._links.values()):
                link.dead = True
                link.conn.sink.close(INTERNAL_ERROR, "Internal error")
            return
        for conn, link in list(self._links.items()):
            del self._links[conn]
            self._cluster.links.pop(link.sock, None)
            if not link.accepted.done():
                link.accepted.set_result(0)
            await self._attach(conn, ConnectContext(link.request))

    async def rehome(self) -> None:
        """The owner of this room's links is gone or moved: find the new one, re-attach."""
        if self.owned or not self._links:
            return
        cluster = self._cluster
        deadline = time.monotonic() + 2 * cluster.lease
        while self._links and not self.owned:
            gone = {link.owner for link in self._links.values()}
            self._owner = None
            try:
                owner = await self.resolve()
            except BackplaneUnavailableError:
                return
            if owner == cluster.node:
                return
            if owner in gone and time.monotonic() < deadline:
                # The old lease has not expired yet (or the owner is restarting).
                await asyncio.sleep(cluster.lease / 6)
                continue
            for link in list(self._links.values()):
                if link.owner != owner and not link.dead:
                    link.owner = owner
                    cluster.post(owner, self._open_event(link), force=True)
            return

    def _open_event(self, link: Link) -> Open:
        return Open(
            link.sock, self._cluster.node, self.party, self.id, link.conn.id,
            WireRequest.of(link.request),
        )

    # -- called by the server glue ------------------------------------------------------

    async def connect(self, request: Request, outbox: Sink) -> Connection:
        """Attach a socket: here when this process owns the room, else through the owner.

        Raises:
            BackplaneUnavailableError: Redis or the owner cannot be reached (the glue answers
                503).
        """
        for _ in range(REDIRECTS):
            owner = await self.resolve()
            if owner == self._cluster.node:
                return await super().connect(request, outbox)
            conn = await self._connect_via(owner, request, outbox)
            if conn is not None:
                return conn
            self._owner = None
        raise BackplaneUnavailableError("Service Unavailable: the room's owner could not be found")

    async def _connect_via(
        self, owner: str, request: Request, outbox: Sink
    ) -> Connection | None:
        cluster = self._cluster
        conn = Connection(
            request.args.get("_pk") or str(uuid.uuid4()),
            request.url,
            self,
            outbox,
            state_limit=self.config.state_limit,
        )
        link = Link(cluster.new_id(), owner, conn, request)
        self._links[conn] = link
        cluster.links[link.sock] = link
        cluster.post(owner, self._open_event(link), force=True)
        try:
            status = await asyncio.wait_for(asyncio.shield(link.accepted), cluster.call_timeout)
        except (TimeoutError, BackplaneUnavailableError):
            self._unlink(conn, link, notify=True)
            raise BackplaneUnavailableError(
                "Service Unavailable: the room's owner did not answer"
            ) from None
        if status == 0:
            if self._links.get(conn) is link or self.owned:
                await outbox.accept()
                return conn
            return None
        self._unlink(conn, link, notify=False)
        if status < 0:
            return None
        if status == 503:
            raise BackplaneUnavailableError("Service Unavailable: the room's owner lost Redis")
        raise PartydecoError(f"the room's owner could not take the connection ({status})")

    def _unlink(self, conn: Connection, link: Link, *, notify: bool) -> None:
        if self._links.get(conn) is link:
            del self._links[conn]
        self._cluster.links.pop(link.sock, None)
        if notify and not link.dead:
            self._cluster.post(link.owner, Close(link.sock, ABNORMAL, ""), force=True)
        self._last_active = time.monotonic()

    async def message(self, conn: Connection, data: str | bytes) -> None:
        """Handle one frame here, or relay it to the owner (in order, with backpressure)."""
        if self._gate is not None:
            await self._wait_gate()
        link = self._links.get(conn)
        if link is None:
            await super().message(conn, data)
        elif not link.dead:
            await self._cluster.publisher.post_wait(link.owner, Message(link.sock, data), len(data))

    async def disconnect(self, conn: Connection, code: int, reason: str) -> None:
        """The socket closed: run ``on_close`` here, or tell the owner."""
        link = self._links.get(conn)
        if link is None:
            await super().disconnect(conn, code, reason)
            return
        del self._links[conn]
        self._cluster.links.pop(link.sock, None)
        self._last_active = time.monotonic()
        if not link.dead:
            self._cluster.post(link.owner, Close(link.sock, code, reason), force=True)

    async def request(self, request: Request) -> Response:
        """Answer here, or relay the request to the owner; 503 while Redis is unavailable."""
        self._pending += 1
        try:
            for _ in range(REDIRECTS):
                owner = await self.resolve()
                if owner == self._cluster.node:
                    return await self._request(request)
                reply = await self._cluster.call(
                    owner, partial(self._http_call, WireRequest.of(request), await request.body())
                )
                if reply.status:
                    return reply.response()
                self._owner = None
            return Response("Service Unavailable: the room's owner could not be found", 503)
        except BackplaneUnavailableError as exc:
            return Response(str(exc), 503)
        finally:
            self._done()

    def _http_call(self, request: WireRequest, body: bytes, call: str) -> HttpCall:
        return HttpCall(call, self._cluster.node, self.party, self.id, request, body)

    async def alarm(self) -> None:
        """Run ``on_alarm`` here or on the owner; raising makes the scheduler retry."""
        owner = await self.resolve()
        if owner == self._cluster.node:
            await super().alarm()
            return
        reply = await self._cluster.call(
            owner, lambda call: AlarmCall(call, self._cluster.node, self.party, self.id)
        )
        if reply.status != 200:
            self._owner = None
            raise PartydecoError(f"the alarm of {self!r} failed on its owner ({reply.status})")

    # -- on the owner: events from other processes ------------------------------------

    def add_remote(self, event: Open) -> None:
        """A socket held by process ``event.edge`` arrived (called by the subscriber)."""
        cluster = self._cluster
        old = self._remotes.get(event.sock)
        if old is not None:  # re-attached to us again: the old one is over
            old.push(Close(event.sock, ABNORMAL, ""))
        remote = Remote(
            event, RelayOutbox(cluster.publisher, event.edge, event.sock),
            self.config.max_pending_messages,
        )
        self._remotes[event.sock] = remote
        cluster.remotes[event.sock] = remote
        remote.task = asyncio.get_running_loop().create_task(
            self._serve_remote(remote), name=f"partydeco-remote-{event.sock}"
        )
        cluster.track(remote.task)

    def _drop_remote(self, remote: Remote) -> None:
        sock = remote.open.sock
        if self._remotes.get(sock) is remote:
            del self._remotes[sock]
        if self._cluster.remotes.get(sock) is remote:
            del self._cluster.remotes[sock]
        self._last_active = time.monotonic()

    async def _serve_remote(self, remote: Remote) -> None:
        cluster = self._cluster
        event = remote.open
        try:
            owner = await self.resolve()
        except BackplaneUnavailableError:
            owner = ""
        if owner != cluster.node:
            self._drop_remote(remote)
            cluster.deny(event.edge, event.sock, 503 if not owner else 0, owner)
            return
        request = event.request.build()
        try:
            await self.start()
        except Exception:
            logger.exception("could not start %r", self)
            self._drop_remote(remote)
            cluster.deny(event.edge, event.sock, 500, "")
            return
        conn = Connection(
            event.conn_id, request.url, self, remote.outbox, state_limit=self.config.state_limit
        )
        code, reason = ABNORMAL, ""
        try:
            await remote.outbox.accept()
            await self._attach(conn, ConnectContext(request))
            while True:
                while not remote.inbox:
                    remote.wake.clear()
                    await remote.wake.wait()
                item = remote.inbox.popleft()
                if isinstance(item, Close):
                    code, reason = item.code, item.reason
                    break
                if not remote.outbox.closing:
                    await self.message(conn, item.data)
        finally:
            remote.outbox.finish()
            if remote.outbox.close_frame is not None:
                code, reason = remote.outbox.close_frame
            self._drop_remote(remote)
            await self.disconnect(conn, code, reason)

    async def answer(self, event: HttpCall | AlarmCall) -> None:
        """Answer a relayed request or alarm (called by the subscriber, in a task)."""
        cluster = self._cluster
        try:
            owner = await self.resolve()
        except BackplaneUnavailableError as exc:
            cluster.reply(event.edge, Reply.of(event.call, Response(str(exc), 503)))
            return
        if owner != cluster.node:
            cluster.reply(event.edge, Reply(event.call, 0, [], b"", owner))
            return
        if isinstance(event, HttpCall):
            request = event.request.build(event.body, self.config.max_body_size)
            response = await Room.request(self, request)
        else:
            try:
                await Room.alarm(self)
                response = Response(b"", 200)
            except Exception:
                logger.exception("alarm of %r failed", self)
                response = Response(b"", 500)
        cluster.reply(event.edge, Reply.of(event.call, response))

    # -- losing the room ----------------------------------------------------------------

    def lose(self, code: int = SERVICE_RESTART, reason: str = "room moved") -> None:
        """This process no longer owns the room: close every connection so clients
        reconnect to the new owner."""
        self._owner = None
        self._cluster.owned.pop(self.key, None)
        for conn in list(self._connections.values()):
            conn.sink.close(code, reason)

    def abandon(self, code: int, reason: str) -> None:
        """Redis is gone: close every socket here and stop relaying."""
        self._owner = None
        for conn in list(self._connections.values()):
            outbox = conn.sink
            if isinstance(outbox, RelayOutbox):
                outbox.detach()
            else:
                outbox.close(code, reason)
        for remote in list(self._remotes.values()):
            remote.push(Close(remote.open.sock, code, reason))
        for link in list(self._links.values()):
            link.dead = True
            link.conn.sink.close(code, reason)
            if not link.accepted.done():
                link.accepted.set_exception(BackplaneUnavailableError("Redis is unavailable"))
                link.accepted.exception()  # retrieved: nobody may be waiting any more
