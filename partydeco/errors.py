"""The exceptions partydeco raises.

Every error partydeco raises derives from :class:`PartydecoError`, so
``except PartydecoError`` catches all of them.
"""

from __future__ import annotations

__all__ = ["BackplaneUnavailable", "PartydecoError", "SetupError", "StateTooLarge"]


class PartydecoError(Exception):
    """Base class of every error raised by partydeco."""


class SetupError(PartydecoError, RuntimeError):
    """The app was configured wrongly, or too late (after it started serving)."""


class StateTooLarge(PartydecoError, ValueError):
    """``Connection.set_state`` was given a value whose encoding is over the cap.

    Attributes:
        size: the encoded size in bytes.
        limit: the cap in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"connection state is {size} bytes once encoded as JSON; the limit is {limit} bytes"
        )


class BackplaneUnavailable(PartydecoError):
    """The cluster backplane (Redis) cannot be reached, so a room cannot be served.

    New WebSocket handshakes and HTTP requests get ``503`` with this message;
    established sockets are closed with 1012 (service restart) so clients reconnect.
    """
