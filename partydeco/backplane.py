"""Where rooms live: the seam between the server and the rooms.

The server glue asks the backplane for a room and hands it sockets and
requests; it never keeps rooms itself. :class:`LocalBackplane` keeps every room
in this process. :class:`partydeco.cluster.RedisBackplane` spans processes
(one owner per room, with the others relaying to it) behind the same
interface, so the public API does not change when an app grows beyond one
process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from .room import Room

if TYPE_CHECKING:
    from .config import Config
    from .dispatch import Dispatch
    from .parties import Parties
    from .storage import StorageBackend

__all__ = ["Backplane", "LocalBackplane"]


class Backplane(Protocol):
    """How the server reaches rooms."""

    def room(self, party: str, room_id: str) -> Room:
        """The room *room_id* of *party*, created on first use."""
        ...

    def rooms(self) -> Iterator[Room]:
        """The rooms this process holds."""
        ...

    def release(self, room: Room) -> None:
        """Let go of a room that has become idle."""
        ...

    async def start(self) -> None:
        """Connect to whatever the backplane needs; the server calls this at start-up."""
        ...

    async def stop(self) -> None:
        """Hand rooms over and disconnect; the server calls this after closing sockets."""
        ...


class LocalBackplane:
    """Every room in this process, created on demand."""

    def __init__(
        self,
        dispatch: Mapping[str, Dispatch],
        env: Mapping[str, str],
        config: Config,
        *,
        storage: StorageBackend | None = None,
        parties: Parties | None = None,
    ) -> None:
        self._dispatch = dispatch
        self._env = env
        self._config = config
        self._storage = storage
        self._parties = parties
        self._rooms: dict[tuple[str, str], Room] = {}

    def room(self, party: str, room_id: str) -> Room:
        """The room *room_id* of *party*, created on first use."""
        key = (party, room_id)
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(
                room_id,
                self._dispatch[party],
                self._env,
                self._config,
                storage=self._storage,
                parties=self._parties,
            )
        return room

    def rooms(self) -> Iterator[Room]:
        """The rooms this process holds."""
        return iter(list(self._rooms.values()))

    def release(self, room: Room) -> None:
        """Forget *room* if it is idle (no connection, nothing in progress); the next
        arrival creates it afresh."""
        key = (room.party, room.id)
        if room.idle and self._rooms.get(key) is room:
            del self._rooms[key]

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to hand over."""
