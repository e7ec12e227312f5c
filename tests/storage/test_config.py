"""Choosing a storage backend from a URL or a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from partydeco.storage import (
    MemoryStorage,
    RoomStorage,
    SqliteStorage,
    StorageConfigError,
    open_storage,
)


def test_memory_url() -> None:
    assert isinstance(open_storage("memory://"), MemoryStorage)


def test_sqlite_urls(tmp_path: Path) -> None:
    absolute = open_storage(f"sqlite://{tmp_path}/a/rooms.db")
    assert isinstance(absolute, SqliteStorage)
    assert absolute.path == tmp_path / "a" / "rooms.db"
    assert absolute.synchronous == "FULL"
    relative = open_storage("sqlite://data/rooms.db?synchronous=normal")
    assert isinstance(relative, SqliteStorage)
    assert relative.path == Path("data/rooms.db")
    assert relative.synchronous == "NORMAL"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "no file path"),
        ("sqlite:///x.db?journal=off", "unknown option"),
        ("sqlite:///x.db?synchronous=off", "full or normal"),
        ("mongodb://localhost", "no storage backend for mongodb://"),
        ("memory://somewhere", "just 'memory://'"),
        ("", "empty"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        open_storage(url)


def test_redis_url_names_the_redis_backend() -> None:
    from partydeco.storage.redis import RedisStorage

    backend = open_storage("redis://127.0.0.1:1/0")  # nothing connects before first use
    assert isinstance(backend, RedisStorage)
    assert backend.url == "redis://127.0.0.1:1/0"


def test_paths(tmp_path: Path) -> None:
    file_backend = open_storage(tmp_path / "x.sqlite3")
    assert isinstance(file_backend, SqliteStorage)
    assert file_backend.path == tmp_path / "x.sqlite3"
    dir_backend = open_storage(str(tmp_path / "data"))
    assert isinstance(dir_backend, SqliteStorage)
    assert dir_backend.path == tmp_path / "data" / "storage.db"


def test_default_is_a_file_under_dot_partydeco(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARTYDECO_STORAGE", raising=False)
    backend = open_storage()
    assert isinstance(backend, SqliteStorage)
    assert backend.path == Path(".partydeco") / "storage.db"
    monkeypatch.setenv("PARTYDECO_STORAGE", "memory://")
    assert isinstance(open_storage(), MemoryStorage)


async def test_directory_backend_creates_its_file(tmp_path: Path) -> None:
    async with open_storage(tmp_path / "deep" / "data") as backend:
        await RoomStorage(backend, "main", "r").put("k", 1)
    assert (tmp_path / "deep" / "data" / "storage.db").is_file()
