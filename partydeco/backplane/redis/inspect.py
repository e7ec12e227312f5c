"""The admin API's view of a cluster: each process answers for the rooms it owns.

A listing asks every process listening on its channel (``PUBSUB CHANNELS``: one
entry per live process) for its owned rooms, each answer bounded by ``limit``,
and merges them (:func:`~partydeco.observability.inspection.merge`). A room's
connections come from its owner alone (the lease names it). A process that does
not answer within :data:`TIMEOUT` seconds is counted as unreachable, not waited for.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec
from redis.exceptions import RedisError

from ...errors import BackplaneUnavailableError
from ...observability.inspection import Listing, RoomDetail, local_listing, local_room, merge
from ...storage import RoomKey
from .wire import Inspect, Reply

if TYPE_CHECKING:
    from .backplane import RedisBackplane

__all__ = ["TIMEOUT", "answer_inspection", "cluster_listing", "cluster_room"]

#: Seconds to wait for another process's answer.
TIMEOUT = 3.0


def answer_inspection(cluster: RedisBackplane, event: Inspect) -> Reply:
    """This process's answer to an :class:`Inspect` from another process."""
    limit = max(0, event.limit)
    if not event.room:
        listing = local_listing(cluster, event.party or None, limit)
        return Reply(event.call, 200, [], msgspec.json.encode(listing))
    detail = local_room(cluster, event.party, event.room, limit)
    if detail is None:
        return Reply(event.call, 404, [], b"")
    return Reply(event.call, 200, [], msgspec.json.encode(detail))


async def _nodes(cluster: RedisBackplane) -> list[str]:
    cluster.check()
    assert cluster.leases is not None
    try:
        return await cluster.leases.nodes()
    except (RedisError, OSError):
        raise BackplaneUnavailableError("the cluster's Redis cannot be reached") from None


async def _owner(cluster: RedisBackplane, room: RoomKey) -> str | None:
    cluster.check()
    assert cluster.leases is not None
    try:
        return await cluster.leases.owner(room)
    except (RedisError, OSError):
        raise BackplaneUnavailableError("the cluster's Redis cannot be reached") from None


async def _ask(cluster: RedisBackplane, node: str, party: str, room: str, limit: int) -> Reply:
    def make(call: str) -> Inspect:
        return Inspect(call, cluster.node, party, room, limit)

    return await asyncio.wait_for(cluster.call(node, make), TIMEOUT)


async def cluster_listing(cluster: RedisBackplane, party: str | None, limit: int) -> Listing:
    """The rooms of every process of the cluster (of *party*, or of every party).

    Raises:
        BackplaneUnavailableError: Redis cannot be reached.
    """
    nodes = [node for node in await _nodes(cluster) if node != cluster.node]
    answers = await asyncio.gather(
        *(_ask(cluster, node, party or "", "", limit) for node in nodes), return_exceptions=True
    )
    listings = [local_listing(cluster, party, limit)]
    unreachable = 0
    for answer in answers:
        if isinstance(answer, Reply) and answer.status == 200:
            listings.append(msgspec.json.decode(answer.body, type=Listing))
        else:
            unreachable += 1
    return merge(listings, limit, unreachable)


async def cluster_room(
    cluster: RedisBackplane, party: str, room: str, limit: int
) -> RoomDetail | None:
    """Room *room* of *party* and its connections, from its owner; ``None`` if no
    process runs it.

    Raises:
        BackplaneUnavailableError: Redis cannot be reached, or the owner did not answer.
    """
    owner = await _owner(cluster, RoomKey(party, room))
    if owner is None:
        return None
    if owner == cluster.node:
        return local_room(cluster, party, room, limit)
    try:
        reply = await _ask(cluster, owner, party, room, limit)
    except TimeoutError:
        raise BackplaneUnavailableError("the room's owner did not answer in time") from None
    if reply.status != 200:
        return None
    return msgspec.json.decode(reply.body, type=RoomDetail)
