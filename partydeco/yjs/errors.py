"""Errors of :mod:`partydeco.yjs`."""

from __future__ import annotations

from partydeco import PartydecoError, closecodes

__all__ = ["DocumentNotLoadedError", "ProtocolError", "StoredDocumentError", "YjsError"]


class YjsError(PartydecoError):
    """Base class of the errors of :mod:`partydeco.yjs`."""


class ProtocolError(YjsError, ValueError):
    """A client sent something the Yjs protocol (or a limit) does not allow.

    The connection is closed with :attr:`code` and the message as the reason; the
    document is not changed.

    Attributes:
        code: the WebSocket close code: 1007 (malformed) by default, 1003 (a kind of
            frame or message the server does not accept), 1009 (over a size limit) or
            1008 (over a count limit).
    """

    def __init__(self, message: str, code: int = closecodes.INVALID_PAYLOAD) -> None:
        super().__init__(message)
        self.code = code

    def __repr__(self) -> str:
        return f"ProtocolError({str(self)!r}, code={self.code})"


class DocumentNotLoadedError(YjsError, LookupError):
    """``yjs_party.document(room)`` for a room whose document is not loaded.

    A room's document is loaded by the party's ``on_start`` handler, before any
    connection, request or alarm reaches the room's other handlers.
    """


class StoredDocumentError(YjsError):
    """The stored form of a document is incomplete or not a Yjs update.

    Raised while loading, so the room does not start (its arrival answers 500) rather
    than serve a document that lost data.
    """
