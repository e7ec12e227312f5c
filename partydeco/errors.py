"""The exceptions of partydeco's core.

Every error partydeco raises derives from :class:`PartydecoError`, so
``except PartydecoError`` catches all of them, and every error's name ends in
``Error``. The errors of a subpackage live beside it (:mod:`partydeco.auth`,
:mod:`partydeco.storage`, :mod:`partydeco.client`) and derive from the same base.

The names used before 0.2 (``StateTooLarge``, ``BodyTooLarge``,
``InvalidMessage``, ``BackplaneUnavailable``, ``SocketClosed``,
``ClosedByAppError``) remain as aliases of the same classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

__all__ = [
    "BackplaneUnavailableError",
    "BodyTooLargeError",
    "ConnectionClosedError",
    "ConnectionIdConflictError",
    "HandlerSignatureError",
    "HandshakeRefusedError",
    "InvalidMessageError",
    "MissingExtraError",
    "PartydecoError",
    "ProjectExistsError",
    "RefusedError",
    "ScaffoldError",
    "SetupError",
    "StateTooLargeError",
    "UnknownTemplateError",
    "close_reason",
]


class PartydecoError(Exception):
    """Base class of every error raised by partydeco."""


class SetupError(PartydecoError, RuntimeError):
    """The app was configured wrongly, or too late (after it started serving)."""


class HandlerSignatureError(SetupError, TypeError):
    """A handler cannot be called the way partydeco calls its kind; raised as it is
    registered.

    Attributes:
        kind: the handler kind (``"on_message"``).
        handler: the function registered.
        expected: the signature partydeco expects, as Python (``async def relay(message,
            sender)``).
        where: where the handler is defined, ``file:line``.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        handler: Callable[..., object],
        expected: str,
        where: str,
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.expected = expected
        self.where = where
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, where={self.where!r})"


class MissingExtraError(SetupError, ImportError):
    """A part of partydeco needs a package that only one of its extras installs.

    It is an ``ImportError`` too, so ``except ImportError`` keeps working.

    Attributes:
        feature: what needs the package (``"partydeco.client.PartySocket"``).
        package: the missing package, as imported (``"websockets"``).
        extra: the extra that installs it (``"client"``).
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.feature = feature
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the {package} package, which partydeco installs only with "
            f"the {extra!r} extra: pip install 'partydeco[{extra}]'"
        )
        self.name = package

    def __repr__(self) -> str:
        return f"{type(self).__name__}(package={self.package!r}, extra={self.extra!r})"
class RefusedError(PartydecoError):
    """Raised by a ``before_connect`` or ``before_request`` hook to refuse on purpose,
    with a message meant for the client.

    A hook can also return a :class:`~partydeco.Response`; raising is handy deep in
    the helpers a hook calls. The client gets *status* with *message* as the body.
    Any other exception a hook raises answers a generic ``401 Unauthorized`` (or
    ``503`` when a backend is down), so exception texts never reach clients.

    Example::

        @party.before_connect
        async def members_only(request, lobby):
            if request.principal not in MEMBERS.get(lobby.id, set()):
                raise RefusedError("this room is for members", status=403)
            return request

    Attributes:
        status: the HTTP status to answer with (401 unless given).
        message: the body, shown to the client as it is.
    """

    status: int = 401

    def __init__(self, message: str = "Unauthorized", *, status: int | None = None) -> None:
        if status is not None:
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(f"status must be an HTTP error status (400-599), not {status!r}")
            self.status = status
        self.message = message
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class StateTooLargeError(PartydecoError, ValueError):
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


class BodyTooLargeError(PartydecoError, ValueError):
    """An HTTP request body was larger than the app's ``max_body_size``.

    Attributes:
        limit: the cap in bytes.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body is larger than {limit} bytes")


class InvalidMessageError(PartydecoError, ValueError):
    """A frame did not decode into the type an ``on_message`` handler declares.

    The handler is not called; the sender gets a JSON text frame
    ``{"error": "invalid_message", "detail": "..."}`` and ``on_error`` is told.
    """


class BackplaneUnavailableError(PartydecoError):
    """The cluster backplane (Redis) cannot be reached, so a room cannot be served.

    New WebSocket handshakes and HTTP requests get ``503`` with this message;
    established sockets are closed with 1012 (service restart) so clients reconnect.
    """


class ConnectionIdConflictError(PartydecoError):
    """A socket asked for a connection id that another principal's open socket holds
    (or that a socket still connecting has taken); the handshake is refused with 409.

    Attributes:
        connection_id: the id asked for.
    """

    def __init__(self, connection_id: str) -> None:
        self.connection_id = connection_id
        super().__init__("connection id already in use")


class ConnectionClosedError(PartydecoError):
    """A WebSocket connection is closed, so it cannot send or receive any more.

    Raised wherever partydeco hands out a connection: by an in-process room socket
    (``room.parties[...].get(...).socket()``), by
    :class:`partydeco.testing.TestConnection`, and by
    :class:`partydeco.client.PartySocket`.

    Attributes:
        code: the WebSocket close code.
        reason: the close reason.
    """

    def __init__(self, code: int, reason: str = "", message: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(message or f"connection closed with {code} {reason}".rstrip())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r})"


class HandshakeRefusedError(PartydecoError):
    """The server refused a WebSocket handshake with an HTTP answer.

    Attributes:
        status: the HTTP status (403 when the server closed before accepting).
        headers: the response headers, lower-cased names.
        body: the response body.
    """

    def __init__(
        self,
        status: int,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        message: str | None = None,
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body
        super().__init__(message or f"handshake refused with HTTP {status}: {body[:200]!r}")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, body={self.body[:200]!r})"


class ScaffoldError(PartydecoError):
    """``partydeco new`` could not create a project; nothing was written."""


class UnknownTemplateError(ScaffoldError, ValueError):
    """No project template has this name.

    Attributes:
        name: the name asked for.
        choices: the template names there are.
    """

    def __init__(self, name: str, choices: Sequence[str]) -> None:
        self.name = name
        self.choices = tuple(choices)
        super().__init__(f"unknown template {name!r}; choose one of: {', '.join(self.choices)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, choices={self.choices!r})"


class ProjectExistsError(ScaffoldError, FileExistsError):
    """Files a new project would write are already there; nothing was overwritten.

    Attributes:
        directory: the project's directory.
        paths: the paths in the way, relative to *directory*.
    """

    def __init__(self, directory: Path, paths: Sequence[PurePosixPath]) -> None:
        self.directory = directory
        self.paths = list(paths)
        shown = ", ".join(map(str, self.paths[:8])) + (", ..." if len(self.paths) > 8 else "")
        super().__init__(
            f"{directory} already has {shown}: nothing was written. "
            "Choose a new directory, or move those files away first."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(directory={self.directory!r}, paths={self.paths!r})"


# The names before 0.2.
StateTooLarge = StateTooLargeError
BodyTooLarge = BodyTooLargeError
InvalidMessage = InvalidMessageError
BackplaneUnavailable = BackplaneUnavailableError
SocketClosed = ConnectionClosedError
ClosedByAppError = ConnectionClosedError


def close_reason(exc: BaseException) -> str:
    """A close reason (at most 123 bytes) that names a failure without internals: the
    message of a :class:`PartydecoError`, else ``"Internal error"``."""
    if isinstance(exc, PartydecoError):
        text = str(exc)
        return text if len(text.encode()) <= 123 else "Internal error"
    return "Internal error"
