"""The WebSocket close codes partydeco uses, by name.

Codes from RFC 6455 that partydeco sends or reports; compare
``on_close``'s ``code`` with these, or pass them to ``Connection.close``.
"""

from __future__ import annotations

__all__ = [
    "ABNORMAL",
    "GOING_AWAY",
    "INTERNAL_ERROR",
    "INVALID_PAYLOAD",
    "MESSAGE_TOO_BIG",
    "NORMAL",
    "NO_STATUS",
    "POLICY_VIOLATION",
    "REPLACED",
    "SERVICE_RESTART",
    "TOKEN_EXPIRED",
    "TRY_AGAIN_LATER",
    "UNSUPPORTED_DATA",
]

#: The connection did its job and closed.
NORMAL = 1000
#: The server is shutting down (graceful shutdown).
GOING_AWAY = 1001
#: The peer sent a kind of frame the endpoint does not accept (a text frame where
#: only binary ones make sense, an unknown protocol message).
UNSUPPORTED_DATA = 1003
#: The close frame carried no code.
NO_STATUS = 1005
#: The peer vanished without a close frame.
ABNORMAL = 1006
#: The client sent messages faster than ``max_messages_per_second`` allows
#: (terminal: clients do not reconnect).
POLICY_VIOLATION = 1008
#: A message's content is malformed for its type (e.g. a Yjs update that does not
#: decode).
INVALID_PAYLOAD = 1007
#: A message was larger than ``max_message_size``.
MESSAGE_TOO_BIG = 1009
#: ``on_connect`` (or ``connection_tags``) raised.
INTERNAL_ERROR = 1011
#: The server lost its cluster's Redis (or the room moved to another process):
#: reconnect, service resumes without a restart.
SERVICE_RESTART = 1012
#: The peer fell too far behind (its outbox overflowed).
TRY_AGAIN_LATER = 1013
#: A new socket with the same connection id, authenticated as the same principal,
#: took this one's place (a reconnect whose old socket was half-open). Terminal for
#: partydeco's client, as every 4000-4999 code: reconnecting would displace the new one.
REPLACED = 4409
#: The connection's token expired (``request.expires_at`` plus ``token_leeway``)
#: and was not refreshed. Non-terminal: clients reconnect with a fresh token.
TOKEN_EXPIRED = 3005
