"""Getting events to other processes in order: one FIFO, one publisher task, relay sinks.

Everything this process tells other processes goes through one bounded FIFO,
appended to synchronously (``post``), so events keep the order in which handlers
produced them: a ``send`` and a later ``broadcast`` reach a socket in that order.
One task drains the FIFO and publishes each batch with one pipeline, one PUBLISH
per receiving process.

A frame for a socket another process holds is a :class:`~.wire.Fanout`. When the
last event queued for that process is a fanout of the very same frame (the next
receiver of one broadcast), the socket joins it: a broadcast costs one event per
process, however many of its sockets each process holds, and the room never needs
to know which of its connections are relayed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ...closecodes import TRY_AGAIN_LATER
from .wire import Accept, Fanout, Shut, encode_batch

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Publisher", "RelaySink"]

#: Events and bytes taken from the FIFO for one pipeline.
BATCH_EVENTS = 2048
BATCH_BYTES = 4 << 20


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
        # The last event queued for each process, if it is a fanout still in the queue.
        self._tails: dict[str, Fanout] = {}
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        #: False while Redis is unavailable: events are dropped, nothing waits.
        self.enabled = False
        #: ``on_published(seconds, events)`` after each batch, when metrics are on.
        self.on_published: Callable[[float, int], None] | None = None

    def __repr__(self) -> str:
        return f"<Publisher queued={len(self._queue)} bytes={self._bytes}>"

    @property
    def queued(self) -> int:
        """Events waiting to be published."""
        return len(self._queue)

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
        if type(event) is Fanout:
            self._tails[node] = event
        else:
            self._tails.pop(node, None)
        self._idle.clear()
        if self.full:
            self._space.clear()
        self._ready.set()
        return True

    def post_frame(self, node: str, sock: str, frame: str | bytes) -> bool:
        """Send *frame* to socket *sock* held by *node*; ``False`` if it was dropped.

        It joins the fanout last queued for *node* if that carries the same frame.
        """
        tail = self._tails.get(node)
        if tail is not None and tail.frame is frame and self.enabled:
            tail.socks.append(sock)
            return True
        return self.post(node, Fanout([sock], frame), len(frame))

    async def post_wait(self, node: str, event: Any, size: int = 0) -> None:
        """Append *event*, waiting while the FIFO is full (backpressure on the sender)."""
        while self.enabled and self.full:
            await self._space.wait()
        self.post(node, event, size)

    def clear(self) -> None:
        """Drop everything queued and release waiters (Redis was lost)."""
        self._queue.clear()
        self._tails.clear()
        self._bytes = 0
        self._space.set()
        self._idle.set()

    async def drain(self) -> None:
        """Wait until everything queued was published."""
        await self._idle.wait()

    async def run(self, client: aioredis.Redis) -> None:
        """Publish until cancelled; a Redis error propagates (the caller handles outages)."""
        queue = self._queue
        tails = self._tails
        while True:
            while not queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
            batches: dict[str, list[Any]] = {}
            taken = size = 0
            while queue and taken < BATCH_EVENTS and size < BATCH_BYTES:
                node, event, n = queue.popleft()
                if tails.get(node) is event:
                    del tails[node]  # published: nothing may join it any more
                batches.setdefault(node, []).append(event)
                taken += 1
                size += n
            pipe = client.pipeline(transaction=False)
            for node, events in batches.items():
                pipe.publish(self._channel(node), encode_batch(events))
            started = time.perf_counter()
            try:
                await pipe.execute()
                if self.on_published is not None:
                    self.on_published(time.perf_counter() - started, taken)
            finally:
                self._bytes = max(0, self._bytes - size)
                if not self.full:
                    self._space.set()


class RelaySink:
    """Where the frames of a connection go when another process holds its socket.

    It lives on the room's owner: ``put`` and ``close`` become events for the
    holding process, which writes them to the real socket through that socket's own
    bounded outbox (where a slow client is closed with 1013).

    Attributes:
        edge: the id of the process holding the socket.
        sock: the socket's id in the cluster.
        accepted: whether the owner took the socket.
        closing: whether a close was sent, or relaying stopped.
    """

    __slots__ = ("_close", "_publisher", "accepted", "closing", "edge", "sock")

    def __init__(self, publisher: Publisher, edge: str, sock: str) -> None:
        self._publisher = publisher
        self.edge = edge
        self.sock = sock
        self.accepted = False
        self.closing = False
        self._close: tuple[int, str] | None = None

    def __repr__(self) -> str:
        return f"<RelaySink {self.sock} on {self.edge}>"

    @property
    def close_frame(self) -> tuple[int, str] | None:
        """The code and reason this side closed with, if it did."""
        return self._close

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
        if not self._publisher.post_frame(self.edge, self.sock, frame):
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
        self.closing = True
