"""The client address behind trusted proxies: X-Forwarded-For / Forwarded are read only
when the direct peer is trusted, and the right-most untrusted hop is the client."""

from __future__ import annotations

import httpx
import pytest

from partydeco.security.proxies import client_address, limit_key, networks
from tests.support import serve
from tests.support.security_kit import Seen, echo_app, open_ws, ws_status

TRUSTED = networks(["127.0.0.1", "10.0.0.0/8", "::1"])


async def test_trusted_peer_forwards_the_client_address() -> None:
    seen = Seen()
    app = echo_app(seen, max_connections_per_address=1)  # loopback is trusted by default
    async with serve(app) as base:
        a = await open_ws(base, headers={"X-Forwarded-For": "203.0.113.7"})
        b = await open_ws(base, headers={"X-Forwarded-For": "198.51.100.2"})
        # the limit counts the forwarded client, not the proxy
        assert await ws_status(base, headers={"X-Forwarded-For": "203.0.113.7"}) == 429
        await a.close()
        await b.close()
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"http://{base}/parties/main/r1", headers={"Forwarded": 'for="[2001:db8::1]:4711"'}
            )
            assert r.json() == {"addr": "2001:db8::1"}
    assert seen.addresses == ["203.0.113.7", "198.51.100.2"]


async def test_untrusted_peer_headers_are_ignored() -> None:
    seen = Seen()
    app = echo_app(seen, trusted_proxies=[], max_connections_per_address=1, limit_loopback=True)
    async with serve(app) as base:
        a = await open_ws(base, headers={"X-Forwarded-For": "203.0.113.7"})
        # a different claimed address does not get a second slot: the peer is the client
        assert await ws_status(base, headers={"X-Forwarded-For": "198.51.100.2"}) == 429
        await a.close()
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"http://{base}/parties/main/r1", headers={"X-Forwarded-For": "203.0.113.7"}
            )
            assert r.json() == {"addr": "127.0.0.1"}
    assert seen.addresses == ["127.0.0.1"]


async def test_a_trusted_network_elsewhere_does_not_trust_loopback() -> None:
    seen = Seen()
    app = echo_app(seen, trusted_proxies=["10.0.0.0/8"])
    async with serve(app) as base:
        ws = await open_ws(base, headers={"X-Forwarded-For": "203.0.113.7"})
        await ws.close()
    assert seen.addresses == ["127.0.0.1"]


async def test_spoofed_left_hops_do_not_change_the_client() -> None:
    seen = Seen()
    app = echo_app(seen, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    async with serve(app) as base:
        for header in ["1.2.3.4, 198.51.100.9, 10.0.0.5", "evil, 198.51.100.9"]:
            ws = await open_ws(base, headers={"X-Forwarded-For": header})
            await ws.close()
    assert seen.addresses == ["198.51.100.9", "198.51.100.9"]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("192.0.2.1", [(b"x-forwarded-for", b"203.0.113.7")], "192.0.2.1"),  # untrusted peer
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", [(b"x-forwarded-for", b"203.0.113.7")], "203.0.113.7"),
        ("127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7, 10.1.2.3")], "203.0.113.7"),
        ("127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.7")],
         "203.0.113.7"),
        ("127.0.0.1", [(b"x-forwarded-for", b"203.0.113.7:5555")], "203.0.113.7"),
        ("127.0.0.1", [(b"x-forwarded-for", b"10.0.0.1, 10.0.0.2")], "10.0.0.1"),  # all trusted
        ("127.0.0.1", [(b"x-forwarded-for", b"unknown")], "unknown"),
        ("127.0.0.1", [(b"forwarded", b"for=192.0.2.60;proto=https, for=10.0.0.9")], "192.0.2.60"),
        ("127.0.0.1", [(b"forwarded", b'For="[2001:db8:cafe::17]:4711"')], "2001:db8:cafe::17"),
        ("127.0.0.1", [(b"forwarded", b"for=_hidden"), (b"x-forwarded-for", b"1.1.1.1")],
         "_hidden"),  # Forwarded wins; an obfuscated hop is the client as it is
        ("::ffff:127.0.0.1", [(b"x-forwarded-for", b"203.0.113.7")], "203.0.113.7"),
        (None, [(b"x-forwarded-for", b"203.0.113.7")], None),
    ],
)  # fmt: skip
def test_client_address(
    peer: str | None, headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert client_address(peer, headers, TRUSTED) == expected


def test_limit_key_groups_ipv6_by_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.7") == "203.0.113.7"
    assert limit_key(None) == "unknown"
