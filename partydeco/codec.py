"""Encoding of outgoing messages and payloads with msgspec.

Strings and bytes go out unchanged (a text or a binary frame); anything else is
encoded once as JSON text, so a broadcast encodes its message once for every
receiver.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["encode_frame", "encode_json"]

_encoder = msgspec.json.Encoder()


def encode_json(value: Any) -> bytes:
    """Encode *value* as JSON bytes.

    Raises:
        TypeError: msgspec cannot encode the value.
    """
    try:
        return _encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON: {exc}") from None


def encode_frame(message: Any) -> str | bytes:
    """Turn a message into what goes on the wire: ``str`` as text, ``bytes`` as binary.

    ``bytearray`` and ``memoryview`` are sent as binary; any other value is encoded
    as JSON and sent as a text frame.
    """
    if type(message) is str or type(message) is bytes:
        return message
    if isinstance(message, (str, bytes)):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    return encode_json(message).decode("utf-8")
