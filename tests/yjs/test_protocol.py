"""partydeco.yjs in-process: the sync and awareness protocol, rights, limits, server changes.

The clients are tests/support/yjs_peer.py's pycrdt peers over the in-process test client; the
real npm providers are in tests/yjs/test_npm_providers.py, persistence in tests/yjs/test_storage.py.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from partydeco import App, ConnectContext, Connection, Request, Room, SetupError, closecodes
from partydeco.testing import TestClient
from partydeco.yjs import Document, DocumentNotLoadedError, YjsParty
from partydeco.yjs.protocol import MESSAGE_SYNC, SYNC_UPDATE, Reader, sync_message
from tests.support.yjs_peer import YPeer


def typed(text: str) -> Any:
    """A change that appends *text* to the shared text."""
    return lambda doc: doc.get("text", type=pycrdt.Text).__iadd__(text)


def state_vector(doc: pycrdt.Doc[Any]) -> dict[int, int]:
    """The document's state vector as ``{client: clock}`` (its encoding is unordered)."""
    reader = Reader(doc.get_state())
    return {reader.uint(): reader.uint() for _ in range(reader.uint())}


@asynccontextmanager
async def peer(client: TestClient, room: str, **query: str) -> AsyncIterator[YPeer]:
    async with client.connect(room, party="docs", query=query or None) as conn:
        p = YPeer(conn)
        await p.start()
        await p.pump(lambda: p.synced)
        yield p


def make_app(tmp_path: Path, **options: Any) -> tuple[App, YjsParty]:
    app = App(storage=f"sqlite:///{tmp_path}/rooms.db", **options)
    return app, YjsParty("docs", app)


async def test_two_clients_converge_and_a_late_joiner_gets_the_document(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with TestClient(app) as client, peer(client, "r") as a, peer(client, "r") as b:
        await a.edit(typed("hello "))
        await b.edit(typed("world"))
        await a.pump(lambda: "world" in a.text)
        await b.pump(lambda: "hello" in b.text)
        assert a.text == b.text
        assert a.text in ("hello world", "worldhello ")  # concurrent inserts at 0
        async with peer(client, "r") as late:
            assert late.text == a.text
        async with peer(client, "other") as elsewhere:
            assert elsewhere.text == ""


async def test_server_code_reads_and_changes_the_document(tmp_path: Path) -> None:
    app, docs = make_app(tmp_path)
    seen: list[str] = []

    @docs.on_start
    def seed(room: Room) -> None:
        document = docs.document(room)
        if not str(document.get_text("text")):
            document.get_text("text").insert(0, "seed;")

    @docs.on_document_change
    async def stats(document: Document) -> None:
        text = str(document.get_text("text"))
        seen.append(text)
        words = document.get_map("stats")
        if words.get("length") != len(text):
            words["length"] = len(text)

    @docs.on_request
    async def read(request: Request, room: Room) -> dict[str, Any]:
        document = docs.document(room)
        if request.method == "POST":
            with document.transaction():
                document.get_text("text").insert(0, await request.text())
        return {"text": str(document.get_text("text"))}

    async with TestClient(app) as client, peer(client, "r") as a:
        assert a.text == "seed;"
        await a.edit(typed("typed"))
        await a.pump(lambda: a.doc.get("stats", type=pycrdt.Map).get("length") == 10)
        response = await client.post("/parties/docs/r", body=b"server:")
        assert response.json() == {"text": "server:seed;typed"}
        await a.pump(lambda: a.text == "server:seed;typed")
        await a.pump(lambda: a.doc.get("stats", type=pycrdt.Map).get("length") == 17)
    assert seen[-1] == "server:seed;typed"


async def test_read_only_connections_receive_but_cannot_change(tmp_path: Path) -> None:
    app, docs = make_app(tmp_path)

    @docs.before_connect
    def role(request: Request, lobby: Any) -> Request:
        request.headers.remove("X-Role")  # only this hook decides the role
        request.headers["X-Role"] = "editor" if request.args.get("token") == "ed" else "viewer"
        return request

    @docs.read_only
    async def viewers(connection: Connection, ctx: ConnectContext) -> bool:
        return ctx.request.headers["X-Role"] != "editor"

    async with TestClient(app) as client, peer(client, "r", token="ed") as editor:
        async with client.connect(
            "r", party="docs", headers={"X-Role": "editor"}
        ) as conn:  # a forged header does not make an editor
            viewer = YPeer(conn)
            await viewer.start()
            await viewer.pump(lambda: viewer.synced)
            await viewer.edit(typed("vandalism"))
            await viewer.pump(lambda: viewer.denied)
            assert viewer.denied == ["read-only: this connection may not change the document"]
            await editor.edit(typed("fine"))
            await viewer.pump(lambda: "fine" in viewer.text)
            await viewer.edit(typed(" again"))  # refused silently the second time
        async with peer(client, "r") as check:
            assert check.text == "fine"
        response = await client.get("/parties/docs/r")
        assert response.status == 404  # no on_request: the party answers 404


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (sync_message(SYNC_UPDATE, b"\x01\x05\xff\xff"), closecodes.INVALID_PAYLOAD,
         "malformed Yjs update"),
        (bytes([MESSAGE_SYNC, SYNC_UPDATE, 0x20, 0x01]), closecodes.INVALID_PAYLOAD,
         "truncated Yjs message"),
        (bytes([MESSAGE_SYNC, 0]) + b"\xff" * 12, closecodes.INVALID_PAYLOAD,
         "integer out of range in Yjs message"),
        (bytes([MESSAGE_SYNC, 0, 2, 5, 1]), closecodes.INVALID_PAYLOAD,
         "malformed Yjs state vector"),
        (bytes([MESSAGE_SYNC, 7, 0]), closecodes.INVALID_PAYLOAD, "unknown sync step 7"),
        (bytes([9]), closecodes.UNSUPPORTED_DATA, "unknown Yjs message type 9"),
        (bytes([2, 0, 1, 65]), closecodes.UNSUPPORTED_DATA,
         "auth messages go from server to client"),
        ("hello", closecodes.UNSUPPORTED_DATA, "text frames are not part of the Yjs protocol"),
        ('y-pk-batch#{"id":"x"}', closecodes.INVALID_PAYLOAD, "malformed chunk marker"),
        (b"\x01\x02\x7f\x00", closecodes.INVALID_PAYLOAD, "truncated awareness update"),
    ],
)
async def test_a_malformed_frame_closes_clearly_and_changes_nothing(
    tmp_path: Path, frame: str | bytes, code: int, reason: str
) -> None:
    app, _ = make_app(tmp_path)
    async with TestClient(app) as client, peer(client, "r") as good:
        await good.edit(typed("intact"))
        async with client.connect("r", party="docs") as bad:
            await bad.send(frame)
            while True:  # skip the sync step 1 the server sends first
                try:
                    await bad.receive()
                except Exception:
                    break
            assert await bad.wait_closed() == (code, reason)
        async with peer(client, "r") as check:
            assert check.text == "intact"
        await good.edit(typed("!"))  # the room still works
        await good.pump(lambda: True)


