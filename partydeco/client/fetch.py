"""HTTP requests to a room's ``on_request``, as partysocket's ``PartySocket.fetch`` makes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from partydeco.client.sources import QuerySource, resolve
from partydeco.client.url import RoomAddress

if TYPE_CHECKING:
    import httpx

__all__ = ["fetch_room"]


async def fetch_room(
    host: str,
    room: str | None = None,
    *,
    party: str = "main",
    prefix: str = "parties",
    path: str | None = None,
    base_path: str | None = None,
    protocol: Literal["ws", "wss"] | None = None,
    query: QuerySource | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    content: str | bytes | None = None,
    json: Any = None,
    request_timeout: float = 10.0,
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """Make an HTTP request to a room (its ``on_request`` handler), like partysocket's fetch.

    The URL is the room URL with ``http``/``https`` and ``query`` (resolved once), without
    ``_pk``. Pass ``client`` to reuse an ``httpx.AsyncClient``; otherwise a client with
    ``request_timeout`` seconds of timeout is made for this one request.

    It is also :meth:`PartySocket.fetch`.

    Example::

        r = await PartySocket.fetch("localhost:1999", "lobby", path="stats",
                                    headers={"Authorization": f"Bearer {token}"})
    """
    address = RoomAddress(
        host, room, party, prefix, path, base_path=base_path, protocol=protocol
    )
    url = address.http_url(await resolve(query))
    if client is not None:
        return await client.request(method, url, headers=headers, content=content, json=json)
    import httpx

    async with httpx.AsyncClient(timeout=request_timeout) as own:
        return await own.request(method, url, headers=headers, content=content, json=json)
