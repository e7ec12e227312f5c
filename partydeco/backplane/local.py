"""Every room in this process: the backplane of an app that runs as one process."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ..historystore import wait_unloaded
from ..parties import Parties
from ..room import Room

if TYPE_CHECKING:
    from ..config import Config
    from ..dispatch import Dispatch
    from ..storage import StorageBackend
    from .base import RoomHandle

__all__ = ["LocalBackplane"]


class LocalBackplane:
    """Every room in this process, created on demand.

    Args:
        dispatch: the handler tables, by party.
        env: the environment rooms see.
        config: the app's configuration.
        storage: the backend behind ``room.storage``.
    """

    def __init__(
        self,
        dispatch: Mapping[str, Dispatch],
        env: Mapping[str, str],
        config: Config,
        *,
        storage: StorageBackend | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.env = env
        self.config = config
        self.storage = storage
        #: the app's parties, as rooms reach them (``room.parties``).
        self.parties = Parties(self, dispatch, config)
        self._rooms: dict[tuple[str, str], Room] = {}

    def __repr__(self) -> str:
        return f"<LocalBackplane rooms={len(self._rooms)}>"

    def room(self, party: str, room_id: str) -> Room:
        """The room *room_id* of *party*, created on first use."""
        key = (party, room_id)
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(
                room_id,
                self.dispatch[party],
                self.env,
                self.config,
                storage=self.storage,
                parties=self.parties,
            )
        return room

    def rooms(self) -> Iterator[Room]:
        """The rooms this process holds."""
        return iter(list(self._rooms.values()))

    def local_rooms(self) -> Iterator[Room]:
        """Every room: they all run in this process."""
        return self.rooms()

    @property
    def available(self) -> bool:
        """Always: nothing outside this process is needed."""
        return True

    def release(self, room: RoomHandle) -> None:
        """Forget *room* if it is idle (no connection, nothing in progress); the next
        arrival creates it afresh."""
        key = (room.party, room.id)
        local = self._rooms.get(key)
        if room.idle and local is room:
            del self._rooms[key]
            local.unload()

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Unload every room: what must outlive them (history) is stored before the
        storage closes, within ``shutdown_timeout``."""
        rooms, self._rooms = list(self._rooms.values()), {}
        for room in rooms:
            room.unload()
        await wait_unloaded(self.storage, within=self.config.shutdown_timeout)
