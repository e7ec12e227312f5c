"""partydeco.yjs persistence: snapshot plus log, compaction, split values, restarts, slow or
failing storage, and changes arriving concurrently while writes are in flight."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pycrdt

from partydeco import App
from partydeco.storage import (
    MAX_VALUE_BYTES,
    KeyRange,
    MemoryStorage,
    RoomKey,
    RoomStorage,
    WriteBatch,
)
from partydeco.storage.redis import RedisStorage
from partydeco.testing import TestClient
from partydeco.yjs import YjsParty
from tests.support.redis_server import RedisServer
from tests.support.yjs_peer import storage_url
from tests.yjs.test_protocol import peer, typed


class KeptStorage(MemoryStorage):
    """In-memory storage that outlives the app that closes it, to be loaded again."""

    async def close(self) -> None:
        pass


class FlakyStorage(KeptStorage):
    """In-memory storage whose writes take a random while and fail now and then."""

    def __init__(self, seed: int, *, failures: float = 0.0, max_delay: float = 0.005) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.failures = failures
        self.max_delay = max_delay
        self.writes = 0
        self.failed = 0

    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        await asyncio.sleep(self.random.random() * self.max_delay)
        if self.random.random() < self.failures:
            self.failed += 1
            raise ConnectionError("storage hiccup")
        self.writes += 1
        return await super().write(room, batch)


async def stored(backend: Any, room: str = "r") -> dict[str, Any]:
    return await RoomStorage(backend, "docs", room).list(prefix="yjs:")


async def until_stored(backend: Any, condition: Any) -> dict[str, Any]:
    """The document's stored entries, once ``condition(entries)`` holds."""
    for _ in range(500):
        entries = await stored(backend)
        if condition(entries):
            return entries
        await asyncio.sleep(0.01)
    raise AssertionError("the entries were not stored within 5 s")


async def reload_text(backend: Any, room: str = "r", name: str = "text") -> str:
    """Load the stored document into a fresh app on the same storage and read its text."""
    app = App(storage=storage_url(backend))
    docs = YjsParty("docs", app)
    texts: list[str] = []

    @docs.on_start
    def read(room_: Any) -> None:
        texts.append(str(docs.document(room_).get_text(name)))

    async with TestClient(app) as client:
        await client.get(f"/parties/docs/{room}")
    return texts[0]


async def test_restart_keeps_the_document_with_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/rooms.db"
    for round_ in range(3):
        app = App(storage=url)
        YjsParty("docs", app, compact_entries=4)
        async with TestClient(app) as client, peer(client, "r") as p:
            assert p.text == "".join(f"<{i}>" for i in range(round_ * 5))
            for i in range(round_ * 5, round_ * 5 + 5):
                await p.edit(typed(f"<{i}>"))
    app = App(storage=url)
    YjsParty("docs", app)
    async with TestClient(app) as client, peer(client, "r") as p:
        assert p.text == "".join(f"<{i}>" for i in range(15))


