"""A room's shared document: the pycrdt ``Doc`` plus what the server does with its changes.

Every change, whether a client's update or a transaction of server code, reaches
:meth:`Document._observe` synchronously as it commits. There it gets its sequence
number and is queued for storage (:class:`.persistence.DocumentStore`), it is sent to
every other connection of the room, and ``on_document_change`` is scheduled.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pycrdt

from partydeco import Connection, Room, closecodes

from .awareness import Awareness
from .errors import DocumentNotLoadedError, ProtocolError
from .persistence import DocumentStore
from .protocol import SYNC_UPDATE, awareness_message, sync_message

if TYPE_CHECKING:
    from .peer import Peer

__all__ = ["ChangeHandler", "Document"]

logger = logging.getLogger("partydeco.yjs")

#: ``on_document_change(document)``: plain or ``async``.
ChangeHandler = Callable[["Document"], Any]

# The v1 encoding of an update that changes nothing: no structs, an empty delete set.
_EMPTY_UPDATE = b"\x00\x00"


class Document:
    """The Yjs document of one room, loaded while the room is.

    Read and change it with pycrdt, in a transaction; what server code changes reaches
    every connected client and room storage, like a client's edit::

        document = docs.document(room)
        with document.transaction():
            document.get_text("title").insert(0, "Draft: ")

    Attributes:
        doc: the ``pycrdt.Doc``.
        max_bytes: clients' updates that insert content are refused once the
            document's encoded size would pass this (deletions always pass).
    """

    __slots__ = (
        "_awareness",
        "_changed",
        "_handlers",
        "_notifier",
        "_origin",
        "_peers",
        "_room",
        "_size",
        "_size_exact",
        "_store",
        "doc",
        "max_bytes",
    )

    def __init__(
        self,
        room: Room,
        store_factory: Callable[[Callable[[], bytes]], DocumentStore],
        awareness: Awareness,
        *,
        max_bytes: int,
        handlers: tuple[tuple[ChangeHandler, bool], ...],
    ) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.max_bytes = max_bytes
        self._room = weakref.ref(room)
        self._store = store_factory(self.doc.get_update)
        self._awareness = awareness
        self._handlers = handlers
        self._peers: dict[Connection, Peer] = {}
        self._origin: Connection | None = None
        self._size = 0
        self._size_exact = False
        self._changed = False
        self._notifier: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        room = self._room()
        where = f"{room.party}/{room.id}" if room is not None else "released"
        return f"<Document {where} pending={self._store.pending}>"

    # -- the public API --------------------------------------------------------------

    @property
    def room(self) -> Room:
        """The room this document belongs to.

        Raises:
            DocumentNotLoadedError: the room was unloaded.
        """
        room = self._room()
        if room is None:
            raise DocumentNotLoadedError("the room of this document was unloaded")
        return room

    def belongs_to(self, room: Room) -> bool:
        """Whether this is the document of *room* (and not of an earlier copy of it)."""
        return self._room() is room

    def transaction(self, origin: Any = None) -> pycrdt.Transaction:
        """``with document.transaction():`` groups changes into one update."""
        return self.doc.transaction(origin=origin)

    def get_text(self, name: str) -> pycrdt.Text:
        """The root ``Y.Text`` called *name* (``ydoc.getText(name)`` in JavaScript)."""
        root: pycrdt.Text = self.doc.get(name, type=pycrdt.Text)
        return root

    def get_map(self, name: str) -> pycrdt.Map[Any]:
        """The root ``Y.Map`` called *name*."""
        root: pycrdt.Map[Any] = self.doc.get(name, type=pycrdt.Map)
        return root

    def get_array(self, name: str) -> pycrdt.Array[Any]:
        """The root ``Y.Array`` called *name*."""
        root: pycrdt.Array[Any] = self.doc.get(name, type=pycrdt.Array)
        return root

    def get_xml_fragment(self, name: str) -> pycrdt.XmlFragment:
        """The root ``Y.XmlFragment`` called *name* (what ProseMirror/Tiptap bindings use)."""
        root: pycrdt.XmlFragment = self.doc.get(name, type=pycrdt.XmlFragment)
        return root

    def awareness(self) -> dict[int, Any]:
        """The clients' awareness states (cursors, names...) by Yjs client id."""
        return self._awareness.states()

    @property
    def pending(self) -> int:
        """Changes applied in memory and not stored yet."""
        return self._store.pending

    async def flush(self) -> bool:
        """Wait until every change made so far is in room storage.

        Changes are stored in the background, in order, as soon as they are made
        (a failed write is retried); await this where a change must be durable before
        going on, e.g. a change made with no client connected just before the process
        stops. Bound the wait with ``asyncio.timeout()`` if storage may be down.

        Returns:
            ``True`` when everything is stored, ``False`` if the storage was closed first.
        """
        return await self._store.flush()

    # -- loading ---------------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored document, then start observing changes."""
        updates = await self._store.load()
        for update in updates:
            self.doc.apply_update(update)
        self._size = sum(len(update) for update in updates)
        self.doc.observe(self._observe)

    # -- changes -----------------------------------------------------------------------

    def _observe(self, event: pycrdt.TransactionEvent) -> None:
        update: bytes = event.update
        if update == _EMPTY_UPDATE:
            return
        try:
            self._store.append(update)
            self._size += len(update)
            self._size_exact = False
            room = self._room()
            if room is not None:
                origin = self._origin
                skip = frozenset((origin.id,)) if origin is not None else frozenset()
                room.broadcast(sync_message(SYNC_UPDATE, update), without=skip)
            if self._handlers:
                self._schedule_handlers()
        except Exception:  # an exception here would surface in the transaction's owner
            logger.exception("%r: could not process a change", self)

    def apply_update(self, update: bytes, origin: Connection) -> None:
        """Apply a client's update (sync step 2 or update message).

        Raises:
            ProtocolError: the update is malformed (1007; nothing was applied) or would
                make the document larger than :attr:`max_bytes` (1009).
        """
        if not self._admit(update):
            raise ProtocolError(
                f"document is full ({self.max_bytes} bytes)", closecodes.MESSAGE_TOO_BIG
            )
        self._origin = origin
        try:
            self.doc.apply_update(update)
        except ValueError:
            # Yrs decodes the whole update before integrating any of it.
            raise ProtocolError("malformed Yjs update") from None
        finally:
            self._origin = None

    def _admit(self, update: bytes) -> bool:
        if self._size + len(update) <= self.max_bytes or update[:1] == b"\x00":
            return True  # under the limit, or no new content (only deletions)
        if not self._size_exact:
            self._size = len(self.doc.get_update())
            self._size_exact = True
        return self._size + len(update) <= self.max_bytes

    def update_since(self, state_vector: bytes) -> bytes:
        """What a peer with *state_vector* lacks (the answer to its sync step 1).

        Raises:
            ProtocolError: the state vector is malformed.
        """
        try:
            return self.doc.get_update(state_vector)
        except ValueError:
            raise ProtocolError("malformed Yjs state vector") from None

    def _schedule_handlers(self) -> None:
        self._changed = True
        if self._notifier is None:
            self._notifier = asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        try:
            while self._changed:
                self._changed = False
                for fn, is_async in self._handlers:
                    try:
                        result = fn(self)
                        if is_async:
                            await result
                    except Exception:
                        logger.exception("error in on_document_change handler of %r", self)
        finally:
            self._notifier = None

    # -- connections -------------------------------------------------------------------

    def attach(self, connection: Connection, peer: Peer) -> None:
        """Start syncing *connection*: send sync step 1 and the awareness states."""
        self._peers[connection] = peer
        connection.send(sync_message(0, self.doc.get_state()))
        states = self._awareness.encode_all()
        if states is not None:
            connection.send(awareness_message(states))

    def peer(self, connection: Connection) -> Peer | None:
        """The protocol state of *connection*, if it is attached."""
        return self._peers.get(connection)

    def detach(self, connection: Connection) -> None:
        """Forget *connection* and remove the awareness states it introduced."""
        self._peers.pop(connection, None)
        removed = self._awareness.drop(connection)
        room = self._room()
        if removed is not None and room is not None:
            room.broadcast(awareness_message(removed), without=frozenset((connection.id,)))

    def relay_awareness(self, payload: bytes, connection: Connection) -> None:
        """Apply an awareness update from *connection* and relay what changed.

        Raises:
            ProtocolError: see :meth:`.awareness.Awareness.apply`.
        """
        changed = self._awareness.apply(payload, connection)
        room = self._room()
        if changed is not None and room is not None:
            room.broadcast(awareness_message(changed), without=frozenset((connection.id,)))

    def all_awareness(self) -> bytes | None:
        """Every live awareness state, encoded (the answer to a query)."""
        return self._awareness.encode_all()
