"""Rooms: where a party's handlers run for one room id."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from werkzeug.exceptions import HTTPException

from .closecodes import INTERNAL_ERROR, REPLACED
from .codec import encode_frame
from .connection import QUEUED, ConnectContext, Connection, Queued, check_tags
from .errors import (
    BodyTooLargeError,
    ConnectionIdConflictError,
    InvalidMessageError,
    PartydecoError,
    SetupError,
    close_reason,
)
from .gate import Gate
from .history import History
from .lobby import Lobby
from .outbox import put_all, send_event
from .presence import Presence
from .response import Response, answer

if TYPE_CHECKING:
    from .backplane.base import Sink
    from .config import Config
    from .dispatch import Dispatch
    from .parties import Parties
    from .request import Request
    from .storage import RoomStorage, StorageBackend

__all__ = ["Lobby", "Room"]

logger = logging.getLogger("partydeco")


class Room:
    """One room of a party: its connections and the party's handlers for it.

    A room keeps the guarantees of a PartyKit room (a Durable Object): it exists
    once, ``on_start`` runs once per room life, events are delivered one at a time
    while a storage call is in flight (see :mod:`partydeco.gate`), and a connection
    id belongs to one open socket.

    Attributes:
        id: the room id (the raw URL segment).
        party: the party's name.
        env: the process environment merged with ``.env``.
        gate: the room's input and output gates.
    """

    __slots__ = (
        "__weakref__",  # extensions (partydeco.yjs) keep per-room state that dies with the room
        "_backend", "_claims", "_connections", "_dispatch", "_history", "_last_active", "_parties",
        "_pending", "_presence", "_start_lock", "_started", "_storage", "config", "env", "gate",
        "id", "party",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        dispatch: Dispatch,
        env: Mapping[str, str],
        config: Config,
        *,
        storage: StorageBackend | None = None,
        parties: Parties | None = None,
    ) -> None:
        self.id = id
        self.party = dispatch.name
        self.env = env
        self.config = dispatch.config or config  # the party's own options, if any
        self._dispatch = dispatch
        self._connections: dict[str, Connection] = {}
        # Connections being connected (their id is taken), until they are attached.
        self._claims: dict[str, Connection] = {}
        self.gate = Gate()
        self._started = False
        self._start_lock = asyncio.Lock()
        self._backend = storage
        self._storage: RoomStorage | None = None
        self._parties = parties
        # Arrivals in progress (connects, requests, alarms) and when the last one ended:
        # what idle unloading looks at.
        self._pending = 0
        self._last_active = time.monotonic()
        self._presence = Presence.of(self, dispatch)
        self._history = History.of(self.config, None if storage is None else self.storage)

    # -- the public API -------------------------------------------------------------

    def get_connection(self, id: str) -> Connection | None:
        """The open connection with this id, or ``None``."""
        conn = self._connections.get(id)
        return conn if conn is not None and conn.open else None

    def get_connections(self, tag: str | None = None) -> Iterator[Connection]:
        """The open connections, or those carrying *tag*."""
        for conn in list(self._connections.values()):
            if conn.open and (tag is None or tag in conn.tags):
                yield conn

    def broadcast(self, message: Any, without: Iterable[str] = (), history: bool = True) -> Queued:
        """Send *message* to every open connection except the ids in *without*.

        The message is encoded once (see :meth:`Connection.send`) and written to
        each receiver at once, or queued behind a receiver whose socket is full;
        it never waits for a slow receiver. No ``await`` needed (awaiting it returns at once).
        *history*: see :mod:`partydeco.history`.
        """
        skip = without if isinstance(without, (set, frozenset)) else set(without)
        kept = self._history
        if kept is None or not history or isinstance(message, (bytes, bytearray, memoryview)):
            frame: str | bytes = encode_frame(message)
        else:
            frame = kept.record(message, tuple(skip))
        event = send_event(frame)
        meter = self._dispatch.meter
        if meter is not None:
            meter.count_broadcast(self._connections, skip)
        if self.gate.writes:  # hold it until the writes in flight are durable
            sinks = [c.sink for c in self._connections.values() if c.id not in skip]
            self.gate.hold(partial(put_all, sinks, frame, event))
            return QUEUED
        for conn in self._connections.values():
            if conn.id not in skip:
                conn.sink.put(frame, event)
        return QUEUED

    @property
    def storage(self) -> RoomStorage:
        """This room's durable storage (see :class:`partydeco.storage.RoomStorage`).

        Example::

            count = (await room.storage.get("count") or 0) + 1
            await room.storage.put("count", count)
        """
        if self._storage is None:
            if self._backend is None:
                raise SetupError(f"{self!r} has no storage backend (it was not made by an App)")
            from .storage import RoomStorage

            self._storage = RoomStorage(
                self._backend, self.party, self.id, self.gate, self._dispatch.meter
            )
        return self._storage

    @property
    def presence(self) -> Presence:
        """Who is connected (:mod:`partydeco.presence`); else :class:`SetupError`."""
        if self._presence is None:
            raise SetupError(f"party {self.party!r} tracks no presence: see Party.on_join")
        return self._presence

    @property
    def history(self) -> History:
        """The kept broadcasts (:mod:`partydeco.history`); else :class:`SetupError`."""
        if self._history is None:
            raise SetupError(f"party {self.party!r} keeps no history: Party.configure(history=N)")
        return self._history

    @property
    def parties(self) -> Parties:
        """The app's parties, to reach other rooms in this process.

        Example::

            user = room.parties["user"].get("alice")
            response = await user.fetch("/profile", method="POST", body=b"...")
        """
        if self._parties is None:
            raise SetupError(f"{self!r} cannot reach other parties (it was not made by an App)")
        return self._parties

    def __repr__(self) -> str:
        return f"<Room {self.party}/{self.id}>"

    # -- called by the server ---------------------------------------------------------

    async def start(self) -> None:
        """Run ``on_start`` once; a failure leaves the room unstarted for a retry."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self._history is not None and not self._history.store.loaded:
                await self._history.store.load()
            for call in self._dispatch.on_start:
                await call(self)
            self._started = True

    async def connect(self, request: Request, sink: Sink, id: str | None = None) -> Connection:
        """Start the room if needed, take the connection id, accept the socket and run
        ``on_connect``.

        An open connection with the same id is replaced when both were authenticated
        as the same principal: it is closed with :data:`~partydeco.closecodes.REPLACED`
        and its ``on_close`` runs first. Otherwise the newcomer is refused.

        Raises:
            ConnectionIdConflictError: the id belongs to another principal's open
                socket, or to a socket still connecting (the handshake gets 409).
            Exception: ``on_start`` failed (the handshake gets 500); errors after the
                socket is accepted close it with 1011 instead.
        """
        self._pending += 1
        try:
            if self.gate.blocked:
                await self.gate.enter()
            if not self._started:
                await self.start()
            conn = self.new_connection(request, sink, id)
            replaced = self._claim(conn)
            if replaced is not None:
                await self.evict(replaced, REPLACED, "replaced by a new connection with its id")
            try:
                await sink.accept()
            except BaseException:
                if self._claims.get(conn.id) is conn:
                    del self._claims[conn.id]
                raise
            await self.attach(conn, ConnectContext(request))
            return conn
        finally:
            self._done()

    def new_connection(self, request: Request, sink: Sink, id: str | None = None) -> Connection:
        """A connection of this room for the socket *request* opens: its id is *id*, else
        the ``_pk`` query parameter, else a fresh UUID4; its frames go to *sink*."""
        conn = Connection(  # by position: keywords to a class cost a dict per call
            id or request.args.get("_pk") or str(uuid.uuid4()),
            request.url,
            self,
            sink,
            self.config.state_limit,
        )
        conn.principal = request.principal
        return conn

    def _claim(self, conn: Connection) -> Connection | None:
        """Take *conn*'s id; the connection holding it, which it replaces (if open, only
        the same principal's)."""
        id = conn.id
        if id in self._claims:
            raise ConnectionIdConflictError(id)
        existing = self._connections.get(id)
        if existing is not None and existing.open:
            if existing.principal is None or existing.principal != conn.principal:
                raise ConnectionIdConflictError(id)
        self._claims[id] = conn
        return existing

    async def evict(self, conn: Connection, code: int, reason: str) -> None:
        """Close *conn* with *code* and run its ``on_close`` now, not when its socket is gone."""
        user = self._forget(conn)
        conn.sink.close(code, reason)
        if not conn.closed:
            conn.closed = True
            await self._closed(conn, code, reason, user)

    def _forget(self, conn: Connection) -> str | None:  # -> whose last connection it was
        if self._connections.get(conn.id) is not conn:
            return None
        del self._connections[conn.id]
        return None if self._presence is None else self._presence.remove(conn)

    async def attach(self, conn: Connection, ctx: ConnectContext) -> None:
        """Run ``connection_tags`` and ``on_connect`` for an accepted socket.

        :meth:`connect` calls it; a backplane calls it for a socket that was
        accepted elsewhere (a relayed or re-attached connection).
        """
        dispatch = self._dispatch
        sink = conn.sink
        try:
            if not dispatch.on_connect and not dispatch.on_message:
                raise PartydecoError(
                    f"party {self.party!r} has no on_connect or on_message handler"
                )
            if dispatch.connection_tags:
                found = [tag for call in dispatch.connection_tags for tag in await call(conn, ctx)]
                conn.tags = check_tags([conn.id, *found])
            if self._claims.get(conn.id) is conn:
                del self._claims[conn.id]
            if self._history is not None:  # what it missed, before anything broadcast later
                self._history.greet(conn, ctx.request)
            self._connections[conn.id] = conn
            if self._presence is not None:
                await self._presence.arrive(conn)
            for call in dispatch.on_connect:
                result = call.fn(conn, ctx)  # ``await call(...)`` without its coroutine
                if call.awaits(result):
                    await result
        except Exception as exc:
            logger.exception("error while connecting %r to %r", conn.id, self)
            if self._claims.get(conn.id) is conn:
                del self._claims[conn.id]
            sink.close(INTERNAL_ERROR, close_reason(exc))

    async def message(self, conn: Connection, data: str | bytes) -> None:
        """Run the ``on_message`` handlers for one frame."""
        if self.gate.blocked:
            await self.gate.enter()
        for call in self._dispatch.on_message:
            arg: Any = data
            if call.decoder is not None:
                try:
                    arg = call.decoder.decode(data)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    conn.sink.put(encode_frame({"error": "invalid_message", "detail": str(exc)}))
                    await self.error(conn, InvalidMessageError(str(exc)))
                    continue
            try:
                # What ``await call(arg, conn)`` does, without its coroutine: this runs
                # once per frame, the one place where that cost shows.
                result = call.fn(arg, conn)
                if call.awaits(result):
                    await result
            except Exception as exc:
                await self.error(conn, exc)

    async def error(self, conn: Connection, error: BaseException) -> None:
        """Tell the ``on_error`` handlers (or the log) about *error*."""
        handlers = self._dispatch.on_error
        if not handlers:
            logger.error("error in %r for connection %r", self, conn.id, exc_info=error)
            return
        for call in handlers:
            try:
                await call(conn, error)
            except Exception:
                logger.exception("error in on_error handler of %r", self)

    async def disconnect(self, conn: Connection, code: int, reason: str) -> None:
        """Forget a connection whose socket closed, and run ``on_close`` (unless it ran
        already: the connection was replaced)."""
        user = self._forget(conn)
        if self._claims.get(conn.id) is conn:
            del self._claims[conn.id]
        if conn.closed:
            self._last_active = time.monotonic()
            return
        conn.closed = True
        self._pending += 1
        try:
            if self.gate.blocked:
                await self.gate.enter()
            if user is not None or self._dispatch.on_close:
                await self._closed(conn, code, reason, user)
        finally:
            self._done()

    async def _closed(self, conn: Connection, code: int, reason: str, user: str | None) -> None:
        for call in self._dispatch.on_close:
            try:
                await call(conn, code, reason)
            except Exception:
                logger.exception("error in on_close handler of %r", self)
        if user is not None and self._presence is not None:
            await self._presence.depart(user)

    async def request(self, request: Request) -> Response:
        """Answer an HTTP request with the ``on_request`` handlers."""
        self._pending += 1
        try:
            if self.gate.blocked:
                await self.gate.enter()
            if not self._started:
                await self.start()
            listed = None if self._presence is None else self._presence.answer(request)
            if listed is not None:
                return listed
            for call in self._dispatch.on_request:
                result = call.fn(request, self)  # ``await call(...)`` without its coroutine
                if call.awaits(result):
                    result = await result
                if result is not None:
                    return result if type(result) is Response else await answer(result, call.fn)
        except HTTPException as exc:
            return Response(exc.description or exc.name, exc.code or 500)
        except BodyTooLargeError as exc:
            return Response(str(exc), 413)
        except Exception:
            logger.exception("error answering %s %s in %r", request.method, request.path, self)
            return Response("Internal Server Error", 500)
        finally:
            self._done()
        if not self._dispatch.on_request:
            return Response(f"Party {self.party!r} has no on_request handler", 404)
        return Response("Not Found", 404)

    async def alarm(self) -> None:
        """Run the ``on_alarm`` handlers, starting the room first if needed.

        An exception propagates, so the scheduler retries the alarm.
        """
        self._pending += 1
        try:
            if self.gate.blocked:
                await self.gate.enter()
            await self.start()
            for call in self._dispatch.on_alarm:
                await call(self)
        finally:
            self._done()

    def _done(self) -> None:
        self._pending -= 1
        self._last_active = time.monotonic()

    @property
    def idle(self) -> bool:
        """Whether no connection is attached and no arrival (a connect included) is in
        progress."""
        leaving = self._presence is not None and self._presence.pending
        return not self._connections and self._pending == 0 and not leaving

    @property
    def last_active(self) -> float:
        """``time.monotonic()`` when the last connect, request, close or alarm ended."""
        return self._last_active

    def unload(self, clean: bool = True) -> None:
        """The backplane forgets the room: drop pending leaves, store its history (*clean*)."""
        if self._presence is not None:
            self._presence.close()
        if self._history is not None:
            self._history.store.unload(clean)
