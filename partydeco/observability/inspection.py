"""What the admin API shows: the rooms a process runs, and a room's connections.

Each room runs in one process (its owner), whose room object knows every
connection, relayed ones included; so a listing asks each process for the rooms
it owns and adds them up, and nothing is counted twice. Every answer is bounded:
a listing carries the ``limit`` busiest rooms (most connections first) and totals
per party; a room's answer carries at most ``limit`` connections.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from ..backplane.base import Backplane
    from ..room import Room

__all__ = [
    "MAX_LIMIT",
    "ConnectionInfo",
    "Listing",
    "PartyTotals",
    "RoomDetail",
    "RoomInfo",
    "local_listing",
    "local_room",
    "merge",
]

#: The most rooms, or connections, one answer carries.
MAX_LIMIT = 1000


class RoomInfo(msgspec.Struct):
    """One room in a listing."""

    party: str
    room: str
    connections: int


class PartyTotals(msgspec.Struct):
    """A party's loaded rooms and their open connections."""

    rooms: int = 0
    connections: int = 0


class Listing(msgspec.Struct):
    """Rooms of one process, or of every process of a cluster.

    ``truncated`` says rooms were left out (``limit``); ``processes`` is how many
    processes answered and ``unreachable`` how many did not in time.
    """

    rooms: list[RoomInfo]
    parties: dict[str, PartyTotals]
    truncated: bool = False
    processes: int = 1
    unreachable: int = 0


class ConnectionInfo(msgspec.Struct):
    """One connection of a room: its id, tags and principal (never its token)."""

    id: str
    tags: list[str]
    principal: str | None


class RoomDetail(msgspec.Struct):
    """A room and (up to ``limit`` of) its connections."""

    party: str
    room: str
    count: int
    connections: list[ConnectionInfo]
    truncated: bool = False


def _count(room: Room) -> int:
    return sum(1 for _ in room.get_connections())


def local_listing(backplane: Backplane, party: str | None, limit: int) -> Listing:
    """The rooms whose handlers run in this process (of *party*, or of every party)."""
    infos = [
        RoomInfo(room.party, room.id, _count(room))
        for room in backplane.local_rooms()
        if party is None or room.party == party
    ]
    return merge([Listing(infos, _totals(infos))], limit)


def _totals(infos: Iterable[RoomInfo]) -> dict[str, PartyTotals]:
    totals: dict[str, PartyTotals] = {}
    for info in infos:
        entry = totals.setdefault(info.party, PartyTotals())
        entry.rooms += 1
        entry.connections += info.connections
    return totals


def merge(listings: Iterable[Listing], limit: int, unreachable: int = 0) -> Listing:
    """One listing of several processes' listings: totals added, the busiest *limit* rooms."""
    rooms: list[RoomInfo] = []
    parties: dict[str, PartyTotals] = {}
    truncated = False
    processes = 0
    for listing in listings:
        rooms.extend(listing.rooms)
        truncated = truncated or listing.truncated
        processes += listing.processes
        for name, totals in listing.parties.items():
            entry = parties.setdefault(name, PartyTotals())
            entry.rooms += totals.rooms
            entry.connections += totals.connections
    if len(rooms) > limit:
        truncated = True
    busiest = heapq.nsmallest(limit, rooms, key=lambda r: (-r.connections, r.party, r.room))
    return Listing(busiest, dict(sorted(parties.items())), truncated, processes, unreachable)


def local_room(backplane: Backplane, party: str, room_id: str, limit: int) -> RoomDetail | None:
    """Room *room_id* of *party* with its connections, if its handlers run in this process."""
    for room in backplane.local_rooms():
        if room.party == party and room.id == room_id:
            connections = list(room.get_connections())
            shown = sorted(connections, key=lambda c: c.id)[:limit]
            return RoomDetail(
                party,
                room_id,
                len(connections),
                [ConnectionInfo(c.id, list(c.tags), c.principal) for c in shown],
                len(connections) > limit,
            )
    return None
