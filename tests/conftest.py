"""Fixtures shared by several test modules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, redis_binary
from tests.support.servers import Process


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One throwaway ``redis-server`` (no persistence) for the whole test session."""
    server = RedisServer(redis_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the server never meet."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own, persistent (AOF), to stop and restart."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(redis_binary(), directory, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nodes() -> Iterator[list[Process]]:
    """Server processes the test starts (it appends them); all stopped at the end."""
    started: list[Process] = []
    yield started
    for node in started:
        node.stop()
