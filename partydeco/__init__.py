"""partydeco: PartyKit's real-time rooms for Python, as decorators on one app.

Every URL ``/parties/<party>/<room>`` is a room. Clients connect by WebSocket
or plain HTTP; handlers registered with the decorators of :data:`party` (the
``main`` party) or of ``Party("name")`` run for each room.
"""

from __future__ import annotations

from . import closecodes
from .app import App
from .appstack import default_app
from .config import Config
from .connection import ConnectContext, Connection
from .cron import Cron, CronLobby
from .diagnostics import requires_env
from .errors import (
    BodyTooLarge,
    BodyTooLargeError,
    ConnectionClosedError,
    ConnectionIdConflictError,
    HandlerSignatureError,
    HandshakeRefusedError,
    InvalidMessage,
    InvalidMessageError,
    MissingExtraError,
    PartydecoError,
    RefusedError,
    SetupError,
    StateTooLarge,
    StateTooLargeError,
)
from .party import Party, party
from .request import Request
from .response import Response
from .room import Lobby, Room

__all__ = [
    "App",
    "BodyTooLarge",
    "BodyTooLargeError",
    "Config",
    "ConnectContext",
    "Connection",
    "ConnectionClosedError",
    "ConnectionIdConflictError",
    "Cron",
    "CronLobby",
    "HandlerSignatureError",
    "HandshakeRefusedError",
    "InvalidMessage",
    "InvalidMessageError",
    "Lobby",
    "MissingExtraError",
    "Party",
    "PartydecoError",
    "RefusedError",
    "Request",
    "Response",
    "Room",
    "SetupError",
    "StateTooLarge",
    "StateTooLargeError",
    "closecodes",
    "default_app",
    "party",
    "requires_env",
]

__version__ = "0.1.0"
