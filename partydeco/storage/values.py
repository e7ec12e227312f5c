"""How user keys, values, ranges and alarm times are checked and encoded for a backend.

Keys are ``str``, stored as UTF-8 bytes (at most 2 KiB); values are anything msgspec
encodes as msgpack (at most 128 KiB encoded); alarm times are epoch seconds or aware
datetimes. Every check raises the storage error that says what to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from partydeco.storage.base import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    KeyRange,
    bytes_successor,
    check_alarm_time,
)
from partydeco.storage.errors import (
    InvalidAlarmError,
    InvalidKeyError,
    KeyTooLargeError,
    UnsupportedValueError,
    ValueTooLargeError,
)

__all__ = ["alarm_seconds", "decode_value", "encode_key", "encode_value", "key_list", "key_range"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()

# Epoch seconds above this are almost certainly milliseconds (it is the year 5138).
_MILLISECONDS_HINT = 1e11


def encode_key(key: object) -> bytes:
    """Check a user key and return its UTF-8 bytes."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"storage keys must be str, not {type(key).__name__}")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(f"storage key {key[:64]!r} is not valid Unicode text") from None
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLargeError(key, len(raw), MAX_KEY_BYTES)
    return raw


def encode_value(key: str, value: Any) -> bytes:
    """Encode a user value as msgpack, enforcing the size limit."""
    try:
        raw = _encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise UnsupportedValueError(
            f"cannot store {type(value).__name__} under {key[:64]!r}: {exc}"
        ) from None
    if len(raw) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(key, len(raw), MAX_VALUE_BYTES)
    return raw


def decode_value(raw: bytes) -> Any:
    """Decode a stored msgpack value."""
    return _decoder.decode(raw)


def key_list(keys: Iterable[str]) -> list[str]:
    """Check the keys of a multi-key call (an iterable of str, not a str or bytes)."""
    if isinstance(keys, (bytes, bytearray, Mapping)) or not isinstance(keys, Iterable):
        raise InvalidKeyError(
            f"expected a str key or an iterable of str keys, not {type(keys).__name__}"
        )
    items = list(keys)
    for key in items:
        if not isinstance(key, str):
            raise InvalidKeyError(f"storage keys must be str, not {type(key).__name__}")
    return items


def key_range(
    *,
    prefix: str | None,
    start: str | None,
    start_after: str | None,
    end: str | None,
    reverse: bool,
    limit: int | None,
) -> KeyRange:
    """Turn the arguments of ``list()`` into a :class:`KeyRange`."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"list(limit=...) must be a non-negative int or None, not {limit!r}")
    if start is not None and start_after is not None:
        raise ValueError("list() takes start or start_after, not both")
    lows: list[bytes] = []
    highs: list[bytes] = []
    if start is not None:
        lows.append(encode_key(start))
    if start_after is not None:
        # The smallest key greater than start_after is start_after followed by U+0000.
        lows.append(encode_key(start_after) + b"\x00")
    if end is not None:
        highs.append(encode_key(end))
    if prefix is not None:
        raw = encode_key(prefix)
        lows.append(raw)
        upper = bytes_successor(raw)
        if upper is not None:
            highs.append(upper)
    return KeyRange(
        low=max(lows) if lows else None,
        high=min(highs) if highs else None,
        reverse=bool(reverse),
        limit=limit,
    )


def alarm_seconds(when: datetime | float) -> float:
    """Convert what ``set_alarm`` accepts into epoch seconds."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise InvalidAlarmError(
                "set_alarm() needs an aware datetime, e.g. "
                "datetime.now(timezone.utc) + timedelta(minutes=5), or epoch seconds"
            )
        return when.timestamp()
    at = check_alarm_time(when)
    if at > _MILLISECONDS_HINT:
        raise InvalidAlarmError(
            f"alarm time {when!r} looks like epoch milliseconds; set_alarm() takes epoch "
            "seconds (time.time() + delay), so divide by 1000"
        )
    return at
