"""A minimal y-websocket client in Python (pycrdt) for the in-process Yjs tests.

It speaks the protocol the way the npm providers do: sync step 1 on open, step 2 in
answer to the server's step 1, every local change as an update message, awareness
updates in and out. The real npm clients are tested in tests/yjs/test_npm_providers.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pycrdt

from partydeco.storage import StorageBackend, register_backend
from partydeco.testing import TestConnection
from partydeco.yjs.awareness import encode as encode_awareness
from partydeco.yjs.protocol import (
    MESSAGE_AUTH,
    MESSAGE_AWARENESS,
    MESSAGE_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    awareness_message,
    sync_message,
)

# backend objects the tests built themselves, by the key in their "testbackend://" URL
_backends: dict[str, StorageBackend] = {}


def storage_url(backend: StorageBackend) -> str:
    """A storage URL for ``App(storage=...)`` that opens *backend* (an object the test made)."""
    key = str(id(backend))
    _backends[key] = backend
    register_backend("testbackend", lambda url: _backends[url.partition("://")[2]])
    return f"testbackend://{key}"


class YPeer:
    """One client: a pycrdt document synced over a :class:`TestConnection`."""

    def __init__(self, connection: TestConnection) -> None:
        self.connection = connection
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.synced = False  # got the server's step 2
        self.awareness: dict[int, Any] = {}
        self.denied: list[str] = []
        self._remote = False
        self._outgoing: list[bytes] = []
        self.doc.observe(self._local_change)

    def _local_change(self, event: pycrdt.TransactionEvent) -> None:
        if not self._remote and event.update != b"\x00\x00":
            self._outgoing.append(event.update)

    @property
    def text(self) -> str:
        return str(self.doc.get("text", type=pycrdt.Text))

    async def start(self) -> None:
        """What a provider sends on open: sync step 1."""
        await self.connection.send(sync_message(SYNC_STEP1, self.doc.get_state()))

    async def edit(self, change: Callable[[pycrdt.Doc[Any]], None]) -> None:
        """Change the local document and send the update."""
        with self.doc.transaction():
            change(self.doc)
        await self.flush()

    async def flush(self) -> None:
        while self._outgoing:
            await self.connection.send(sync_message(SYNC_UPDATE, self._outgoing.pop(0)))

    async def set_awareness(self, clock: int, state: Any, client: int | None = None) -> None:
        entry = (client or self.doc.client_id, clock, json.dumps(state).encode())
        await self.connection.send(awareness_message(encode_awareness([entry])))

    async def pump(self, until: Callable[[], Any]) -> None:
        """Handle incoming messages until ``until()`` is true (the client times out)."""
        while not until():
            await self.handle(await self.connection.receive_bytes())

    async def handle(self, data: bytes) -> None:
        reader = Reader(data)
        kind = reader.uint()
        if kind == MESSAGE_SYNC:
            step = reader.uint()
            payload = reader.bytes()
            if step == SYNC_STEP1:
                await self.connection.send(sync_message(SYNC_STEP2, self.doc.get_update(payload)))
                return
            self._remote = True
            try:
                self.doc.apply_update(payload)
            finally:
                self._remote = False
            if step == SYNC_STEP2:
                self.synced = True
        elif kind == MESSAGE_AWARENESS:
            body = Reader(reader.bytes())
            for _ in range(body.uint()):
                client, _clock, state = body.uint(), body.uint(), json.loads(body.string())
                if state is None:
                    self.awareness.pop(client, None)
                else:
                    self.awareness[client] = state
        elif kind == MESSAGE_AUTH:
            reader.uint()
            self.denied.append(reader.string())
