"""A room in a cluster: run here when this process owns it, relayed when another does.

The server calls the same methods as on a local :class:`~partydeco.Room`
(``connect``, ``message``, ``disconnect``, ``request``, ``alarm``). A
:class:`ClusterRoom` first finds the owner through the lease in Redis (taking the
lease when nobody holds it), then either hands the call to its :class:`Room`, or
relays it (see :mod:`.sockets`): a socket accepted here becomes a link whose frames
go to the owner; on the owner, each such socket is a connection like any other,
whose sink relays back.

When the owner dies, the processes holding links find the lease gone, one takes
it (``on_start`` runs there) and every link is re-attached: ``on_connect`` runs
again for it on the new owner; the sockets stay open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING

from ...closecodes import ABNORMAL, INTERNAL_ERROR, SERVICE_RESTART
from ...connection import ConnectContext, Connection
from ...errors import BackplaneUnavailableError, ConnectionIdConflictError, PartydecoError
from ...historystore import wait_unloaded
from ...response import Response
from ...storage import RoomKey
from .relay import RelaySink
from .sockets import Link, Remote
from .wire import AlarmCall, Close, HttpCall, Message, Open, Reply, WireRequest

if TYPE_CHECKING:
    from ...request import Request
    from ...room import Room
    from ..base import Sink
    from .backplane import RedisBackplane

__all__ = ["ClusterRoom"]

logger = logging.getLogger("partydeco")

#: How often an arrival asks again when the process it was sent to is not the owner.
REDIRECTS = 3


class ClusterRoom:
    """A room whose handlers run in exactly one process of the cluster (see the module).

    Attributes:
        room: the room itself; its handlers run only while this process owns it.
        owner: the owner's process id as last seen (this process's when it owns the room).
        links: sockets held here for another owner, by the connection the server holds.
        remotes: on the owner, sockets held by other processes, by socket id.
    """

    __slots__ = ("_last_active", "_moving", "_pending", "cluster", "links", "owner", "remotes",
                 "room")

    def __init__(self, cluster: RedisBackplane, room: Room) -> None:
        self.cluster = cluster
        self.room = room
        self.owner: str | None = None
        self.links: dict[Connection, Link] = {}
        self.remotes: dict[str, Remote] = {}
        # Set while ownership is changing hands here; arrivals wait for it.
        self._moving: asyncio.Event | None = None
        # Requests and alarms relayed from here that are in progress.
        self._pending = 0
        self._last_active = time.monotonic()

    def __repr__(self) -> str:
        return f"<ClusterRoom {self.party}/{self.id} owner={self.owner}>"

    @property
    def id(self) -> str:
        """The room id."""
        return self.room.id

    @property
    def party(self) -> str:
        """The party's name."""
        return self.room.party

    @property
    def key(self) -> RoomKey:
        """``(party, room id)``."""
        return RoomKey(self.room.party, self.room.id)

    @property
    def owned(self) -> bool:
        """Whether this process owns the room (holds its lease)."""
        return self.owner == self.cluster.node

    @property
    def idle(self) -> bool:
        """Whether nothing is attached, held or in progress here."""
        return self.room.idle and not self.links and not self.remotes and not self._pending

    @property
    def last_active(self) -> float:
        """``time.monotonic()`` when the last arrival here ended."""
        return max(self.room.last_active, self._last_active)

    def _touch(self) -> None:
        self._last_active = time.monotonic()

    # -- finding the owner --------------------------------------------------------------

    async def _wait_moving(self) -> None:
        while self._moving is not None:
            await self._moving.wait()

    async def resolve(self) -> str:
        """The owner's process id; this process takes the lease when nobody holds it.

        Raises:
            BackplaneUnavailableError: Redis cannot be reached.
        """
        cluster = self.cluster
        cluster.check()
        await self._wait_moving()
        if self.owned:
            return cluster.node
        owner = await cluster.acquire(self.key)
        if owner == cluster.node:
            await self._become_owner()
        else:
            self.owner = owner
        return owner

    async def _become_owner(self) -> None:
        if self.owned or self._moving is not None:
            await self._wait_moving()
            return
        moving = self._moving = asyncio.Event()
        try:
            self.owner = self.cluster.node
            self.cluster.owned[self.key] = self
            if self.links:
                await self._adopt_links()
        finally:
            self._moving = None
            moving.set()

    async def _adopt_links(self) -> None:
        """The owner died and this process took over: its sockets become local."""
        logger.info("%r: took over from a lost owner; re-attaching %d sockets", self,
                    len(self.links))
        try:
            await self.room.start()
        except Exception:
            logger.exception("on_start failed while taking over %r", self)
            for link in list(self.links.values()):
                link.dead = True
                link.conn.sink.close(INTERNAL_ERROR, "Internal error")
            return
        for conn, link in list(self.links.items()):
            del self.links[conn]
            self.cluster.links.pop(link.sock, None)
            if not link.accepted.done():
                link.accepted.set_result(0)
            await self.room.attach(conn, ConnectContext(link.request))

    async def rehome(self) -> None:
        """The owner of this room's links is gone or moved: find the new one, re-attach."""
        if self.owned or not self.links:
            return
        cluster = self.cluster
        deadline = time.monotonic() + 2 * cluster.lease
        while self.links and not self.owned:
            gone = {link.owner for link in self.links.values()}
            self.owner = None
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
            for link in list(self.links.values()):
                if link.owner != owner and not link.dead:
                    link.owner = owner
                    cluster.post(owner, self._open_event(link), force=True)
            return

    def _open_event(self, link: Link) -> Open:
        return Open(
            link.sock, self.cluster.node, self.party, self.id, link.conn.id,
            WireRequest.of(link.request),
        )

    # -- called by the server -----------------------------------------------------------

    async def connect(self, request: Request, sink: Sink) -> Connection:
        """Attach a socket: here when this process owns the room, else through the owner.

        Raises:
            BackplaneUnavailableError: Redis or the owner cannot be reached (the server
                answers 503).
        """
        for _ in range(REDIRECTS):
            owner = await self.resolve()
            if owner == self.cluster.node:
                return await self.room.connect(request, sink)
            conn = await self._connect_via(owner, request, sink)
            if conn is not None:
                return conn
            self.owner = None
        raise BackplaneUnavailableError(
            "Service Unavailable: the room's owner could not be found"
        )

    async def _connect_via(self, owner: str, request: Request, sink: Sink) -> Connection | None:
        cluster = self.cluster
        conn = self.room.new_connection(request, sink)
        link = Link(cluster.new_id(), owner, conn, request)
        self.links[conn] = link
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
            if self.links.get(conn) is link or self.owned:
                await sink.accept()
                return conn
            return None
        self._unlink(conn, link, notify=False)
        if status < 0:
            return None
        if status == 503:
            raise BackplaneUnavailableError("Service Unavailable: the room's owner lost Redis")
        if status == 409:
            raise ConnectionIdConflictError(conn.id)
        raise PartydecoError(f"the room's owner could not take the connection ({status})")

    def _unlink(self, conn: Connection, link: Link, *, notify: bool) -> None:
        if self.links.get(conn) is link:
            del self.links[conn]
        self.cluster.links.pop(link.sock, None)
        if notify and not link.dead:
            self.cluster.post(link.owner, Close(link.sock, ABNORMAL, ""), force=True)
        self._touch()

    async def message(self, conn: Connection, data: str | bytes) -> None:
        """Handle one frame here, or relay it to the owner (in order, with backpressure)."""
        if self._moving is not None:
            await self._wait_moving()
        link = self.links.get(conn)
        if link is None:
            await self.room.message(conn, data)
        elif not link.dead:
            await self.cluster.publisher.post_wait(
                link.owner, Message(link.sock, data), len(data)
            )

    async def disconnect(self, conn: Connection, code: int, reason: str) -> None:
        """The socket closed: run ``on_close`` here, or tell the owner."""
        link = self.links.get(conn)
        if link is None:
            await self.room.disconnect(conn, code, reason)
            return
        self._unlink(conn, link, notify=False)
        if not link.dead:
            self.cluster.post(link.owner, Close(link.sock, code, reason), force=True)

    async def request(self, request: Request) -> Response:
        """Answer here, or relay the request to the owner; 503 while Redis is unavailable."""
        self._pending += 1
        try:
            for _ in range(REDIRECTS):
                owner = await self.resolve()
                if owner == self.cluster.node:
                    return await self.room.request(request)
                call = partial(self._http_call, WireRequest.of(request), await request.body())
                reply = await self.cluster.call(owner, call)
                if reply.status:
                    return reply.response()
                self.owner = None
            return Response("Service Unavailable: the room's owner could not be found", 503)
        except BackplaneUnavailableError as exc:
            return Response(str(exc), 503)
        finally:
            self._pending -= 1
            self._touch()

    def _http_call(self, request: WireRequest, body: bytes, call: str) -> HttpCall:
        return HttpCall(call, self.cluster.node, self.party, self.id, request, body)

    async def alarm(self) -> None:
        """Run ``on_alarm`` here or on the owner; raising makes the scheduler retry."""
        owner = await self.resolve()
        if owner == self.cluster.node:
            await self.room.alarm()
            return
        reply = await self.cluster.call(
            owner, lambda call: AlarmCall(call, self.cluster.node, self.party, self.id)
        )
        if reply.status != 200:
            self.owner = None
            raise PartydecoError(f"the alarm of {self!r} failed on its owner ({reply.status})")

    # -- on the owner: events from other processes ------------------------------------

    def add_remote(self, event: Open) -> None:
        """A socket held by process ``event.edge`` arrived (called by the router)."""
        cluster = self.cluster
        old = self.remotes.get(event.sock)
        if old is not None:  # re-attached to us again: the old one is over
            old.push(Close(event.sock, ABNORMAL, ""))
        remote = Remote(
            event, RelaySink(cluster.publisher, event.edge, event.sock),
            self.room.config.max_pending_messages,
        )
        self.remotes[event.sock] = remote
        cluster.remotes[event.sock] = remote
        remote.task = asyncio.get_running_loop().create_task(
            self._serve_remote(remote), name=f"partydeco-remote-{event.sock}"
        )
        cluster.track(remote.task)

    def _drop_remote(self, remote: Remote) -> None:
        sock = remote.open.sock
        if self.remotes.get(sock) is remote:
            del self.remotes[sock]
        if self.cluster.remotes.get(sock) is remote:
            del self.cluster.remotes[sock]
        self._touch()

    async def _serve_remote(self, remote: Remote) -> None:
        cluster = self.cluster
        event = remote.open
        try:
            owner = await self.resolve()
        except BackplaneUnavailableError:
            owner = ""
        if owner != cluster.node:
            self._drop_remote(remote)
            cluster.deny(event.edge, event.sock, 503 if not owner else 0, owner)
            return
        sink = remote.sink
        try:
            conn = await self.room.connect(event.request.build(), sink, event.conn_id)
        except ConnectionIdConflictError:
            self._drop_remote(remote)
            cluster.deny(event.edge, event.sock, 409, "")
            return
        except Exception:
            logger.exception("could not start %r", self)
            self._drop_remote(remote)
            cluster.deny(event.edge, event.sock, 500, "")
            return
        code, reason = ABNORMAL, ""
        try:
            while True:
                item = await remote.next()
                if isinstance(item, Close):
                    code, reason = item.code, item.reason
                    break
                if not sink.closing:
                    await self.message(conn, item.data)
        finally:
            sink.finish()
            if sink.close_frame is not None:
                code, reason = sink.close_frame
            self._drop_remote(remote)
            await self.room.disconnect(conn, code, reason)

    async def answer(self, event: HttpCall | AlarmCall) -> None:
        """Answer a relayed request or alarm (called by the router, in a task)."""
        cluster = self.cluster
        try:
            owner = await self.resolve()
        except BackplaneUnavailableError as exc:
            cluster.reply(event.edge, Reply.of(event.call, Response(str(exc), 503)))
            return
        if owner != cluster.node:
            cluster.reply(event.edge, Reply(event.call, 0, [], b"", owner))
            return
        if isinstance(event, HttpCall):
            request = event.request.build(event.body, self.room.config.max_body_size)
            response = await self.room.request(request)
        else:
            try:
                await self.room.alarm()
                response = Response(b"", 200)
            except Exception:
                logger.exception("alarm of %r failed", self)
                response = Response(b"", 500)
        cluster.reply(event.edge, Reply.of(event.call, response))

    # -- losing the room ----------------------------------------------------------------

    async def disown(self) -> None:
        """Forget that this process owns the room (its lease is being given back), once
        its history is stored (within ``shutdown_timeout``)."""
        self.owner = None
        self.room.unload()
        await wait_unloaded(self.cluster.storage, within=self.room.config.shutdown_timeout)

    def lose(self, code: int = SERVICE_RESTART, reason: str = "room moved") -> None:
        """This process no longer owns the room: close every connection so clients
        reconnect to the new owner."""
        self.owner = None
        self.cluster.owned.pop(self.key, None)
        self.room.unload(clean=False)
        for conn in self.room.get_connections():
            conn.sink.close(code, reason)

    def abandon(self, code: int, reason: str) -> None:
        """Redis is gone: close every socket here and stop relaying."""
        self.owner = None
        self.room.unload(clean=False)
        for conn in self.room.get_connections():
            if isinstance(conn.sink, RelaySink):
                conn.sink.detach()
            else:
                conn.sink.close(code, reason)
        for remote in list(self.remotes.values()):
            remote.push(Close(remote.open.sock, code, reason))
        for link in list(self.links.values()):
            link.dead = True
            link.conn.sink.close(code, reason)
            if not link.accepted.done():
                link.accepted.set_exception(BackplaneUnavailableError("Redis is unavailable"))
                link.accepted.exception()  # retrieved: nobody may be waiting any more
