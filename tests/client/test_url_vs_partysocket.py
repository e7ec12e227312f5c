"""The Python client builds the same room URLs as the real partysocket package."""

from __future__ import annotations

from typing import Any

from partydeco.client import RoomAddress
from tests.support.js_driver import node_partysocket

CASES: list[dict[str, Any]] = [
    {"host": "localhost:1999", "room": "lobby"},
    {"host": "127.0.0.1:8000", "room": "r", "party": "chat"},
    {"host": "192.168.1.2:1999", "room": "r"},
    {"host": "10.0.0.7:1999", "room": "r"},
    {"host": "172.20.1.1:1999", "room": "r"},
    {"host": "example.com", "room": "r"},
    {"host": "https://example.com/", "room": "r", "party": "p", "path": "a/b"},
    {"host": "example.com", "room": "r", "prefix": "rooms"},
    {"host": "localhost:1999", "basePath": "custom/route"},
    {"host": "example.com", "room": "r", "protocol": "ws"},
    {"host": "localhost:1999", "room": "r", "protocol": "wss"},
]


def python_room_url(options: dict[str, Any]) -> str:
    address = RoomAddress(
        options["host"],
        options.get("room"),
        party=options.get("party", "main"),
        prefix=options.get("prefix", "parties"),
        path=options.get("path"),
        base_path=options.get("basePath"),
        protocol=options.get("protocol"),
    )
    return address.room_url()


async def test_room_urls_match_partysocket() -> None:
    async with node_partysocket() as node:
        for options in CASES:
            reply = await node.request("room_url", options=options)
            assert python_room_url(options) == reply["roomUrl"], options
