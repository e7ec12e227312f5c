"""``YjsParty``: a party whose rooms are Yjs documents, synced with y-partykit clients."""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NoReturn, TypeVar

from partydeco import App, ConnectContext, Connection, Party, Room, SetupError, default_app
from partydeco.signatures import check_handler

from .awareness import Awareness
from .document import ChangeHandler, Document
from .errors import DocumentNotLoadedError, ProtocolError, YjsError
from .peer import Peer
from .persistence import DocumentStore

__all__ = ["ReadOnlyCheck", "YjsParty"]

logger = logging.getLogger("partydeco.yjs")

#: ``read_only(connection, ctx) -> bool``: plain or ``async``.
ReadOnlyCheck = Callable[[Connection, ConnectContext], "bool | Awaitable[bool]"]
ReadOnlyCheckT = TypeVar("ReadOnlyCheckT", bound=ReadOnlyCheck)
ChangeHandlerT = TypeVar("ChangeHandlerT", bound=ChangeHandler)

MiB = 1024 * 1024


class YjsParty(Party):
    """A party whose every room holds one Yjs document, served to y-websocket clients.

    The npm ``y-partykit/provider`` (``YPartyKitProvider``) and ``y-websocket``'s
    ``WebsocketProvider`` sync with it through ``/parties/<name>/<room>`` unchanged. The
    document is loaded from room storage in ``on_start`` and every change is stored
    (see :mod:`partydeco.yjs.persistence`); awareness (cursors, presence) is relayed
    and removed when its connection closes. ``before_connect``, ``on_request``,
    ``on_start`` (run after the document is loaded), ``on_connect`` and ``on_close``
    work as on any party; ``on_message`` does not, since the frames are the protocol's.

    Example::

        from partydeco import yjs

        docs = yjs.YjsParty("docs")

        @docs.read_only
        def viewers(connection, ctx):
            return ctx.request.headers.get("X-Role") != "editor"

        @docs.on_document_change
        async def index(document):
            await search.put(document.room.id, str(document.get_text("body")))

    Args:
        name: the party's name.
        app: the app to register on; by default the current default app (fixed
            when the party is made).
        prefix: the room-storage key prefix of the document's entries.
        max_document_bytes: clients' updates that add content are refused (close
            1009) once the document's encoded size would pass this.
        max_message_bytes: the largest message a client may send in y-partykit's
            chunks (single frames are bounded by the app's ``max_message_size``).
        compact_bytes: stored and pending log bytes that trigger a compaction.
        compact_entries: stored log entries that trigger a compaction.
        max_awareness_bytes: the largest awareness state (JSON) of one client.
        max_awareness_clients: the awareness client ids one connection may introduce.
        flush_timeout: seconds ``on_close`` of a room's last connection waits for
            the document to be stored (and a room reloaded in the same process waits
            for its previous copy).
    """

    __slots__ = (
        "_change_handlers",
        "_documents",
        "_read_only",
        "_releasing",
        "compact_bytes",
        "compact_entries",
        "flush_timeout",
        "max_awareness_bytes",
        "max_awareness_clients",
        "max_document_bytes",
        "max_message_bytes",
        "prefix",
    )

    def __init__(
        self,
        name: str = "main",
        app: App | None = None,
        *,
        prefix: str = "yjs:",
        max_document_bytes: int = 16 * MiB,
        max_message_bytes: int = 16 * MiB,
        compact_bytes: int = 1 * MiB,
        compact_entries: int = 500,
        max_awareness_bytes: int = 64 * 1024,
        max_awareness_clients: int = 16,
        flush_timeout: float = 10.0,
    ) -> None:
        super().__init__(name, app if app is not None else default_app())
        self.prefix = prefix
        self.max_document_bytes = max_document_bytes
        self.max_message_bytes = max_message_bytes
        self.compact_bytes = compact_bytes
        self.compact_entries = compact_entries
        self.max_awareness_bytes = max_awareness_bytes
        self.max_awareness_clients = max_awareness_clients
        self.flush_timeout = flush_timeout
        # the read_only checks and on_document_change handlers, in registration order
        self._read_only: list[ReadOnlyCheck] = []
        self._change_handlers: list[ChangeHandler] = []
        # room id -> the document of its loaded room (or of an unloaded one still storing)
        self._documents: dict[str, Document] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        for kind, handler in (
            ("on_start", self._start),
            ("on_connect", self._connect),
            ("on_message", self._message),
            ("on_close", self._close),
        ):
            self.app.add_handler(self.name, kind, handler)

    # -- decorators ------------------------------------------------------------------

    def read_only(self, f: ReadOnlyCheckT) -> ReadOnlyCheckT:
        """Register ``f(connection, ctx) -> bool``: whether a connection may only read.

        Run on the server as the connection joins, after the ``before_connect`` hooks,
        so it can trust what they set (``ctx.request.headers["X-User-ID"]`` when the
        hook deleted the client's copy). A connection is read-only when any check says
        so. A read-only connection receives the document and every change, and its
        awareness (cursor) is relayed; its updates are never applied: the first one is
        answered with a permission-denied message (y-protocols' auth message).

        Example::

            @docs.read_only
            def viewers(connection, ctx):
                return ctx.request.headers.get("X-Role") != "editor"
        """
        self._check_setup("read_only")
        check_handler("read_only", f, ("connection", "ctx"))
        self._read_only.append(f)
        return f

    def on_document_change(self, f: ChangeHandlerT) -> ChangeHandlerT:
        """Register ``f(document)``, run after the document changed.

        Runs for clients' edits and for changes made by server code, after the change
        was applied, sent to the clients and queued for storage. Calls for one document
        never overlap: changes made while a call runs lead to one more call after it,
        so a slow handler sees the latest state rather than every step. A handler may
        change the document too (the change reaches every client); it should then only
        change what differs, or it will be called forever. Exceptions are logged.

        Example::

            @docs.on_document_change
            def count_words(document):
                words = len(str(document.get_text("body")).split())
                stats = document.get_map("stats")
                if stats.get("words") != words:
                    stats["words"] = words
        """
        self._check_setup("on_document_change")
        check_handler("on_document_change", f, ("document",))
        self._change_handlers.append(f)
        return f

    def on_message(self, f: Any) -> NoReturn:
        """Not available: a Yjs party's frames are the sync protocol.

        Raises:
            SetupError: always; use another party for messages of your own.
        """
        raise SetupError(
            f"party {self.name!r} is a YjsParty: its frames are the Yjs protocol, so it has no "
            "on_message; use on_document_change, or another party for messages of your own"
        )

    def _check_setup(self, what: str) -> None:
        if self.app.started:
            raise SetupError(
                f"cannot register {what} for party {self.name!r}: the app is already serving"
            )

    # -- server-side access ----------------------------------------------------------

    def document(self, room: Room) -> Document:
        """The loaded document of *room* (a room of this party).

        Every handler of the party can call it: the document is loaded before any of
        them runs, by the ``on_start`` handler the party registered first.

        Raises:
            DocumentNotLoadedError: *room* is not a loaded room of this party.
        """
        document = self._documents.get(room.id)
        if document is None or not document.belongs_to(room):
            raise DocumentNotLoadedError(f"{room!r} has no loaded document of party {self.name!r}")
        return document

    @property
    def loaded(self) -> int:
        """How many documents are in memory (rooms loaded, or still storing changes)."""
        return len(self._documents)

    # -- the handlers the party registers ----------------------------------------------

    async def _start(self, room: Room) -> None:
        previous = self._documents.get(room.id)
        if previous is not None and not await self._flushed(previous):
            raise YjsError(f"{room!r}: the previous copy of the document could not be stored")
        document = Document(
            room,
            partial(
                DocumentStore,
                room.storage,
                self.prefix,
                compact_bytes=self.compact_bytes,
                compact_entries=self.compact_entries,
                name=f"{room.party}/{room.id}",
            ),
            Awareness(
                max_state_bytes=self.max_awareness_bytes, max_clients=self.max_awareness_clients
            ),
            max_bytes=self.max_document_bytes,
            handlers=tuple((fn, _is_async(fn)) for fn in self._change_handlers),
        )
        await document.load()
        self._documents[room.id] = document
        weakref.finalize(room, self._released, room.id, document)

    async def _connect(self, connection: Connection, ctx: ConnectContext) -> None:
        document = self.document(connection.room)
        read_only = False
        for check in self._read_only:
            verdict = check(connection, ctx)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                read_only = True
                break
        peer = Peer(read_only=read_only, max_batch_bytes=self.max_message_bytes)
        document.attach(connection, peer)

    def _loaded(self, room: Room) -> Document | None:
        document = self._documents.get(room.id)
        return document if document is not None and document.belongs_to(room) else None

    def _message(self, message: str | bytes, sender: Connection) -> None:
        document = self._loaded(sender.room)
        peer = document.peer(sender) if document is not None else None
        if document is None or peer is None:
            return  # the connection is closing, or on_connect failed
        try:
            peer.receive(document, sender, message)
        except ProtocolError as exc:
            logger.info("closing %r in %r: %s", sender.id, sender.room, exc)
            sender.close(exc.code, str(exc)[:123])

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        document = self._loaded(connection.room)
        if document is None:
            return
        document.detach(connection)
        if next(iter(connection.room.get_connections()), None) is None:
            if not await self._flushed(document):
                logger.warning("%r: changes not stored after the last client left", document)

    async def _flushed(self, document: Document) -> bool:
        try:
            async with asyncio.timeout(self.flush_timeout):
                return await document.flush()
        except TimeoutError:
            return False

    def _released(self, room_id: str, document: Document) -> None:
        """The room was unloaded: drop its document once everything is stored."""
        if self._documents.get(room_id) is not document:
            return
        if not document.pending:
            del self._documents[room_id]
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the loop is gone; nothing can store it now
            return
        task = loop.create_task(self._release_after_flush(room_id, document))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release_after_flush(self, room_id: str, document: Document) -> None:
        await document.flush()
        if self._documents.get(room_id) is document:
            del self._documents[room_id]

    def __repr__(self) -> str:
        return f"<YjsParty {self.name!r}>"


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
