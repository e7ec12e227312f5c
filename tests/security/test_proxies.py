"""The client address behind trusted proxies: one header chain only (``forwarded_header``),
read only when the direct peer is trusted; the right-most untrusted hop is the client; a
forwarded address is never loopback-exempt and must be an address.

The end-to-end tests put a small reverse proxy, written here, between real clients and a
real server. Clients connect from 127.0.0.5 (a loopback address that is not a trusted
proxy), so the proxy has a client address to append that differs from its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from partydeco import App
from partydeco.security.proxies import Client, client_address, limit_key, networks
from tests.support import serve
from tests.support.security_kit import Seen, echo_app, open_ws, ws_status

TRUSTED = networks(["127.0.0.1", "10.0.0.0/8", "::1"])
CLIENT_IP = "127.0.0.5"

Mode = Literal["x-forwarded-for", "forwarded", "pass-through"]


class ReverseProxy:
    """A reverse proxy on a loopback port in front of *upstream*.

    ``x-forwarded-for`` appends the client's address as nginx's
    ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`` does, passing every
    other header (a ``Forwarded`` the client wrote included) through untouched;
    ``forwarded`` does the same with RFC 7239's ``Forwarded: for=``; ``pass-through``
    is a misconfigured proxy that adds nothing. After the request head it relays bytes
    both ways, so WebSocket upgrades work.
    """

    def __init__(self, upstream: str, mode: Mode) -> None:
        self.host, port = upstream.rsplit(":", 1)
        self.port = int(port)
        self.mode = mode
        self.tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await server.wait_closed()

    def _rewrite(self, head: bytes, peer: str) -> bytes:
        request_line, *headers = head.decode("latin-1").split("\r\n")[:-2]
        if self.mode != "pass-through":
            name = "X-Forwarded-For" if self.mode == "x-forwarded-for" else "Forwarded"
            hop = peer if self.mode == "x-forwarded-for" else f"for={peer}"
            theirs = [h for h in headers if h.lower().startswith(name.lower() + ":")]
            headers = [h for h in headers if h not in theirs]
            values = [h.split(":", 1)[1].strip() for h in theirs]
            headers.append(f"{name}: {', '.join([*values, hop])}")
        return "\r\n".join([request_line, *headers, "", ""]).encode("latin-1")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
            up_writer.write(self._rewrite(head, writer.get_extra_info("peername")[0]))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def handshake(base: str, headers: dict[str, str] | None = None) -> int:
    """One WebSocket handshake from CLIENT_IP: 101 (then closed) or the refusal status."""
    try:
        ws = await connect(
            f"ws://{base}/parties/main/r1",
            additional_headers=headers or {},
            local_addr=(CLIENT_IP, 0),
            open_timeout=5,
        )
    except InvalidStatus as exc:
        return exc.response.status_code
    assert await asyncio.wait_for(ws.recv(), 5) == "hello"
    await ws.close()
    return 101


async def http_addr(base: str, headers: dict[str, str]) -> object:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_IP)
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get(f"http://{base}/parties/main/r1", headers=headers)
        return response.json()["addr"]


async def test_a_forwarded_header_from_the_client_is_ignored_behind_an_xff_proxy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's first finding: nginx appends X-Forwarded-For and passes the client's own
    ``Forwarded: for=127.0.0.1`` through; that must neither name the client nor make it
    loopback, exempt from the limits."""
    seen = Seen()
    app = echo_app(seen, handshake_rate=0.01, handshake_burst=10)
    caplog.set_level(logging.INFO, logger="partydeco.access")
    async with serve(app) as base, ReverseProxy(base, "x-forwarded-for").running() as proxy:
        forged = {"Forwarded": "for=127.0.0.1"}
        statuses = [await handshake(proxy, forged) for _ in range(60)]
        assert await http_addr(proxy, {"Forwarded": "for=_x9"}) == CLIENT_IP
    assert statuses.count(101) == 10 and statuses.count(429) == 50
    assert set(seen.addresses) == {CLIENT_IP}
    access = [r.getMessage() for r in caplog.records if r.name == "partydeco.access"]
    assert access and all(line.startswith(CLIENT_IP) for line in access), access[:3]


async def test_a_forwarded_loopback_address_is_not_exempt() -> None:
    seen = Seen()
    app = echo_app(seen, max_connections_per_address=2)
    async with serve(app) as base, ReverseProxy(base, "x-forwarded-for").running() as proxy:
        url = f"ws://{proxy}/parties/main/r1"
        async with (
            connect(url, local_addr=(CLIENT_IP, 0)) as a,
            connect(url, local_addr=(CLIENT_IP, 0)) as b,
        ):
            await a.recv()
            await b.recv()
            # 127.0.0.5 is loopback, but a header said so: it is counted like any client
            assert await handshake(proxy) == 429
            # the client's own X-Forwarded-For is to the left of what the proxy appended
            assert await handshake(proxy, {"X-Forwarded-For": "127.0.0.1"}) == 429
        # the proxy's own peer address, straight from TCP, is still exempt
        assert await ws_status(base) == 101


async def test_a_hop_that_is_not_an_address_names_no_client() -> None:
    """A misconfigured proxy passes the client's header through: its garbage is not an
    address, so ``remote_addr`` is ``None`` and the client is counted as ``unknown``."""
    seen = Seen()
    app = echo_app(seen, max_connections_per_address=1)
    async with serve(app) as base, ReverseProxy(base, "pass-through").running() as proxy:
        assert await http_addr(proxy, {"X-Forwarded-For": "_x9"}) is None
        async with connect(
            f"ws://{proxy}/parties/main/r1", additional_headers={"X-Forwarded-For": "evil"}
        ) as ws:
            await ws.recv()
            assert await handshake(proxy, {"X-Forwarded-For": "other garbage"}) == 429
    assert seen.addresses == [None]


