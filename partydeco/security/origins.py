"""Which browser origins may talk to a party, and the CORS answers for them.

Browsers put an ``Origin`` header on every WebSocket upgrade and on
cross-origin HTTP requests; a page on another site cannot forge it. Checking
it stops cross-site WebSocket hijacking: without the check, any page a
signed-in user visits could open a socket to the app with the user's cookies.

Matching is exact on scheme, host and port, after parsing: no substring or
suffix tests, so ``https://example.com.evil.org``, ``https://evil-example.com``
and ``https://example.com@evil.org`` never pass for ``https://example.com``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DEFAULT_ORIGINS", "Origin", "OriginPolicy", "cors_preflight_headers", "parse_origin"]

#: What ``allowed_origins=None`` means: fine for development, too loose for production.
DEFAULT_ORIGINS = ("same-host", "localhost")

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LOCALHOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# scheme://host[:port], nothing else: no userinfo, path, query or fragment.
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]{0,31})://"
    r"(?P<host>\[[0-9a-f:.]{2,45}\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_HOST = re.compile(
    r"(?P<host>\[[0-9a-f:.]{2,45}\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::(?P<port>[0-9]{1,5}))?"
)

#: ``(scheme, host, port)``, lower case; the port is the scheme's default when absent
#: (``None`` for a scheme without one).
Origin = tuple[str, str, int | None]


def parse_origin(value: str) -> Origin | None:
    """Parse a serialized origin such as ``https://example.com:8443``; ``None`` if malformed."""
    match = _ORIGIN.fullmatch(value.strip().lower())
    if match is None:
        return None
    scheme = match["scheme"]
    port = _port(match["port"])
    if port == -1:
        return None
    return scheme, match["host"], port if port is not None else _DEFAULT_PORTS.get(scheme)


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    port = int(text)
    return port if 0 < port < 65536 else -1


class OriginPolicy:
    """A compiled ``allowed_origins`` list.

    Args:
        entries: origins and keywords as described for
            :attr:`partydeco.Config.allowed_origins`.
        require_origin: whether a request without ``Origin`` is refused.

    Raises:
        ValueError: an entry is not a valid origin, wildcard or keyword.
    """

    __slots__ = ("_any", "_exact", "_localhost", "_null", "_same_host", "_wildcards", "require")

    def __init__(self, entries: Iterable[str] = DEFAULT_ORIGINS, require_origin: bool = False):
        self.require = require_origin
        self._any = self._null = self._same_host = self._localhost = False
        self._exact: set[Origin] = set()
        # (scheme, parent domain, port): "https://*.example.com" matches a.example.com
        self._wildcards: list[Origin] = []
        for entry in entries:
            text = entry.strip().lower()
            if text == "*":
                self._any = True
            elif text == "null":
                self._null = True
            elif text == "same-host":
                self._same_host = True
            elif text == "localhost":
                self._localhost = True
            elif "://*." in text:
                scheme, _, rest = text.partition("://*.")
                parsed = parse_origin(f"{scheme}://{rest}")
                if parsed is None or parsed[1].startswith("["):
                    raise ValueError(_bad(entry))
                self._wildcards.append(parsed)
            else:
                parsed = parse_origin(text)
                if parsed is None:
                    raise ValueError(_bad(entry))
                self._exact.add(parsed)

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this ``Origin`` (``None``: absent) and ``Host`` may pass."""
        if origin is None:
            return not self.require
        if self._any:
            return True
        if origin.strip().lower() == "null":
            return self._null
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self._exact:
            return True
        scheme, name, port = parsed
        if self._localhost and name in _LOCALHOSTS and scheme in ("http", "https"):
            return True
        if self._same_host and host is not None and _same_host(parsed, host):
            return True
        for w_scheme, parent, w_port in self._wildcards:
            if (
                scheme == w_scheme
                and port == w_port
                and name.endswith("." + parent)
                and len(name) > len(parent) + 1
            ):
                return True
        return False


def _same_host(origin: Origin, host_header: str) -> bool:
    match = _HOST.fullmatch(host_header.strip().lower())
    if match is None:
        return False
    scheme, name, port = origin
    if match["host"] != name:
        return False
    host_port = _port(match["port"])
    if host_port is None:  # Host without a port: the origin must be on its scheme's default
        return port == _DEFAULT_PORTS.get(scheme)
    return host_port == port


def _bad(entry: str) -> str:
    return (
        f"allowed_origins entry {entry!r} is not an origin: use 'https://host[:port]', "
        "'https://*.domain', '*', 'null', 'same-host' or 'localhost'"
    )


def cors_preflight_headers(
    origin: str, request_headers: str | None, max_age: int
) -> list[tuple[str, str]]:
    """Headers answering an allowed CORS preflight from *origin*."""
    headers = [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("Access-Control-Max-Age", str(max_age)),
        ("Vary", "Origin"),
    ]
    if request_headers:
        # echo the requested names back, if they look like header names
        names = [n.strip() for n in request_headers.split(",") if n.strip()]
        if len(names) <= 32 and all(_TOKEN.fullmatch(n) for n in names):
            headers.append(("Access-Control-Allow-Headers", ", ".join(names)))
    return headers


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
