"""The limits and timings an app runs with."""

from __future__ import annotations

import os
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
        storage: where ``room.storage`` keeps data: ``"memory://"``,
            ``"sqlite:///path/file.db"``, or a directory. ``None`` means the
            ``PARTYDECO_STORAGE`` environment variable, else ``.partydeco/storage.db``
            in the working directory (see :func:`partydeco.storage.open_storage`).
        idle_timeout: seconds a room with no connections, no request in progress and
            no pending alarm stays loaded; then it is unloaded and the next arrival
            runs ``on_start`` again.
        alarm_retry_delay: seconds before the first retry of an ``on_alarm`` handler
            that raised; each further retry waits twice as long.
        alarm_max_retries: retries of a failing alarm before it is dropped.
        redis_url: a Redis URL (``redis://host:6379/0``) that makes every process
            using it one cluster: one owner per room, storage and alarms in Redis.
            ``None`` means the ``PARTYDECO_REDIS_URL`` environment variable, else
            no Redis (one process, embedded storage).
        redis_lease: seconds a room owner's lease in Redis lasts without renewal;
            after an owner dies its rooms move within about this time.
        redis_prefix: prefix of every Redis key and channel, so several apps can
            share one Redis.
    """

    max_message_size: int = 1 << 20
    max_body_size: int = 1 << 20
    max_pending_messages: int = 1024
    max_pending_bytes: int = 8 << 20
    close_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    state_limit: int = 2048
    storage: str | os.PathLike[str] | None = None
    idle_timeout: float = 60.0
    alarm_retry_delay: float = 2.0
    alarm_max_retries: int = 6
    redis_url: str | None = None
    redis_lease: float = 5.0
    redis_prefix: str = "partydeco"

    def __post_init__(self) -> None:
        if self.storage is not None and not isinstance(self.storage, (str, os.PathLike)):
            raise ValueError(f"storage must be a URL or path string, not {self.storage!r}")
        retries = self.alarm_max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"alarm_max_retries must be a non-negative int, not {retries!r}")
        if self.redis_url is not None and not isinstance(self.redis_url, str):
            raise ValueError(f"redis_url must be a URL string, not {self.redis_url!r}")
        if not isinstance(self.redis_prefix, str) or not self.redis_prefix:
            raise ValueError(f"redis_prefix must be a non-empty string, not {self.redis_prefix!r}")
        for field in fields(self):
            if field.name in ("storage", "alarm_max_retries", "redis_url", "redis_prefix"):
                continue
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{field.name} must be a positive number, not {value!r}")
