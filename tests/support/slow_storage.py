"""A storage backend whose writes wait until the test lets them through.

It is the real in-memory backend; only the moment each write lands is in the test's
hands, so a test can look at a room while one of its writes is in flight.
"""

from __future__ import annotations

import asyncio

from partydeco.storage import MemoryStorage, RoomKey, WriteBatch

__all__ = ["HeldWrites"]


class HeldWrites(MemoryStorage):
    """:class:`MemoryStorage` holding every write until :meth:`release`."""

    def __init__(self) -> None:
        super().__init__()
        #: writes waiting, oldest first
        self.waiting: list[asyncio.Future[None]] = []

    async def write(self, room: RoomKey, batch: WriteBatch) -> int:
        landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(landed)
        await landed
        return await super().write(room, batch)

    def release(self) -> None:
        """Let every waiting write land."""
        for landed in self.waiting:
            if not landed.done():
                landed.set_result(None)
        self.waiting.clear()
