"""The response a hook or an ``on_request`` handler gives back."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.sansio.response import Response as WerkzeugResponse

from .codec import encode_json
from .signatures import location
from .types import HeadersLike

__all__ = ["Response", "answer", "to_response"]

logger = logging.getLogger("partydeco")

_ENCODED_TYPES = {
    name: name.encode("latin-1")
    for name in ("application/json", "text/plain; charset=utf-8", "application/octet-stream")
}


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

    __slots__ = ("_headers", "_type", "body", "status")

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
            self.body = body if type(body) is bytes else bytes(body)
            default_type = "application/octet-stream"
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), not {status!r}")
        self.status = status
        # Without headers of its own a response holds just its Content-Type: the
        # Headers object is made when something reads or changes ``headers``.
        self._type: str | None = None
        self._headers: Headers | None = None
        if headers is None:
            if content_type is None:
                self._type = default_type if self.body else None
            elif "\r" in content_type or "\n" in content_type:
                raise ValueError("Header values must not contain newline characters.")
            else:
                self._type = content_type
            return
        self._headers = Headers(headers)
        if content_type is not None:
            self._headers["Content-Type"] = content_type
        elif "Content-Type" not in self._headers and self.body:
            self._headers["Content-Type"] = default_type

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: HeadersLike | None = None) -> Response:
        """A JSON response; *value* is anything msgspec encodes (dict, list, Struct, ...)."""
        return cls(encode_json(value), status, headers, "application/json")

    @property
    def headers(self) -> Headers:
        """The response headers (case-insensitive and mutable)."""
        if self._headers is None:
            self._headers = Headers()
            if self._type is not None:
                self._headers["Content-Type"] = self._type
        return self._headers

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, if set."""
        if self._headers is None:
            return self._type
        return self.headers.get("Content-Type")

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """The headers as ASGI sends them: lower-case names, Latin-1 bytes (a new list)."""
        if self._headers is None:
            if self._type is None:
                return []
            value = _ENCODED_TYPES.get(self._type)
            if value is None:
                value = self._type.encode("latin-1")
            return [(b"content-type", value)]
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self._headers]

    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


async def to_response(result: Any) -> Response:
    """Turn what an ``on_request`` handler returned into a :class:`Response`.

    What Quart's views may return works here too:

    - a :class:`Response`, as it is;
    - a Quart or Werkzeug response (``quart.jsonify(...)``, ``quart.Response``,
      ``werkzeug.Response``): its status, headers and whole body;
    - ``str`` as ``text/plain``, ``bytes`` as ``application/octet-stream``;
    - a tuple ``(body, status)``, ``(body, headers)`` or ``(body, status, headers)``,
      where *body* is any of these but a tuple;
    - anything else is encoded as JSON (dict, list, ``msgspec.Struct``, ...).

    Raises:
        TypeError: the value is none of these, or cannot be encoded as JSON.
    """
    if isinstance(result, tuple):
        return await _from_tuple(result)
    return await _from_body(result)


async def answer(result: Any, handler: Callable[..., Any]) -> Response:
    """:func:`to_response` of what *handler* returned, or 500 and a log line naming the
    handler when it returned something that is not an answer."""
    try:
        if isinstance(result, Response):  # the common answers, without another coroutine
            return result
        if isinstance(result, dict):
            return Response.json(result)
        return await to_response(result)
    except (TypeError, ValueError) as exc:
        name = getattr(handler, "__qualname__", None) or repr(handler)
        logger.error(
            "on_request handler %s (%s) returned a %s partydeco cannot answer with: %s",
            name, location(handler), type(result).__name__, exc,
        )  # fmt: skip
        return Response("Internal Server Error", 500)


async def _from_body(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (str, bytes)):
        return Response(result)
    if isinstance(result, WerkzeugResponse):
        return await _from_werkzeug(result)
    if result is None:
        raise TypeError("a response body cannot be None")
    return Response.json(result)


async def _from_werkzeug(result: WerkzeugResponse) -> Response:
    data = result.get_data()  # type: ignore[attr-defined]
    if inspect.isawaitable(data):  # Quart's responses read their body asynchronously
        data = await data
    headers = Headers([(k, v) for k, v in result.headers if k.lower() != "content-length"])
    return Response(bytes(data), result.status_code, headers)


async def _from_tuple(result: tuple[Any, ...]) -> Response:
    status: Any = None
    headers: Any = None
    if len(result) == 3:
        body, status, headers = result
    elif len(result) == 2:
        body, second = result
        if isinstance(second, int):
            status = second
        else:
            headers = second
    else:
        raise TypeError(
            f"a tuple of {len(result)} items; return (body, status), (body, headers) "
            "or (body, status, headers)"
        )
    if isinstance(body, tuple):
        raise TypeError("the body of a (body, status, headers) tuple cannot be a tuple")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise TypeError(f"the status must be an int, not {type(status).__name__}")
    response = await _from_body(body)
    if status is not None:
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), not {status!r}")
        response.status = status
    if headers is not None:
        response.headers.update(Headers(headers))
    return response
