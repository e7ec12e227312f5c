"""URL building of the Python client, checked against partysocket's rules."""

from __future__ import annotations

import pytest

from partydeco.client import RoomAddress, is_local_host
from partydeco.client.url import encode_query, normalize_host


@pytest.mark.parametrize(
    "host",
    [
        "localhost:1999",
        "localhost",
        "127.0.0.1:8000",
        "127.1.2.3:80",
        "[::1]:1999",
        "[::ffff:7f00:1]:1999",
        "10.1.2.3:1999",
        "172.16.0.1:1999",
        "172.31.255.255",
        "192.168.1.20:1999",
        "app.localhost:1999",
    ],
)
def test_local_hosts_use_plain_ws(host: str) -> None:
    assert is_local_host(host)
    assert RoomAddress(host, "r").room_url().startswith("ws://")
    assert RoomAddress(host, "r").room_url(http=True).startswith("http://")


@pytest.mark.parametrize(
    "host",
    ["example.com", "my-app.user.partykit.dev", "172.32.0.1:1999", "8.8.8.8", "[2001:db8::1]"],
)
def test_other_hosts_use_tls(host: str) -> None:
    assert not is_local_host(host)
    assert RoomAddress(host, "r").room_url().startswith("wss://")
    assert RoomAddress(host, "r").room_url(http=True).startswith("https://")


def test_explicit_protocol_wins() -> None:
    assert (
        RoomAddress("example.com", "r", protocol="ws").room_url()
        == "ws://example.com/parties/main/r"
    )
    assert RoomAddress("localhost:1", "r", protocol="wss").room_url(http=True) == (
        "https://localhost:1/parties/main/r"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.com/", "example.com"),
        ("http://localhost:1999", "localhost:1999"),
        ("wss://example.com//", "example.com"),
        ("WS://Example.com", "Example.com"),
        ("example.com", "example.com"),
    ],
)
def test_host_scheme_and_slashes_stripped(given: str, expected: str) -> None:
    assert normalize_host(given) == expected
    assert RoomAddress(given, "r").host == expected


def test_full_url_shape() -> None:
    address = RoomAddress("localhost:1999", "lobby", party="chat", prefix="rooms", path="a/b")
    url = address.ws_url(
        "id-1", {"token": "t 1&x", "n": 2, "flag": True, "off": False, "gone": None}
    )
    assert url == (
        "ws://localhost:1999/rooms/chat/lobby/a/b?_pk=id-1&token=t+1%26x&n=2&flag=true&off=false"
    )


def test_defaults_party_main_prefix_parties() -> None:
    assert (
        RoomAddress("localhost:1999", "r").ws_url("x") == "ws://localhost:1999/parties/main/r?_pk=x"
    )


def test_pk_comes_first_and_query_cannot_override_it() -> None:
    assert encode_query("mine", {"a": "1", "_pk": "theirs"}) == "_pk=mine&a=1"


def test_base_path_replaces_prefix_party_room() -> None:
    address = RoomAddress("localhost:1999", base_path="/custom/route", path="x")
    assert address.room_url() == "ws://localhost:1999/custom/route/x"
    # a room is then optional, and ignored if given
    assert RoomAddress("h.dev", "r", base_path="b").room_url() == "wss://h.dev/b"


def test_http_url_has_no_pk_and_no_empty_query() -> None:
    address = RoomAddress("localhost:1999", "r")
    assert address.http_url() == "http://localhost:1999/parties/main/r"
    assert (
        address.http_url({"token": "t", "x": None})
        == "http://localhost:1999/parties/main/r?token=t"
    )


def test_room_is_percent_encoded_like_a_browser_does() -> None:
    assert RoomAddress("l:1", "my roomé").route == "/parties/main/my%20room%C3%A9"
    assert RoomAddress("localhost:1", "a:b@c").route == "/parties/main/a:b@c"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"room": None}, "room"),
        ({"room": ""}, "room"),
        ({"room": "a/b"}, "must not contain '/'"),
        ({"room": "r", "party": "x/y"}, "must not contain '/'"),
        ({"room": "r", "path": "/x"}, "must not start with '/'"),
        ({"room": "r", "prefix": "/"}, "prefix"),
        ({"room": "r", "protocol": "http"}, "protocol"),
    ],
)
def test_invalid_addresses_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RoomAddress("localhost:1999", **kwargs)  # type: ignore[arg-type]


def test_empty_host_is_refused() -> None:
    with pytest.raises(ValueError, match="host"):
        RoomAddress("https://", "r")
