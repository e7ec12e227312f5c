"""Choosing a storage backend from a configuration string.

Accepted forms:

- ``"memory://"``: :class:`~partydeco.storage.memory.MemoryStorage` (nothing persists).
- ``"sqlite://"`` followed by a file path: ``"sqlite:///var/lib/app/rooms.db"`` is the
  absolute path ``/var/lib/app/rooms.db``, ``"sqlite://data/rooms.db"`` is relative to
  the working directory. A query ``?synchronous=normal`` trades power-cut durability
  for speed.
- a plain path: a name ending in ``.db``, ``.sqlite`` or ``.sqlite3`` is the SQLite
  file; anything else is a data directory holding ``storage.db``.
- ``"redis://host:6379/0"`` (or ``rediss://``): :class:`~partydeco.storage.redis.RedisStorage`,
  which needs the ``redis`` package (``pip install partydeco[redis]``).
- ``None``: the ``PARTYDECO_STORAGE`` environment variable if set, else
  ``.partydeco/storage.db`` under the working directory.

Other schemes are registered with :func:`register_backend`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

from partydeco.storage.base import StorageBackend
from partydeco.storage.errors import StorageConfigError
from partydeco.storage.memory import MemoryStorage
from partydeco.storage.sqlite import SqliteStorage

__all__ = [
    "DEFAULT_STORAGE_PATH",
    "STORAGE_ENV_VAR",
    "open_storage",
    "register_backend",
]

#: Where the embedded default keeps its data, relative to the working directory.
DEFAULT_STORAGE_PATH = Path(".partydeco") / "storage.db"
#: Environment variable read when no storage is configured explicitly.
STORAGE_ENV_VAR = "PARTYDECO_STORAGE"

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

BackendFactory = Callable[[str], StorageBackend]

# scheme -> factory taking the full URL; filled by register_backend().
_factories: dict[str, BackendFactory] = {}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make ``open_storage("<scheme>://...")`` call ``factory(url)``."""
    _factories[scheme.lower()] = factory


def _sqlite_from_url(url: str) -> StorageBackend:
    rest = url[len("sqlite://") :]
    path, _, query = rest.partition("?")
    if not path:
        raise StorageConfigError(
            f"storage URL {url!r} has no file path; write sqlite:///absolute/file.db "
            "or sqlite://relative/file.db"
        )
    options = {k.lower(): v[-1] for k, v in parse_qs(query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise StorageConfigError(
            f"storage URL {url!r} has unknown option(s) {sorted(unknown)}; "
            "only synchronous=full|normal is supported"
        )
    sync = options.get("synchronous", "full").upper()
    if sync not in ("FULL", "NORMAL"):
        raise StorageConfigError(f"storage URL {url!r}: synchronous must be full or normal")
    return SqliteStorage(path, synchronous="FULL" if sync == "FULL" else "NORMAL")


def _memory_from_url(url: str) -> StorageBackend:
    if url.lower() not in ("memory://", "memory:"):
        raise StorageConfigError(f"storage URL {url!r}: write just 'memory://'")
    return MemoryStorage()


def _redis_from_url(url: str) -> StorageBackend:
    from partydeco.storage.redis import RedisStorage

    return RedisStorage(url)


register_backend("sqlite", _sqlite_from_url)
register_backend("redis", _redis_from_url)
register_backend("rediss", _redis_from_url)
register_backend("memory", _memory_from_url)


def open_storage(spec: str | os.PathLike[str] | None = None) -> StorageBackend:
    """Create the backend a configuration string names (see the module docs).

    Example::

        backend = open_storage("sqlite:///srv/app/rooms.db")
        backend = open_storage("memory://")

    Raises:
        StorageConfigError: the scheme is unknown or the URL is malformed.
    """
    if spec is None:
        spec = os.environ.get(STORAGE_ENV_VAR) or DEFAULT_STORAGE_PATH
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not spec:
        raise StorageConfigError("storage configuration is empty; use a path or 'memory://'")
    scheme, sep, _ = spec.partition("://")
    if sep and scheme.isidentifier():
        factory = _factories.get(scheme.lower())
        if factory is None:
            known = ", ".join(f"{name}://" for name in sorted(_factories))
            raise StorageConfigError(
                f"no storage backend for {scheme}:// (known: {known}, or a filesystem path)"
            )
        return factory(spec)
    if spec.lower() == "memory:":
        return MemoryStorage()
    path = Path(spec).expanduser()
    if path.suffix.lower() in _SQLITE_SUFFIXES and not path.is_dir():
        return SqliteStorage(path)
    return SqliteStorage(path / "storage.db")
