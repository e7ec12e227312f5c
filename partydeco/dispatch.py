"""The handlers of each party, as registered and as frozen for serving.

Decorators append to a :class:`PartyHandlers`; when the app starts serving it is
frozen into a :class:`Dispatch` of :class:`Call` objects that the hot path reads
without checks. Also here, because they are rules and not I/O: running the
``before_*`` hooks in order, and the JSON decoder a typed ``on_message`` handler
asks for.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import msgspec
from werkzeug.exceptions import HTTPException

from .blocking import timed
from .errors import RefusedError, SetupError
from .request import Request
from .response import Response
from .security.redact import describe

if TYPE_CHECKING:
    from .config import Config
    from .cron import CronJob
    from .observability.metrics import PartyMeter
    from .room import Lobby
    from .types import (
        AlarmHandler,
        BeforeHook,
        CloseHandler,
        ConnectHandler,
        ErrorHandler,
        MessageHandler,
        PresenceHandler,
        RequestHandler,
        StartHandler,
        TagsHandler,
    )

__all__ = [
    "KINDS", "Call", "Dispatch", "PartyHandlers", "backend_down", "freeze", "refusal", "run_hooks",
]  # fmt: skip

logger = logging.getLogger("partydeco")

#: Every handler kind ``add_handler`` takes (a function alone), in the order a party's
#: handlers are documented. Crons carry a schedule too: ``add_cron`` registers them.
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
    "on_alarm",
    "on_join",
    "on_leave",
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
    #: ``on_alarm(room)``, run when the room's storage alarm is due.
    on_alarm: list[AlarmHandler] = field(default_factory=list)
    #: ``on_cron(cron, lobby)`` with its schedule and a name unique in the party.
    on_cron: list[CronJob] = field(default_factory=list)
    #: ``on_join(user, room)``, when a user's first connection joins the room.
    on_join: list[PresenceHandler] = field(default_factory=list)
    #: ``on_leave(user, room)``, when a user's last connection left (after the grace).
    on_leave: list[PresenceHandler] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Call:
    """A handler ready to call: ``await call(*args)`` runs it, async or not.

    A plain ``def`` runs on the event loop, like the rest of the room; if it returns
    an awaitable (a synchronous wrapper around an ``async def``), that is awaited.

    Attributes:
        fn: the function the user registered (in dev mode, wrapped by
            :func:`partydeco.blocking.timed`).
        is_async: whether its result must be awaited.
        decoder: for a typed ``on_message`` handler, the decoder of its message type.
    """

    fn: Callable[..., Any]
    is_async: bool
    decoder: msgspec.json.Decoder[Any] | None = None

    @classmethod
    def of(cls, fn: Callable[..., Any], typed: bool = False, slow: float | None = None) -> Call:
        """Prepare *fn*; *typed* asks for the message decoder of an ``on_message`` handler.

        Args:
            fn: the handler.
            typed: whether to build the decoder of its message type.
            slow: report runs that block the event loop longer than this (seconds);
                dev mode sets it.

        Raises:
            TypeError: the message annotation cannot be resolved or decoded.
        """
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        decoder = _message_decoder(fn) if typed else None
        if slow is not None:
            fn = timed(fn, is_async, slow)
        return cls(fn, is_async, decoder)

    async def __call__(self, *args: Any) -> Any:
        result = self.fn(*args)
        if self.awaits(result):
            result = await result
        return result

    def awaits(self, result: Any) -> bool:
        """Whether *result*, what :attr:`fn` returned, must be awaited: always for an
        ``async def``, else when it is awaitable. Hot paths call ``fn`` and ask this
        instead of ``await call(...)``, which costs a coroutine."""
        return self.is_async or (result is not None and inspect.isawaitable(result))

    @property
    def name(self) -> str:
        """The handler's name, for log lines."""
        return getattr(self.fn, "__name__", None) or repr(self.fn)


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
    on_alarm: tuple[Call, ...]
    on_join: tuple[Call, ...]
    on_leave: tuple[Call, ...]
    #: the party's metrics while the server serves them, else ``None``.
    meter: PartyMeter | None = None
    on_cron: tuple[CronJob, ...] = ()
    #: the party's own configuration (``Party.configure``), or ``None`` for the app's.
    config: Config | None = None

    @classmethod
    def freeze(
        cls, name: str, handlers: PartyHandlers, slow: float | None = None,
        config: Config | None = None,
    ) -> Dispatch:  # fmt: skip
        """Prepare *handlers* (and the party's own *config*, if any) for serving; *slow*
        as in :meth:`Call.of`.

        Raises:
            TypeError: a typed ``on_message`` handler's message type cannot be decoded.
        """
        tables: dict[str, Any] = {
            kind: tuple(
                Call.of(fn, typed=kind == "on_message", slow=slow) for fn in getattr(handlers, kind)
            )
            for kind in KINDS
        }
        return cls(name=name, **tables, on_cron=tuple(handlers.on_cron), config=config)


