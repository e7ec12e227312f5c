"""The request that hooks and handlers see, for WebSocket upgrades and HTTP alike."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from werkzeug.datastructures import Headers, MultiDict

from .errors import BodyTooLargeError
from .types import Receive

if TYPE_CHECKING:
    from .types import Refresher

__all__ = ["Request"]


def _query_pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``, without its per-pair unquoting
    when nothing in *text* is escaped (the usual ``?_pk=...&token=...``)."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    pairs = []
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _raw_pair(name: str, value: str) -> tuple[bytes, bytes] | None:
    """*name* and *value* as a raw header, or None when latin-1 cannot hold them
    (only :class:`Headers` can).

    Raises:
        ValueError: *value* holds a newline.
    """
    text = value if isinstance(value, str) else str(value)
    if "\r" in text or "\n" in text:
        raise ValueError("Header values must not contain newline characters.")
    try:
        return name.encode("latin-1"), text.encode("latin-1")
    except UnicodeEncodeError:
        return None


class Request:
    """An incoming WebSocket upgrade or HTTP request.

    ``before_connect`` and ``before_request`` hooks may change :attr:`headers`
    (for example set ``X-User-ID``) and return the request; the room then sees
    the changed request as ``ctx.request`` in ``on_connect`` or as the request
    passed to ``on_request``.

    Attributes:
        method: ``"GET"`` for a WebSocket upgrade, else the HTTP method.
        path: the decoded URL path.
        raw_path: the URL path as sent, still percent-encoded.
        query_string: the raw query string.
        scheme: ``http``, ``https``, ``ws`` or ``wss``.
        remote_addr: the client's address, if the server knows it (behind a
            trusted proxy, the address the proxy reports; see ``trusted_proxies``).
        is_websocket: whether this is a WebSocket upgrade.
        expires_at: when the credentials of this request expire, in seconds
            since the epoch (a JWT's ``exp``), or ``None``. A ``before_connect``
            hook sets it (the ready-made ``partydeco.auth`` hooks do); the socket
            is then closed with 3005 once it passes, unless refreshed. Only server
            code can set it: no header or parameter maps to it.
        token_refresher: ``await token_refresher(token) -> expires_at`` checks a
            token sent over the open socket to extend :attr:`expires_at` (see
            ``token_refresh``); it raises to refuse the token. Set by the hook that
            set ``expires_at``.
        principal: who the hooks authenticated the client as (a user id), or
            ``None``. A hook sets it (the ready-made ``partydeco.auth`` hooks set the
            token's subject), or sets the ``principal_header`` (``X-User-ID``): the
            client's own value of that header is removed before the hooks run, so
            only a hook can. Two sockets with one connection id may replace each
            other only when their principal is the same.
    """

    __slots__ = (
        "_args",
        "_body",
        "_cookies",
        "_headers",
        "_host",
        "_max_body",
        "_raw_headers",
        "_receive",
        "expires_at",
        "is_websocket",
        "method",
        "path",
        "principal",
        "query_string",
        "raw_path",
        "remote_addr",
        "scheme",
        "token_refresher",
    )

    def __init__(
        self,
        method: str,
        path: str,
        *,
        raw_path: str | None = None,
        query_string: bytes = b"",
        headers: Headers | list[tuple[bytes, bytes]] | None = None,
        scheme: str = "http",
        remote_addr: str | None = None,
        is_websocket: bool = False,
        body: bytes | None = None,
        receive: Receive | None = None,
        max_body_size: int = 1 << 20,
    ) -> None:
        self.method = method
        self.path = path
        self.raw_path = raw_path if raw_path is not None else path
        self.query_string = query_string
        self.scheme = scheme
        self.remote_addr = remote_addr
        self.is_websocket = is_websocket
        self._headers: Headers | None = headers if isinstance(headers, Headers) else None
        self._raw_headers = headers if isinstance(headers, list) else []
        self._args: MultiDict[str, str] | None = None
        self._cookies: dict[str, str] | None = None
        self._body = body if body is not None or receive is not None else b""
        self._receive = receive
        self._max_body = max_body_size
        self._host: str | None = None
        self.expires_at: float | None = None
        self.token_refresher: Refresher | None = None
        self.principal: str | None = None

    @classmethod
    def from_scope(
        cls,
        scope: Mapping[str, Any],
        receive: Receive | None = None,
        max_body_size: int = 1 << 20,
        drop_header: bytes | None = None,
    ) -> Request:
        """Build a request from an ASGI ``http`` or ``websocket`` scope.

        *drop_header* (a lower-case name) is left out of the headers: the principal
        header, which only hooks may set.
        """
        is_ws = scope["type"] == "websocket"
        raw = scope.get("raw_path")
        client = scope.get("client")
        kept = list(scope.get("headers", ()))
        if drop_header is not None:
            for pair in kept:
                if pair[0] == drop_header:  # rarely sent: filtered only when it is
                    kept = [h for h in kept if h[0] != drop_header]
                    break
        if cls.__init__ is not Request.__init__:  # a subclass's own __init__ runs
            return cls(
                "GET" if is_ws else scope["method"],
                scope["path"],
                raw_path=raw.decode("latin-1") if raw else None,
                query_string=scope.get("query_string", b""),
                headers=kept,
                scheme=scope.get("scheme", "ws" if is_ws else "http"),
                remote_addr=client[0] if client else None,
                is_websocket=is_ws,
                receive=None if is_ws else receive,
                max_body_size=max_body_size,
            )
        # what ``__init__`` sets, without its keyword parsing and checks
        self = cls.__new__(cls)
        self.method = "GET" if is_ws else scope["method"]
        self.path = path = scope["path"]
        self.raw_path = raw.decode("latin-1") if raw else path
        self.query_string = scope.get("query_string", b"")
        self.scheme = scope.get("scheme", "ws" if is_ws else "http")
        self.remote_addr = client[0] if client else None
        self.is_websocket = is_ws
        self._headers = None
        self._raw_headers = kept
        self._args = None
        self._cookies = None
        self._receive = None if is_ws else receive
        self._body = None if self._receive is not None else b""
        self._max_body = max_body_size
        self._host = None
        self.expires_at = None
        self.token_refresher = None
        self.principal = None
        return self

    @property
    def headers(self) -> Headers:
        """The request headers (case-insensitive and mutable)."""
        if self._headers is None:
            self._headers = Headers(
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw_headers]
            )
        return self._headers

    @property
    def args(self) -> MultiDict[str, str]:
        """The query parameters."""
        if self._args is None:
            self._args = MultiDict(_query_pairs(self.query_string.decode("latin-1")))
        return self._args

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies sent with the request."""
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            for value in self.headers.getlist("Cookie"):
                try:
                    jar.load(value)
                except Exception:  # a malformed cookie header is ignored, as browsers do
                    continue
            self._cookies = {key: morsel.value for key, morsel in jar.items()}
        return self._cookies

    @property
    def host(self) -> str:
        """The ``Host`` header (or ``:authority``), empty when absent."""
        if self._host is None:
            self._host = self.header("Host") or ""
        return self._host

    def header(self, name: str) -> str | None:
        """The value of header *name*, or ``None``; it does not build :attr:`headers`,
        which most handlers never read."""
        if self._headers is not None:  # not ``get``: werkzeug raises and catches a miss
            values = self._headers.getlist(name)
            return values[0] if values else None
        key = name.lower().encode("latin-1")
        for k, v in self._raw_headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header *name*, in order (``headers.getlist(name)``), without
        building :attr:`headers`."""
        if self._headers is not None:
            return self._headers.getlist(name)
        key = name.lower().encode("latin-1")
        values = []
        for k, v in self._raw_headers:  # a loop: a comprehension is one more call
            if k.lower() == key:
                values.append(v.decode("latin-1"))
        return values

    def set_header(self, name: str, value: str) -> None:
        """``headers[name] = value``: replace every value of header *name* (the
        client's too) with *value*, without building :attr:`headers`.

        Raises:
            ValueError: *value* holds a newline.
        """
        if self._headers is None:
            pair = _raw_pair(name, value)
            if pair is not None:
                key = pair[0].lower()
                raw = self._raw_headers
                for i, item in enumerate(raw):
                    if item[0].lower() == key:  # the first one is replaced where it stood
                        kept = raw[:i]
                        kept.append(pair)
                        kept.extend(h for h in raw[i + 1 :] if h[0].lower() != key)
                        self._raw_headers = kept
                        return
                self._raw_headers = [*raw, pair]
                return
        self.headers[name] = value

    def add_header(self, name: str, value: str) -> None:
        """``headers.add(name, value)``: add a value of header *name* after those it
        has, without building :attr:`headers`.

        Raises:
            ValueError: *value* holds a newline.
        """
        if self._headers is None:
            pair = _raw_pair(name, value)
            if pair is not None:
                self._raw_headers = [*self._raw_headers, pair]
                return
        self.headers.add(name, value)

    def remove_header(self, name: str) -> None:
        """``headers.remove(name)``: drop every value of header *name*, without
        building :attr:`headers`."""
        try:
            key = name.lower().encode("latin-1")
        except UnicodeEncodeError:  # no header the client sent has such a name
            key = None
        if self._headers is not None or key is None:
            self.headers.remove(name)
            return
        raw = self._raw_headers
        for pair in raw:
            if pair[0].lower() == key:
                self._raw_headers = [pair for pair in raw if pair[0].lower() != key]
                return

    @property
    def url(self) -> str:
        """The full URL, query string included."""
        url = f"{self.scheme}://{self.host}{self.raw_path}"
        if self.query_string:
            url += "?" + self.query_string.decode("latin-1")
        return url

    async def body(self) -> bytes:
        """Read the whole request body (empty for a WebSocket upgrade).

        Raises:
            BodyTooLargeError: the body is larger than the app's ``max_body_size``;
                partydeco answers such requests with ``413``.
        """
        if self._body is None:
            assert self._receive is not None
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await self._receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max_body:
                    raise BodyTooLargeError(self._max_body)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """Decode the body as JSON.

        Raises:
            msgspec.DecodeError: the body is not valid JSON.
        """
        return msgspec.json.decode(await self.body())

    async def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes are replaced)."""
        return (await self.body()).decode("utf-8", "replace")

    def copy(self) -> Request:
        """A copy whose headers can be changed without touching this request."""
        clone = copy.copy(self)
        if self._headers is None:
            clone._raw_headers = list(self._raw_headers)
        else:
            clone._headers = self._headers.copy()
        clone._args = None if self._args is None else self._args.copy()
        return clone

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"
