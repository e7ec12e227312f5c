"""Handler signatures and the table of handlers each party registers.

Decorators append to a :class:`PartyHandlers`; when the app starts serving it
is frozen into a :class:`Dispatch` that the hot path reads without checks.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, Union

import msgspec

if TYPE_CHECKING:
    from .connection import ConnectContext, Connection
    from .request import Request
    from .response import Response
    from .room import Lobby, Room

__all__ = [
    "BeforeHook",
    "CloseHandler",
    "ConnectHandler",
    "Dispatch",
    "ErrorHandler",
    "MessageHandler",
    "PartyHandlers",
    "RequestHandler",
    "StartHandler",
    "TagsHandler",
]

HookResult: TypeAlias = "Request | Response | None"
BeforeHook: TypeAlias = Callable[
    ["Request", "Lobby"], "Awaitable[Request | Response | None] | Request | Response | None"
]
StartHandler: TypeAlias = Callable[["Room"], "Awaitable[None] | None"]
ConnectHandler: TypeAlias = Callable[["Connection", "ConnectContext"], "Awaitable[None] | None"]
MessageHandler: TypeAlias = Callable[[Any, "Connection"], "Awaitable[None] | None"]
CloseHandler: TypeAlias = Callable[["Connection", int, str], "Awaitable[None] | None"]
ErrorHandler: TypeAlias = Callable[["Connection", BaseException], "Awaitable[None] | None"]
RequestHandler: TypeAlias = Callable[["Request", "Room"], Any]
TagsHandler: TypeAlias = Callable[
    ["Connection", "ConnectContext"], "Awaitable[list[str]] | list[str]"
]

BeforeHookT = TypeVar("BeforeHookT", bound=BeforeHook)
StartHandlerT = TypeVar("StartHandlerT", bound=StartHandler)
ConnectHandlerT = TypeVar("ConnectHandlerT", bound=ConnectHandler)
MessageHandlerT = TypeVar("MessageHandlerT", bound=MessageHandler)
CloseHandlerT = TypeVar("CloseHandlerT", bound=CloseHandler)
ErrorHandlerT = TypeVar("ErrorHandlerT", bound=ErrorHandler)
RequestHandlerT = TypeVar("RequestHandlerT", bound=RequestHandler)
TagsHandlerT = TypeVar("TagsHandlerT", bound=TagsHandler)

KINDS = (
    "before_connect",
    "before_request",
    "on_start",
    "on_connect",
    "on_message",
    "on_close",
    "on_error",
    "on_request",
    "connection_tags",
)


@dataclass
class PartyHandlers:
    """The handlers one party registered, in registration order, by kind."""

    #: ``before_connect(request, lobby)``, run for each WebSocket upgrade.
    before_connect: list[BeforeHook] = field(default_factory=list)
    #: ``before_request(request, lobby)``, run for each HTTP request.
    before_request: list[BeforeHook] = field(default_factory=list)
    #: ``on_start(room)``, awaited once per room before its first arrival.
    on_start: list[StartHandler] = field(default_factory=list)
    #: ``on_connect(connection, ctx)``.
    on_connect: list[ConnectHandler] = field(default_factory=list)
    #: ``on_message(message, sender)``.
    on_message: list[MessageHandler] = field(default_factory=list)
    #: ``on_close(connection, code, reason)``.
    on_close: list[CloseHandler] = field(default_factory=list)
    #: ``on_error(connection, error)``.
    on_error: list[ErrorHandler] = field(default_factory=list)
    #: ``on_request(request, room)``; the first result that is not ``None`` answers.
    on_request: list[RequestHandler] = field(default_factory=list)
    #: ``connection_tags(connection, ctx) -> list[str]``.
    connection_tags: list[TagsHandler] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Call:
    """A handler ready to call: whether its result must be awaited, and, for
    typed ``on_message`` handlers, the decoder for its message type."""

    fn: Callable[..., Any]
    is_async: bool
    decoder: msgspec.json.Decoder[Any] | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A party's handlers, frozen for serving."""

    name: str
    before_connect: tuple[Call, ...]
    before_request: tuple[Call, ...]
    on_start: tuple[Call, ...]
    on_connect: tuple[Call, ...]
    on_message: tuple[Call, ...]
    on_close: tuple[Call, ...]
    on_error: tuple[Call, ...]
    on_request: tuple[Call, ...]
    connection_tags: tuple[Call, ...]

    @classmethod
    def freeze(cls, name: str, handlers: PartyHandlers) -> Dispatch:
        """Prepare *handlers* for serving."""
        tables = {
            kind: tuple(_prepare(fn, typed=kind == "on_message") for fn in getattr(handlers, kind))
            for kind in KINDS
        }
        return cls(name=name, **tables)


def _prepare(fn: Callable[..., Any], typed: bool = False) -> Call:
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
    decoder = _message_decoder(fn) if typed else None
    return Call(fn, is_async, decoder)


_RAW = (str, bytes, Any, object, Union[str, bytes], str | bytes, inspect.Parameter.empty)  # noqa: UP007


def _message_decoder(fn: Callable[..., Any]) -> msgspec.json.Decoder[Any] | None:
    """A JSON decoder for the type annotated on a handler's first parameter.

    ``str``, ``bytes``, ``str | bytes``, ``Any`` or no annotation mean raw frames.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    annotation = hints.get(params[0].name, params[0].annotation)
    if annotation in _RAW:
        return None
    if isinstance(annotation, str):
        raise TypeError(
            f"cannot resolve the annotation {annotation!r} of {fn.__qualname__}'s message: "
            "define the type at module level so typing.get_type_hints() finds it"
        )
    try:
        return msgspec.json.Decoder(annotation)
    except TypeError as exc:
        raise TypeError(
            f"{fn.__qualname__}: messages cannot be decoded as {annotation!r}: {exc}"
        ) from None