def freeze(
    handlers: Mapping[str, PartyHandlers],
    slow: float | None = None,
    configs: Mapping[str, Config] | None = None,
) -> dict[str, Dispatch]:
    """Prepare every party's handlers, and the parties' own *configs*, for serving.

    Args:
        handlers: each party's handlers, by party name.
        slow: report handler runs that block the event loop longer than this
            (seconds); ``None`` (outside dev mode) calls handlers as registered.
        configs: the configurations of parties with options of their own
            (``Party.configure``), by party name; their rooms run with them.

    Raises:
        SetupError: a party's handler cannot be prepared; the message names the party.
    """
    tables = {}
    for name, party in handlers.items():
        try:
            tables[name] = Dispatch.freeze(name, party, slow, (configs or {}).get(name))
        except TypeError as exc:
            raise SetupError(f"party {name!r}: {exc}") from exc
    return tables


async def run_hooks(
    hooks: tuple[Call, ...],
    request: Request,
    lobby: Lobby,
    principal_header: str | None = None,
) -> Request | Response:
    """Run ``before_*`` hooks in order: the forwarded request, or the first ``Response``.

    A hook that raises refuses the request (see :func:`refusal`). Unless a hook set
    ``request.principal``, the *principal_header* a hook set names the principal
    (the client's own value of it was removed before the hooks ran).
    """
    for call in hooks:
        try:  # ``await call(request, lobby)``, without the coroutine of Call.__call__
            result = call.fn(request, lobby)
            if call.awaits(result):
                result = await result
        except Exception as exc:
            return refusal(exc, call, request, lobby)
        if result is None:
            continue
        if isinstance(result, Response):
            return result
        if isinstance(result, Request):
            request = result
            continue
        logger.error("%r returned %r; expected a Request, a Response or None", call.fn, result)
        return Response("Internal Server Error", 500)
    if request.principal is None and principal_header is not None:
        request.principal = request.header(principal_header) or None
    return request


def refusal(error: Exception, call: Call, request: Request, lobby: Lobby) -> Response:
    """The answer to a hook that raised *error*, keeping PartyKit's "an exception
    refuses" contract without showing the client what the exception says.

    - :class:`~partydeco.errors.RefusedError` (partydeco's auth errors are ones):
      its status and message, meant for the client.
    - ``HTTPException`` (``quart.abort(403)``): its status and description.
    - a backend that is down (``OSError``, so ``ConnectionError`` and
      ``TimeoutError``, or any library exception class named ``ConnectionError``
      or ``TimeoutError``, such as redis-py's): ``503 Service Unavailable``, so
      clients retry.
    - anything else (``PermissionError`` included, although it is an ``OSError``):
      ``401 Unauthorized``.

    Unexpected exceptions are logged whole, with the request's credentials
    redacted; on-purpose refusals in one line.
    """
    if isinstance(error, RefusedError):
        logger.info("%s refused %s with %d: %s", call.name, lobby, error.status, error.message)
        return Response(error.message or "Unauthorized", error.status)
    if isinstance(error, HTTPException):
        status = error.code or 401
        logger.info("%s refused %s with %d", call.name, lobby, status)
        return Response(error.description or error.name, status)
    down = backend_down(error)
    status, body = (503, "Service Unavailable") if down else (401, "Unauthorized")
    logger.warning(
        "%s raised; %s answered %d:\n%s", call.name, lobby, status, describe(error, request)
    )
    return Response(body, status)


def backend_down(error: BaseException) -> bool:
    """Whether *error* says a backend (a database, a network service) is unreachable."""
    if isinstance(error, OSError) and not isinstance(error, PermissionError):
        return True
    return any(cls.__name__ in ("ConnectionError", "TimeoutError") for cls in type(error).__mro__)


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