async def test_mutated_updates_never_corrupt_the_document(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    source = pycrdt.Doc()
    source.get("text", type=pycrdt.Text).insert(0, "0123456789")
    valid = source.get_update()
    reference = pycrdt.Doc()  # what the server's document must equal afterwards
    rnd = random.Random(7)
    async with TestClient(app) as client, peer(client, "r") as good:
        await good.edit(typed("base"))
        reference.apply_update(good.doc.get_update())
        refused = 0
        for _ in range(60):
            broken = bytearray(valid)
            for _ in range(3):
                broken[rnd.randrange(len(broken))] = rnd.randrange(256)
            try:
                reference.apply_update(bytes(broken))
                accepted = True
            except ValueError:
                accepted = False
            async with client.connect("r", party="docs") as bad:
                await bad.send(sync_message(SYNC_UPDATE, bytes(broken)))
                if not accepted:
                    assert await bad.wait_closed() == (1007, "malformed Yjs update")
                    refused += 1
        assert refused > 30
        async with peer(client, "r") as check:
            assert state_vector(check.doc) == state_vector(reference)
            assert check.text == str(reference.get("text", type=pycrdt.Text))


async def test_awareness_is_relayed_and_removed_when_its_connection_closes(
    tmp_path: Path,
) -> None:
    app, _ = make_app(tmp_path)
    async with TestClient(app) as client, peer(client, "r") as a:
        async with peer(client, "r") as b:
            await b.set_awareness(1, {"user": "bob", "cursor": 3})
            await a.pump(lambda: a.awareness)
            assert a.awareness == {b.doc.client_id: {"user": "bob", "cursor": 3}}
            await b.set_awareness(1, {"user": "stale"})  # same clock: ignored
            await b.set_awareness(2, {"user": "bob", "cursor": 4})
            await a.pump(lambda: a.awareness[b.doc.client_id]["cursor"] == 4)
            async with peer(client, "r") as c:  # a newcomer gets the current states
                await c.pump(lambda: c.awareness)
                assert c.awareness == {b.doc.client_id: {"user": "bob", "cursor": 4}}
        await a.pump(lambda: not a.awareness)  # bob closed: his cursor is gone


async def test_awareness_limits(tmp_path: Path) -> None:
    app = App(storage=f"sqlite:///{tmp_path}/rooms.db")
    YjsParty("docs", app, max_awareness_bytes=100, max_awareness_clients=2)
    async with TestClient(app) as client:
        async with peer(client, "r") as p:
            await p.set_awareness(1, {"pad": "x" * 200})
            assert await p.connection.wait_closed() == (1009, "awareness state over 100 bytes")
        async with peer(client, "r") as p:
            for client_id in (1, 2, 3):
                await p.set_awareness(1, {"n": client_id}, client=client_id)
            assert await p.connection.wait_closed() == (
                1008, "more than 2 awareness clients on one connection"
            )
        async with peer(client, "r") as p:
            await p.connection.send(b"\x01\x06\x01\x01\x01\x02{x")
            assert await p.connection.wait_closed() == (1007, "awareness state is not JSON")


async def test_a_full_document_refuses_new_content_but_not_deletions(tmp_path: Path) -> None:
    app = App(storage=f"sqlite:///{tmp_path}/rooms.db")
    YjsParty("docs", app, max_document_bytes=2000)
    async with TestClient(app) as client:
        async with peer(client, "r") as p:
            await p.edit(typed("a" * 1500))
            await p.edit(typed("b" * 1000))
            assert await p.connection.wait_closed() == (1009, "document is full (2000 bytes)")
        async with peer(client, "r") as p:
            assert p.text == "a" * 1500
            await p.edit(lambda doc: doc.get("text", type=pycrdt.Text).__delitem__(slice(0, 1500)))
            async with peer(client, "r") as check:
                assert check.text == ""


async def test_chunked_messages_from_y_partykit_are_joined(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    big = pycrdt.Doc()
    big.get("text", type=pycrdt.Text).insert(0, "z" * 3000)
    message = sync_message(SYNC_UPDATE, big.get_update())
    parts = [message[i : i + 1000] for i in range(0, len(message), 1000)]
    marker = '{"id":"b1","type":"%s","size":%d,"count":%d}'
    async with TestClient(app) as client, peer(client, "r") as p:
        async with client.connect("r", party="docs") as raw:
            await raw.send("y-pk-batch#" + marker % ("start", len(message), len(parts)))
            for part in parts:
                await raw.send(part)
            await raw.send("y-pk-batch#" + marker % ("end", len(message), len(parts)))
            await p.pump(lambda: len(p.text) == 3000)
        async with client.connect("r", party="docs") as raw:
            await raw.send("y-pk-batch#" + marker % ("start", 10, 1))
            await raw.send(b"\x00" * 11)
            assert await raw.wait_closed() == (1007, "chunked message larger than announced")


async def test_setup_errors_and_rooms_without_a_document(tmp_path: Path) -> None:
    app, docs = make_app(tmp_path)
    plain = app.party("plain")
    with pytest.raises(SetupError, match="its frames are the Yjs protocol"):

        @docs.on_message
        def nope(message: str, sender: Connection) -> None: ...

    @plain.on_request
    def peek(request: Request, room: Room) -> str:
        try:
            docs.document(room)
        except DocumentNotLoadedError as exc:
            return str(exc)
        return "loaded?"

    async with TestClient(app) as client:
        with pytest.raises(SetupError, match="already serving"):
            docs.read_only(lambda connection, ctx: True)
        async with peer(client, "r"):
            pass
        response = await client.get("/parties/plain/r")
        assert response.text == "<Room plain/r> has no loaded document of party 'docs'"


async def test_documents_are_released_with_their_rooms(tmp_path: Path) -> None:
    app = App(storage=f"sqlite:///{tmp_path}/rooms.db", idle_timeout=0.05)
    docs = YjsParty("docs", app)
    async with TestClient(app) as client:
        for i in range(5):
            async with peer(client, f"room-{i}") as p:
                await p.edit(typed(f"doc {i}"))
        assert docs.loaded == 5
        runtime = app.runtime
        assert runtime is not None
        lifecycle = runtime.lifecycle

        async def reaped() -> bool:
            await lifecycle.reap()
            gc.collect()
            return docs.loaded == 0

        for _ in range(200):
            if await reaped():
                break
            await asyncio.sleep(0.02)
        assert docs.loaded == 0
        async with peer(client, "room-3") as p:  # loaded again from storage
            assert p.text == "doc 3"
