"""The client's address when the server sits behind reverse proxies.

A proxy appends the address it received the request from to one header:
``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``, Caddy, Traefik,
HAProxy's ``option forwardfor``) or the standard ``Forwarded``. partydeco reads
exactly one of them, the one ``forwarded_header`` names; the other is ignored,
since a proxy that sets one usually passes the client's own copy of the other
through untouched. Everything to the left of what a trusted proxy appended was
written by the client and can be anything, so the client is the right-most
address that is not itself a trusted proxy. The header is read only when the
direct peer is trusted, and a hop that is not an IP address names no client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "FORWARDED_HEADERS",
    "Client",
    "Network",
    "client_address",
    "forwarded_client",
    "is_loopback",
    "limit_key",
    "networks",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The headers ``forwarded_header`` may name, lower case.
FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")

MAX_HOPS = 32

# Addresses parsed, and the keys and loopback answers derived from them, are kept for
# the addresses seen last: a handshake needs them several times, most clients come back.
_REMEMBERED = 4096


class Client(NamedTuple):
    """Who sent a request.

    Attributes:
        address: the client's IP address, ``None`` when it is unknown (no peer, or a
            forwarded hop that is not an address).
        forwarded: whether the address came from a proxy header rather than from
            the TCP peer. A forwarded address is never exempt from per-address
            limits, whatever it says.
    """

    address: str | None
    forwarded: bool


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse IP addresses and CIDR networks (``"10.0.0.0/8"``, ``"::1"``)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


#: Longer than any IP address in text, zone included: never parsed nor remembered (a
#: forwarded header's hops are whatever a client wrote).
_LONGEST_ADDRESS = 64


def _ip(text: str) -> Address | None:
    return None if len(text) > _LONGEST_ADDRESS else _parse_ip(text)


@lru_cache(maxsize=_REMEMBERED)
def _parse_ip(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:  # "fe80::1%eth0": a zone is no part of who it is
            return ipaddress.IPv6Address(str(address).partition("%")[0])
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


def _hops(values: list[bytes], name: bytes) -> list[str]:
    """The hops in the *values* of header *name* (``for=`` values of ``Forwarded``),
    oldest first."""
    if not values:
        return []
    text = b",".join(values).decode("latin-1")
    if name == b"x-forwarded-for":
        return [_strip_port(hop) for hop in text.split(",")]
    hops = []
    for element in text.split(","):
        found = ""
        for pair in element.split(";"):
            key, _, value = pair.strip().partition("=")
            if key.lower() == "for":
                found = _strip_port(value)
        hops.append(found)  # an element without for= is a hop we cannot name
    return hops


def client_address(
    peer: str | None,
    headers: Sequence[tuple[bytes, bytes]],
    trusted: Sequence[Network],
    header: str = "x-forwarded-for",
) -> Client:
    """The client of a request: its TCP peer, or what trusted proxies say it is.

    Args:
        peer: the address of the direct TCP peer (``None`` when unknown).
        headers: the raw ASGI request headers.
        trusted: the trusted proxies' networks.
        header: the one header the proxies set, ``"x-forwarded-for"`` or
            ``"forwarded"`` (any case); the other is ignored.

    Returns:
        The peer when it is not a trusted proxy or the header is absent.
        Otherwise the right-most hop that is not a trusted proxy, or the
        left-most one when every hop is trusted; ``None`` as the address when
        that hop is not an IP address (``unknown``, an obfuscated name,
        garbage): something untrusted wrote it.
    """
    if not trusted:
        return _direct(peer)
    name = header.lower().encode("latin-1")
    size = len(name)
    values: list[bytes] = []
    for k, v in headers:  # a loop: a comprehension is one more call per request
        if len(k) == size and k.lower() == name:
            values.append(v)
    return forwarded_client(peer, values, trusted, name)


def forwarded_client(
    peer: str | None, values: list[bytes], trusted: Sequence[Network], name: bytes
) -> Client:
    """:func:`client_address`, from the *values* of the forwarded header *name* (lower
    case) that the caller found in the headers."""
    if not trusted:
        return _direct(peer)
    hops = _hops(values, name)
    if not hops or not _trusted(_ip(peer) if peer else None, trusted):
        return _direct(peer)
    window = hops[-MAX_HOPS:]
    for hop in reversed(window):
        address = _ip(hop)
        if address is None or not _trusted(address, trusted):
            return Client(str(address) if address is not None else None, True)
    first = _ip(window[0])
    return Client(str(first) if first is not None else None, True)


@lru_cache(maxsize=_REMEMBERED)
def _direct(peer: str | None) -> Client:
    """The client that is its TCP peer (one tuple per address, not one per request)."""
    return Client(peer, False)


@lru_cache(maxsize=_REMEMBERED)
def is_loopback(address: str | None) -> bool:
    """Whether *address* is a loopback address (127.0.0.0/8 or ::1)."""
    ip = _ip(address) if address is not None else None
    return ip is not None and ip.is_loopback


@lru_cache(maxsize=_REMEMBERED)
def limit_key(address: str | None) -> str:
    """The key the per-address limits count under: the address, or its /64 for IPv6
    (one subscriber usually holds a whole /64); ``"unknown"`` without an address."""
    if address is None:
        return "unknown"
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip) if ip is not None else "unknown"
