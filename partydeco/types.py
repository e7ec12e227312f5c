"""The types partydeco's signatures share: ASGI callables, headers, and handlers.

Each handler kind has an alias (``MessageHandler``) and a TypeVar bound to it
(``MessageHandlerT``), so a decorator typed ``(f: MessageHandlerT) -> MessageHandlerT``
returns the function with its own signature intact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from werkzeug.datastructures import Headers

if TYPE_CHECKING:
    from .connection import ConnectContext, Connection
    from .cron import Cron, CronLobby
    from .request import Request
    from .response import Response
    from .room import Lobby, Room

__all__ = [
    "ASGIApp",
    "AlarmHandler",
    "AlarmHandlerT",
    "BeforeHook",
    "BeforeHookT",
    "CloseHandler",
    "CloseHandlerT",
    "ConnectHandler",
    "ConnectHandlerT",
    "CronHandler",
    "CronHandlerT",
    "ErrorHandler",
    "ErrorHandlerT",
    "HeadersLike",
    "Message",
    "MessageHandler",
    "MessageHandlerT",
    "PresenceHandler",
    "PresenceHandlerT",
    "Receive",
    "Refresher",
    "RequestHandler",
    "RequestHandlerT",
    "Scope",
    "Send",
    "StartHandler",
    "StartHandlerT",
    "TagsHandler",
    "TagsHandlerT",
]

# -- ASGI -----------------------------------------------------------------------------

#: An ASGI connection scope.
Scope: TypeAlias = MutableMapping[str, Any]
#: An ASGI event (``{"type": "websocket.send", ...}``).
Message: TypeAlias = MutableMapping[str, Any]
#: The ASGI ``receive`` callable.
Receive: TypeAlias = Callable[[], Awaitable[Message]]
#: The ASGI ``send`` callable.
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: ``await refresher(token)`` checks a new token for the client of an open socket and
#: returns its expiry (seconds since the epoch, or ``None`` for none); it raises to refuse it.
Refresher: TypeAlias = Callable[[str], Awaitable[float | None]]

#: Headers given to partydeco: a mapping, ``(name, value)`` pairs, or werkzeug ``Headers``.
HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]] | Headers

# -- handlers -----------------------------------------------------------------------------

BeforeHook: TypeAlias = Callable[
    ["Request", "Lobby"], "Awaitable[Request | Response | None] | Request | Response | None"
]
StartHandler: TypeAlias = Callable[["Room"], "Awaitable[None] | None"]
ConnectHandler: TypeAlias = Callable[["Connection", "ConnectContext"], "Awaitable[None] | None"]
MessageHandler: TypeAlias = Callable[[Any, "Connection"], "Awaitable[None] | None"]
CloseHandler: TypeAlias = Callable[["Connection", int, str], "Awaitable[None] | None"]
ErrorHandler: TypeAlias = Callable[["Connection", BaseException], "Awaitable[None] | None"]
RequestHandler: TypeAlias = Callable[["Request", "Room"], Any]
AlarmHandler: TypeAlias = Callable[["Room"], "Awaitable[None] | None"]
CronHandler: TypeAlias = Callable[["Cron", "CronLobby"], "Awaitable[None] | None"]
TagsHandler: TypeAlias = Callable[
    ["Connection", "ConnectContext"], "Awaitable[list[str]] | list[str]"
]
#: ``on_join(user, room)`` / ``on_leave(user, room)``: *user* is a principal.
PresenceHandler: TypeAlias = Callable[[str, "Room"], "Awaitable[None] | None"]

BeforeHookT = TypeVar("BeforeHookT", bound=BeforeHook)
StartHandlerT = TypeVar("StartHandlerT", bound=StartHandler)
ConnectHandlerT = TypeVar("ConnectHandlerT", bound=ConnectHandler)
MessageHandlerT = TypeVar("MessageHandlerT", bound=MessageHandler)
CloseHandlerT = TypeVar("CloseHandlerT", bound=CloseHandler)
ErrorHandlerT = TypeVar("ErrorHandlerT", bound=ErrorHandler)
RequestHandlerT = TypeVar("RequestHandlerT", bound=RequestHandler)
TagsHandlerT = TypeVar("TagsHandlerT", bound=TagsHandler)
AlarmHandlerT = TypeVar("AlarmHandlerT", bound=AlarmHandler)
CronHandlerT = TypeVar("CronHandlerT", bound=CronHandler)
PresenceHandlerT = TypeVar("PresenceHandlerT", bound=PresenceHandler)
