"""The client's address when the server sits behind reverse proxies.

A proxy appends the address it received the request from to
``X-Forwarded-For`` (or to the standard ``Forwarded`` header). Everything to
the left of what a trusted proxy appended was written by the client and can be
anything, so the client is the right-most address that is not itself a
trusted proxy. The headers are read only when the direct peer is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "client_address", "is_loopback", "limit_key", "networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOPS = 32


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse IP addresses and CIDR networks (``"10.0.0.0/8"``, ``"::1"``)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _ip(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in trusted)


def _strip_port(hop: str) -> str:
    """``"[2001:db8::1]:4711"`` -> ``"2001:db8::1"``; ``"192.0.2.1:80"`` -> ``"192.0.2.1"``."""
    hop = hop.strip().strip('"').strip()
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _forwarded_hops(headers: Sequence[tuple[bytes, bytes]]) -> list[str] | None:
    """The ``for=`` hops of ``Forwarded``, else of ``X-Forwarded-For``; ``None`` if neither."""
    forwarded = [v for k, v in headers if k.lower() == b"forwarded"]
    if forwarded:
        hops = []
        for element in b",".join(forwarded).decode("latin-1").split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(_strip_port(value))
        return hops
    xff = [v for k, v in headers if k.lower() == b"x-forwarded-for"]
    if xff:
        text = b",".join(xff).decode("latin-1")
        return [_strip_port(hop) for hop in text.split(",") if hop.strip()]
    return None


def client_address(
    peer: str | None, headers: Sequence[tuple[bytes, bytes]], trusted: Sequence[Network]
) -> str | None:
    """The client's address: the peer's, or from proxy headers if the peer is trusted.

    Args:
        peer: the address of the direct TCP peer (``None`` when unknown).
        headers: the raw ASGI request headers.
        trusted: the trusted proxies' networks.

    Returns:
        The right-most hop that is not a trusted proxy. A hop that is not an IP
        address (``unknown``, an obfuscated name) is returned as it is: it was
        written by something untrusted. When every hop is trusted, the
        left-most one.
    """
    if not trusted or not _trusted(_ip(peer) if peer else None, trusted):
        return peer
    hops = _forwarded_hops(headers)
    if not hops:
        return peer
    window = hops[-MAX_HOPS:]
    for hop in reversed(window):
        address = _ip(hop)
        if address is None:
            return hop[:64] or "unknown"
        if not _trusted(address, trusted):
            return str(address)
    return str(_ip(window[0]))


def is_loopback(address: str | None) -> bool:
    """Whether *address* is a loopback address (127.0.0.0/8 or ::1)."""
    ip = _ip(address) if address is not None else None
    return ip is not None and ip.is_loopback


def limit_key(address: str | None) -> str:
    """The key the per-address limits count under: the address, or its /64 for IPv6
    (one subscriber usually holds a whole /64)."""
    if address is None:
        return "unknown"
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip) if ip is not None else address
