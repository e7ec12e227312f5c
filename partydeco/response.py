"""The response a hook or an ``on_request`` handler gives back."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import Headers

from .codec import encode_json
from .types import HeadersLike

__all__ = ["Response", "to_response"]



class Response:
    """An HTTP response.

    Returned from ``before_connect`` it refuses the WebSocket: the client gets
    this status, headers and body as the handshake's answer and no socket opens.
    Returned from ``before_request`` or ``on_request`` it is the HTTP answer.

    Example::

        return Response("Unauthorized", status=401)

    Args:
        body: the body; ``str`` is encoded as UTF-8.
        status: the HTTP status code.
        headers: extra headers.
        content_type: the ``Content-Type``; defaults to ``text/plain; charset=utf-8``
            for a ``str`` body and ``application/octet-stream`` for ``bytes``.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: str | bytes = b"",
        status: int = 200,
        headers: HeadersLike | None = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(body, str):
            self.body = body.encode("utf-8")
            default_type = "text/plain; charset=utf-8"
        else:
            self.body = bytes(body)
            default_type = "application/octet-stream"
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), not {status!r}")
        self.status = status
        self.headers = Headers(headers) if headers is not None else Headers()
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        elif "Content-Type" not in self.headers and self.body:
            self.headers["Content-Type"] = default_type

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: HeadersLike | None = None) -> Response:
        """A JSON response; *value* is anything msgspec encodes (dict, list, Struct, ...)."""
        return cls(encode_json(value), status, headers, content_type="application/json")

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, if set."""
        return self.headers.get("Content-Type")

    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def to_response(result: Any) -> Response:
    """Turn what an ``on_request`` handler returned into a :class:`Response`.

    A ``Response`` is used as it is, ``str`` becomes ``text/plain``, ``bytes``
    ``application/octet-stream``, and anything else is encoded as JSON.

    Raises:
        TypeError: the value cannot be encoded as JSON.
    """
    if isinstance(result, Response):
        return result
    if isinstance(result, (str, bytes)):
        return Response(result)
    return Response.json(result)
