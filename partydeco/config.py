"""The limits and timings an app runs with."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Options for an :class:`~partydeco.App`, all with safe defaults.

    Attributes:
        max_message_size: largest incoming WebSocket message, in bytes, after
            permessage-deflate decompression. Larger messages close the socket
            with 1009.
        max_body_size: largest HTTP request body, in bytes; larger bodies get 413.
        max_pending_messages: frames one connection may have queued for sending;
            a peer that falls further behind is closed with 1013.
        max_pending_bytes: the same bound in bytes.
        close_timeout: seconds to wait for a peer to finish the closing handshake.
        shutdown_timeout: seconds graceful shutdown waits for ``on_close`` handlers.
        state_limit: largest ``Connection.state``, in bytes of JSON.
    """

    max_message_size: int = 1 << 20
    max_body_size: int = 1 << 20
    max_pending_messages: int = 1024
    max_pending_bytes: int = 8 << 20
    close_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    state_limit: int = 2048

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{field.name} must be a positive number, not {value!r}")