async def test_forwarded_header_chooses_rfc_7239() -> None:
    seen = Seen()
    app = echo_app(seen, forwarded_header="Forwarded", max_connections_per_address=1)
    async with serve(app) as base, ReverseProxy(base, "forwarded").running() as proxy:
        assert await http_addr(proxy, {"X-Forwarded-For": "203.0.113.9"}) == CLIENT_IP
        assert await http_addr(proxy, {"Forwarded": "for=198.51.100.1"}) == CLIENT_IP
        assert await handshake(proxy, {"X-Forwarded-For": "203.0.113.9"}) == 101
    assert seen.addresses == [CLIENT_IP]


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
                f"http://{base}/parties/main/r1", headers={"X-Forwarded-For": "[2001:db8::1]:4711"}
            )
            assert r.json() == {"addr": "2001:db8::1"}
            # the default header is X-Forwarded-For: Forwarded is not read at all
            forwarded = {"Forwarded": "for=1.2.3.4"}
            r = await http.get(f"http://{base}/parties/main/r1", headers=forwarded)
            assert r.json() == {"addr": "127.0.0.1"}
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


XFF, FWD = b"x-forwarded-for", b"forwarded"


@pytest.mark.parametrize(
    ("peer", "headers", "header", "expected"),
    [
        ("192.0.2.1", [(XFF, b"203.0.113.7")], "x-forwarded-for", ("192.0.2.1", False)),
        ("127.0.0.1", [], "x-forwarded-for", ("127.0.0.1", False)),
        ("127.0.0.1", [(XFF, b"203.0.113.7")], "x-forwarded-for", ("203.0.113.7", True)),
        ("127.0.0.1", [(XFF, b"6.6.6.6, 203.0.113.7, 10.1.2.3")], "x-forwarded-for",
         ("203.0.113.7", True)),
        ("127.0.0.1", [(XFF, b"6.6.6.6"), (XFF, b"203.0.113.7")], "x-forwarded-for",
         ("203.0.113.7", True)),
        ("127.0.0.1", [(XFF, b"203.0.113.7:5555")], "x-forwarded-for", ("203.0.113.7", True)),
        ("127.0.0.1", [(XFF, b"10.0.0.1, 10.0.0.2")], "x-forwarded-for", ("10.0.0.1", True)),
        ("127.0.0.1", [(XFF, b"unknown")], "x-forwarded-for", (None, True)),
        ("127.0.0.1", [(XFF, b"203.0.113.7, ")], "x-forwarded-for", (None, True)),
        ("127.0.0.1", [(XFF, b"127.0.0.1")], "x-forwarded-for", ("127.0.0.1", True)),
        ("127.0.0.1", [(FWD, b"for=127.0.0.1"), (XFF, b"203.0.113.7")], "x-forwarded-for",
         ("203.0.113.7", True)),  # the other header is ignored
        ("127.0.0.1", [(FWD, b"for=127.0.0.1")], "x-forwarded-for", ("127.0.0.1", False)),
        ("127.0.0.1", [(FWD, b"for=192.0.2.60;proto=https, for=10.0.0.9")], "Forwarded",
         ("192.0.2.60", True)),
        ("127.0.0.1", [(FWD, b'For="[2001:db8:cafe::17]:4711"')], "forwarded",
         ("2001:db8:cafe::17", True)),
        ("127.0.0.1", [(FWD, b"for=_hidden"), (XFF, b"1.1.1.1")], "forwarded", (None, True)),
        ("127.0.0.1", [(FWD, b"proto=https")], "forwarded", (None, True)),  # no for=
        ("127.0.0.1", [(XFF, b"1.1.1.1")], "forwarded", ("127.0.0.1", False)),
        ("::ffff:127.0.0.1", [(XFF, b"203.0.113.7")], "x-forwarded-for", ("203.0.113.7", True)),
        (None, [(XFF, b"203.0.113.7")], "x-forwarded-for", (None, False)),
    ],
)  # fmt: skip
def test_client_address(
    peer: str | None,
    headers: list[tuple[bytes, bytes]],
    header: str,
    expected: tuple[str | None, bool],
) -> None:
    assert client_address(peer, headers, TRUSTED, header) == Client(*expected)


def test_limit_key_groups_ipv6_by_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.7") == "203.0.113.7"
    assert limit_key(None) == "unknown"
    assert limit_key("not an address") == "unknown"


@pytest.mark.parametrize("value", ["X-Real-IP", "", None, ["Forwarded"]])
def test_forwarded_header_must_be_one_of_the_two(value: object) -> None:
    with pytest.raises(ValueError, match="forwarded_header must be 'X-Forwarded-For' or"):
        App(forwarded_header=value)


def test_long_forwarded_hops_are_not_addresses_and_not_remembered() -> None:
    """Parsed addresses are remembered (an LRU of 4,096); a hop is whatever a client wrote,
    so one longer than any address is refused without being parsed or kept."""
    from partydeco.security import proxies

    long_hops = [f"{i}.{'9' * 10_000}" for i in range(50)]
    before = proxies._parse_ip.cache_info().currsize
    for hop in long_hops:
        headers = [(XFF, f"{hop}, 203.0.113.7".encode())]
        assert client_address("127.0.0.1", headers, TRUSTED, "x-forwarded-for") == Client(
            "203.0.113.7", True
        )
        assert client_address("127.0.0.1", [(XFF, hop.encode())], TRUSTED, "x-forwarded-for") == (
            Client(None, True)
        )
    assert proxies._parse_ip.cache_info().currsize - before <= 2  # 127.0.0.1, 203.0.113.7
