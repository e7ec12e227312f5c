"""Room URLs built the way partysocket builds them (for the Python client and the test client).

The rules follow the JavaScript ``partysocket`` client so that a Python program and a browser
reach the same room with the same options::

    {scheme}://{host}/{base_path or prefix/party/room}[/{path}]?_pk={id}&{query}
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

__all__ = [
    "QueryValue",
    "RoomAddress",
    "encode_query",
    "is_local_host",
    "normalize_host",
]

#: A query parameter value. ``None`` drops the parameter; booleans are written ``true``/``false``.
QueryValue = str | int | float | bool | None

# Characters a path segment may hold unescaped (RFC 3986 "pchar" minus "/"), so that a room
# named "my room" becomes "my%20room", the same bytes a browser's WebSocket sends.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_PRIVATE_V4 = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
)


def normalize_host(host: str) -> str:
    """Strip a leading ``http(s)://`` or ``ws(s)://`` and trailing slashes from ``host``.

    >>> normalize_host("https://example.com/")
    'example.com'
    """
    for scheme in ("https://", "http://", "wss://", "ws://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
            break
    return host.rstrip("/")


def _hostname(host: str) -> str:
    """Return the host part of ``host[:port]``, without brackets for IPv6 literals."""
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end != -1 else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_local_host(host: str) -> bool:
    """Tell whether ``host`` is a development address that partysocket reaches without TLS.

    True for ``localhost``, loopback addresses (``127.0.0.0/8``, ``::1`` and the IPv4-mapped
    loopback) and the private IPv4 ranges ``10/8``, ``172.16/12`` and ``192.168/16``.
    partysocket itself only checks a few prefixes (``localhost:``, ``127.0.0.1:``, ...); this
    check accepts the same hosts and the whole ranges they stand for.
    """
    name = _hostname(normalize_host(host)).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return True
    return isinstance(ip, ipaddress.IPv4Address) and any(ip in net for net in _PRIVATE_V4)


def _query_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_query(pk: str | None, query: Mapping[str, QueryValue] | None) -> str:
    """Encode ``_pk`` (first, when given) and ``query`` as a form-encoded query string.

    ``None`` values are dropped, and a ``_pk`` key inside ``query`` is ignored: the id option
    always wins, as in partysocket.

    >>> encode_query("abc", {"token": "t 1", "skip": None})
    '_pk=abc&token=t+1'
    """
    pairs: list[tuple[str, str]] = []
    if pk is not None:
        pairs.append(("_pk", pk))
    for key, value in (query or {}).items():
        if value is None or (pk is not None and key == "_pk"):
            continue
        pairs.append((key, _query_text(value)))
    return urlencode(pairs)


def _check_segment(kind: str, value: str) -> None:
    if not value:
        raise ValueError(f"{kind} must not be empty")
    if "/" in value:
        raise ValueError(f"{kind} {value!r} must not contain '/'; it would change the route")


@dataclass(frozen=True)
class RoomAddress:
    """Where a room lives: everything in a room URL except the query string.

    Args:
        host: ``host[:port]``; a leading scheme and trailing ``/`` are stripped.
        room: the room id. Required unless ``base_path`` is given.
        party: the party name, ``"main"`` by default.
        prefix: the first path segment(s), ``"parties"`` by default.
        path: an extra sub-path after the room, without a leading ``/``.
        base_path: replaces ``prefix/party/room`` entirely (for custom routing).
        protocol: ``"ws"`` or ``"wss"`` to force a scheme; ``None`` picks ``ws`` for local
            hosts (see :func:`is_local_host`) and ``wss`` otherwise. For HTTP the matching
            ``http``/``https`` is used.

    Example::

        RoomAddress("localhost:1999", "lobby").ws_url("id1", {"token": "t"})
        # 'ws://localhost:1999/parties/main/lobby?_pk=id1&token=t'
    """

    host: str
    room: str | None = None
    party: str = "main"
    prefix: str = "parties"
    path: str | None = None
    base_path: str | None = None
    protocol: Literal["ws", "wss"] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", normalize_host(self.host))
        if not self.host:
            raise ValueError("host must not be empty")
        if self.protocol not in (None, "ws", "wss"):
            raise ValueError(f"protocol must be 'ws', 'wss' or None, not {self.protocol!r}")
        if self.path is not None and self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must not start with '/'")
        if self.base_path is None:
            if self.room is None:
                raise ValueError("give a room (or a base_path)")
            _check_segment("room", self.room)
            _check_segment("party", self.party)
            if not self.prefix.strip("/"):
                raise ValueError("prefix must not be empty")

    @property
    def secure(self) -> bool:
        """True when the connection uses TLS (``wss``/``https``)."""
        if self.protocol is not None:
            return self.protocol == "wss"
        return not is_local_host(self.host)

    @property
    def route(self) -> str:
        """The URL path, starting with ``/``, without the query string."""
        if self.base_path is not None:
            route = self.base_path.strip("/")
        else:
            assert self.room is not None  # checked in __post_init__
            segments: Iterable[str] = (
                self.prefix.strip("/"),
                quote(self.party, safe=_SEGMENT_SAFE),
                quote(self.room, safe=_SEGMENT_SAFE),
            )
            route = "/".join(segments)
        if self.path:
            route = f"{route}/{quote(self.path, safe=_SEGMENT_SAFE + '/')}"
        return f"/{route}"

    def room_url(self, *, http: bool = False) -> str:
        """The room URL without a query string, as ``ws(s)://`` or (``http=True``) ``http(s)://``."""
        scheme = ("https" if http else "wss") if self.secure else ("http" if http else "ws")
        return f"{scheme}://{self.host}{self.route}"

    def ws_url(self, pk: str, query: Mapping[str, QueryValue] | None = None) -> str:
        """The WebSocket URL: the room URL, then ``_pk`` first, then ``query``."""
        return f"{self.room_url()}?{encode_query(pk, query)}"

    def http_url(self, query: Mapping[str, QueryValue] | None = None) -> str:
        """The HTTP URL of the room, with ``query`` but no ``_pk`` (as ``PartySocket.fetch``)."""
        qs = encode_query(None, query)
        return f"{self.room_url(http=True)}?{qs}" if qs else self.room_url(http=True)
