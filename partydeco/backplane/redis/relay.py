"""Getting events to other processes in order: one FIFO, one publisher task.

Everything this process tells other processes goes through one bounded FIFO,
appended to synchronously (``post``), so events keep the order in which handlers
produced them: a ``send`` and a later ``broadcast`` reach a socket in that order.
One task drains the FIFO and publishes each batch with one pipeline, one PUBLISH
per receiving process.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ...closecodes import TRY_AGAIN_LATER
from ...outbox import Outbox
from .wire import Accept, Send, Shut, encode_batch

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Publisher", "RelayOutbox"]

#: Events and bytes taken from the FIFO for one pipeline.
BATCH_EVENTS = 2048
BATCH_BYTES = 4 << 20


async def _no_send(message: Any) -> None:  # pragma: no cover - never called
    raise RuntimeError("a relay outbox does not write to a socket")


class Publisher:
    """The bounded FIFO of outgoing events and the task that publishes it.

    Args:
        channel: the channel name of a process id.
        max_events: events that may wait; :meth:`post` refuses more.
        max_bytes: the same bound in payload bytes.
    """

    def __init__(self, channel: Callable[[str], str], max_events: int, max_bytes: int) -> None:
        self._channel = channel
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._queue: deque[tuple[str, Any, int]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        #: False while Redis is unavailable: events are dropped, nothing waits.
        self.enabled = False

    def __repr__(self) -> str:
        return f"<Publisher queued={len(self._queue)} bytes={self._bytes}>"

    @property
    def full(self) -> bool:
        """Whether the FIFO is at its bound."""
        return len(self._queue) >= self.max_events or self._bytes >= self.max_bytes

    def post(self, node: str, event: Any, size: int = 0, *, force: bool = False) -> bool:
        """Append *event* for process *node*; ``False`` if it was dropped (full or disabled).

        *force* ignores the bound, for the few events that must not be lost to it
        (closes), whose number is bounded by the number of sockets.
        """
        if not self.enabled or (self.full and not force):
            return False
        self._queue.append((node, event, size))
        self._bytes += size
        self._idle.clear()
        if self.full:
            self._space.clear()
        self._ready.set()
        return True

    async def post_wait(self, node: str, event: Any, size: int = 0) -> None:
        """Append *event*, waiting while the FIFO is full (backpressure on the sender)."""
        while self.enabled and self.full:
            await self._space.wait()
        self.post(node, event, size)

    def clear(self) -> None:
        """Drop everything queued and release waiters (Redis was lost)."""
        self._queue.clear()
        self._bytes = 0
        self._space.set()
        self._idle.set()

    async def drain(self) -> None:
        """Wait until everything queued was published."""
        await self._idle.wait()

    async def run(self, client: aioredis.Redis) -> None:
        """Publish until cancelled; a Redis error propagates (the caller handles outages)."""
        queue = self._queue
        while True:
            while not queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
            batches: dict[str, list[Any]] = {}
            taken = size = 0
            while queue and taken < BATCH_EVENTS and size < BATCH_BYTES:
                node, event, n = queue.popleft()
                batches.setdefault(node, []).append(event)
                taken += 1
                size += n
            pipe = client.pipeline(transaction=False)
            for node, events in batches.items():
                pipe.publish(self._channel(node), encode_batch(events))
            try:
                await pipe.execute()
            finally:
                self._bytes = max(0, self._bytes - size)
                if not self.full:
                    self._space.set()


class RelayOutbox(Outbox):
    """The outbox of a connection whose socket another process holds.

    It lives on the room's owner: ``send``, ``broadcast`` and ``close`` become
    events for the holding process, which writes them to the real socket through
    that socket's own bounded outbox (where a slow client is closed with 1013).

    Attributes:
        edge: the id of the process holding the socket.
        sock: the socket's id in the cluster.
    """

    __slots__ = ("_publisher", "edge", "sock")

    def __init__(self, publisher: Publisher, edge: str, sock: str) -> None:
        super().__init__(_no_send, max_messages=1, max_bytes=1, close_timeout=1.0)
        self._publisher = publisher
        self.edge = edge
        self.sock = sock

    def __repr__(self) -> str:
        return f"<RelayOutbox {self.sock} on {self.edge}>"

    async def accept(
        self, headers: Iterable[tuple[str, str]] = (), subprotocol: str | None = None
    ) -> None:
        """Tell the holding process the owner took the socket."""
        self._publisher.post(self.edge, Accept(self.sock), force=True)
        self.accepted = True

    def put(self, frame: str | bytes, event: dict[str, Any] | None = None) -> None:
        """Send one frame; if the relay FIFO is full the socket is closed with 1013."""
        if self.closing:
            return
        if not self._publisher.post(self.edge, Send(self.sock, frame), len(frame)):
            self.close(TRY_AGAIN_LATER, "relay queue full")

    def close(self, code: int = 1000, reason: str = "", *, discard: bool = False) -> None:
        """Close the socket after the frames posted before."""
        if self.closing:
            return
        self.closing = True
        self._close = (code, reason)
        self._publisher.post(self.edge, Shut(self.sock, code, reason), force=True)

    async def close_now(self, code: int, reason: str) -> None:
        """The same as :meth:`close`: the holding process writes the close frame."""
        self.close(code, reason)

    def detach(self) -> None:
        """Stop relaying (the holding process is gone, or Redis is)."""
        self.closing = True

    def finish(self) -> None:
        """The socket is gone."""
        self._done = True
        self.closing = True

    @property
    def pending(self) -> int:
        """Frames waiting here: none, they wait in the publisher and at the edge."""
        return 0
