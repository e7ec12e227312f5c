"""The errors of room storage; every one derives from :class:`StorageError`."""

from __future__ import annotations

from partydeco.errors import PartydecoError

__all__ = [
    "InvalidAlarmError",
    "InvalidKeyError",
    "KeyTooLargeError",
    "NotOwnerError",
    "StorageClosedError",
    "StorageConfigError",
    "StorageError",
    "StorageLimitError",
    "StorageUnavailableError",
    "UnsupportedValueError",
    "ValueTooLargeError",
]


class StorageError(PartydecoError):
    """Base class of every storage error."""


class StorageLimitError(StorageError, ValueError):
    """A key or a value is over its size limit.

    Attributes:
        key: the key concerned (possibly truncated to 64 characters for the message).
        size: the size in bytes that was measured.
        limit: the limit in bytes.
    """

    what = "value"

    def __init__(self, key: str, size: int, limit: int) -> None:
        self.key = key
        self.size = size
        self.limit = limit
        shown = key if len(key) <= 64 else key[:61] + "..."
        super().__init__(self._message(shown))

    def _message(self, shown: str) -> str:
        return (
            f"storage {self.what} for key {shown!r} is {self.size} bytes; "
            f"the limit is {self.limit}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, size={self.size}, limit={self.limit})"


class KeyTooLargeError(StorageLimitError):
    """A key is longer than :data:`MAX_KEY_BYTES` once encoded as UTF-8."""

    what = "key"

    def _message(self, shown: str) -> str:
        return (
            f"storage key {shown!r} is {self.size} bytes in UTF-8; keys are limited to "
            f"{self.limit} bytes"
        )


class ValueTooLargeError(StorageLimitError):
    """A value is larger than :data:`MAX_VALUE_BYTES` once encoded as msgpack."""

    def _message(self, shown: str) -> str:
        return (
            f"storage value for key {shown!r} is {self.size} bytes encoded; values are "
            f"limited to {self.limit} bytes (split large values over several keys)"
        )


class InvalidKeyError(StorageError, TypeError):
    """A key is not a ``str``, or cannot be encoded as UTF-8 (a lone surrogate)."""


class UnsupportedValueError(StorageError, TypeError):
    """msgspec cannot encode the value as msgpack."""


class InvalidAlarmError(StorageError, ValueError):
    """An alarm time is not a finite epoch-seconds number or an aware ``datetime``."""


class StorageClosedError(StorageError, RuntimeError):
    """The backend was closed; no operation can run on it any more."""


class StorageConfigError(StorageError, ValueError):
    """A storage URL or path names no backend this build knows."""


class StorageUnavailableError(StorageError, ConnectionError):
    """Redis could not be reached; nothing was written."""


class NotOwnerError(StorageError):
    """This process no longer owns the room (another process holds its lease), so the
    write was refused rather than overwrite the new owner's data."""
