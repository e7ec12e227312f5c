"""Room storage: ``room.storage`` and the backends behind it.

``RoomStorage`` is what handlers use; a :class:`StorageBackend` (SQLite by default,
memory for tests) holds the bytes. :func:`open_storage` picks a backend from a URL or
path.
"""

from __future__ import annotations

from partydeco.storage.base import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    KeyRange,
    RoomKey,
    StorageBackend,
    WriteBatch,
)
from partydeco.storage.config import open_storage, register_backend
from partydeco.storage.errors import (
    InvalidAlarmError,
    InvalidKeyError,
    KeyTooLargeError,
    NotOwnerError,
    StorageClosedError,
    StorageConfigError,
    StorageError,
    StorageLimitError,
    StorageUnavailableError,
    UnsupportedValueError,
    ValueTooLargeError,
)
from partydeco.storage.memory import MemoryStorage
from partydeco.storage.room import RoomStorage, StorageTransaction
from partydeco.storage.sqlite import SqliteStorage

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "InvalidAlarmError",
    "InvalidKeyError",
    "KeyRange",
    "KeyTooLargeError",
    "MemoryStorage",
    "NotOwnerError",
    "RoomKey",
    "RoomStorage",
    "SqliteStorage",
    "StorageBackend",
    "StorageClosedError",
    "StorageConfigError",
    "StorageError",
    "StorageLimitError",
    "StorageTransaction",
    "StorageUnavailableError",
    "UnsupportedValueError",
    "ValueTooLargeError",
    "WriteBatch",
    "open_storage",
    "register_backend",
]
