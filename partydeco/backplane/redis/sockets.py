"""The two sides of a socket whose room another process owns.

"Edge" is the process holding a client's socket, "owner" the one running the
room's handlers. On the edge the socket is a :class:`Link`: its frames go to the
owner. On the owner it is a :class:`Remote`: a connection whose sink
(:class:`~.relay.RelaySink`) sends back to the edge, fed by a bounded inbox and
served by one task, so its frames are handled in order, one at a time, as a local
socket's are.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from ...closecodes import TRY_AGAIN_LATER
from .wire import Close, Message, Open

if TYPE_CHECKING:
    from ...connection import Connection
    from ...request import Request
    from .relay import RelaySink

__all__ = ["Link", "Remote"]


class Link:
    """On the edge: a socket held here whose room another process owns.

    Attributes:
        sock: the socket's id in the cluster.
        owner: the process the frames go to.
        conn: the connection the server holds (its sink is the real socket's outbox).
        request: the upgrade request as the hooks forwarded it (sent again on re-attach).
        accepted: resolves to 0 when the owner accepted, -1 when it is not the owner,
            or an HTTP status when it refused.
        dead: the owner or Redis is gone: nothing more is relayed.
    """

    __slots__ = ("accepted", "conn", "dead", "owner", "request", "sock")

    def __init__(self, sock: str, owner: str, conn: Connection, request: Request) -> None:
        self.sock = sock
        self.owner = owner
        self.conn = conn
        self.request = request
        self.accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.dead = False

    def __repr__(self) -> str:
        return f"<Link {self.sock} -> {self.owner}>"


class Remote:
    """On the owner: a socket another process holds.

    Attributes:
        open: the event that announced it.
        sink: where the room's sends for it go.
        inbox: its frames (and finally its close) waiting for the handlers, bounded.
        task: the task serving it.
    """

    __slots__ = ("inbox", "limit", "open", "sink", "task", "wake")

    def __init__(self, open: Open, sink: RelaySink, limit: int) -> None:
        self.open = open
        self.sink = sink
        self.limit = limit
        self.inbox: deque[Message | Close] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Remote {self.open.sock} from {self.open.edge}>"

    def push(self, event: Message | Close) -> None:
        """Queue a frame or the close; a client too far ahead is closed with 1013."""
        if isinstance(event, Message) and len(self.inbox) >= self.limit:
            self.sink.close(TRY_AGAIN_LATER, "too many messages queued")
            return
        self.inbox.append(event)
        self.wake.set()

    async def next(self) -> Message | Close:
        """The next frame, or the close, in order."""
        while not self.inbox:
            self.wake.clear()
            await self.wake.wait()
        return self.inbox.popleft()