async def test_restart_keeps_the_document_with_redis(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    for round_ in range(2):
        app = App(storage=storage_url(RedisStorage(redis_server.url, prefix=redis_prefix)))
        YjsParty("docs", app, compact_entries=3)
        async with TestClient(app) as client, peer(client, "r") as p:
            assert p.text == "x" * (round_ * 5)
            for _ in range(5):
                await p.edit(typed("x"))
    assert await reload_text(RedisStorage(redis_server.url, prefix=redis_prefix)) == "x" * 10


async def test_large_documents_are_split_below_the_value_limit() -> None:
    backend = KeptStorage()
    app = App(storage=storage_url(backend))
    YjsParty("docs", app, compact_bytes=500_000)
    body = "".join(random.Random(3).choice("abcdefgh ") for _ in range(700_000))
    async with TestClient(app) as client, peer(client, "r") as p:
        await p.edit(typed(body[:300_000]))  # one log entry in three parts
        entries = await until_stored(backend, lambda e: any(k.startswith("yjs:log:") for k in e))
        assert [k.rsplit(":", 1)[1] for k in entries if k.startswith("yjs:log:")] == [
            "0000", "0001", "0002"
        ]
        await p.edit(typed(body[300_000:]))  # compaction: a snapshot in six parts
        entries = await until_stored(backend, lambda e: "yjs:meta" in e and len(e) == 7)
    meta = entries["yjs:meta"]
    assert meta["parts"] == 6 and meta["through"] == 2
    assert sorted(k for k in entries if k != "yjs:meta") == [
        f"yjs:snap:00000001:{i:04x}" for i in range(6)
    ]
    async with backend.lock(RoomKey("docs", "r")):
        rows = await backend.scan(RoomKey("docs", "r"), KeyRange())
    assert max(len(value) for _, value in rows) <= MAX_VALUE_BYTES
    assert await reload_text(backend) == body


async def test_concurrent_editors_on_slow_failing_storage_lose_nothing() -> None:
    """Sequence numbers are taken before any await: with writes that take random time and
    fail a quarter of the time, every change of every editor is stored, and nothing else."""
    backend = FlakyStorage(11, failures=0.25)
    app = App(max_messages_per_second=None, storage=storage_url(backend))
    YjsParty("docs", app, compact_entries=5, compact_bytes=2_000)
    async with TestClient(app, timeout=20) as client:
        async with (
            peer(client, "r") as a,
            peer(client, "r") as b,
            peer(client, "r") as c,
        ):
            editors: Sequence[Any] = (a, b, c)

            async def type_(editor: Any, name: str) -> None:
                for i in range(40):
                    await editor.edit(
                        lambda doc, i=i: doc.get(name, type=pycrdt.Array).append(i)
                    )
                    await asyncio.sleep(0.002)

            await asyncio.gather(*(type_(e, f"list-{n}") for n, e in enumerate(editors)))
    assert backend.failed > 0 and backend.writes > 5
    app = App(storage=storage_url(backend))
    docs = YjsParty("docs", app)
    lists: list[list[Any]] = []

    @docs.on_start
    def read(room: Any) -> None:
        document = docs.document(room)
        lists.extend(list(document.get_array(f"list-{n}")) for n in range(3))

    async with TestClient(app) as client:
        await client.get("/parties/docs/r")
    assert lists == [list(range(40))] * 3


async def test_a_crash_between_snapshot_and_cleanup_loses_nothing() -> None:
    """The snapshot and meta are written in one put, the old entries deleted after: a
    failed delete leaves leftovers that loading skips and the next compaction removes."""

    class NoDeletes(KeptStorage):
        async def write(self, room: RoomKey, batch: WriteBatch) -> int:
            if any(value is None for value in batch.changes.values()):
                raise ConnectionError("gone before the cleanup")
            return await super().write(room, batch)

    backend = NoDeletes()
    app = App(storage=storage_url(backend))
    YjsParty("docs", app, compact_entries=2)
    async with TestClient(app) as client, peer(client, "r") as p:
        for word in ("one ", "two ", "three ", "four "):
            await p.edit(typed(word))
    leftovers = [k for k in await stored(backend) if k.startswith("yjs:log:")]
    assert leftovers  # stale log entries are still there
    assert await reload_text(backend) == "one two three four "


async def test_updates_with_no_client_connected_are_flushed_on_request() -> None:
    backend = KeptStorage()
    app = App(storage=storage_url(backend))
    docs = YjsParty("docs", app)

    @docs.on_request
    async def append(request: Any, room: Any) -> str:
        document = docs.document(room)
        document.get_text("text").insert(0, await request.text())
        stored_ = await document.flush()
        return f"{stored_} {document.pending}"

    async with TestClient(app) as client:
        response = await client.post("/parties/docs/r", body=b"from the server")
        assert response.text == "True 0"
    assert await reload_text(backend) == "from the server"
