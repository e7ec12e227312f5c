"""An HTTP response's head and its body in one ``send()``.

Uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and the body when ``http.response.body`` follows: two
system calls and two TCP segments, each waking the client. :class:`HeldHead` stands
in for the connection's transport for one response: it holds the first write and
sends it together with the next one, made in the same turn of the event loop when
the app answers at once (a party URL's answer, any Quart response built in memory).
Held bytes never wait longer than that turn: a callback sends them on their own at
the next one, so a streamed response whose body is slow to come still gets its head
out at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MERGE_LIMIT", "HeldHead"]

#: The largest write that is copied onto the held head; a larger one follows it in a
#: write of its own rather than being copied.
MERGE_LIMIT = 64 * 1024


class HeldHead:
    """A transport that holds the first write until the second (see the module).

    *owner* is the object whose ``transport`` attribute this stands in for (an
    Uvicorn request-response cycle); once the held bytes are sent it gets
    *transport* back, so later writes do not go through this object. Every other
    transport method is *transport*'s own.
    """

    __slots__ = ("_done", "_held", "_loop", "owner", "transport")

    def __init__(self, owner: Any, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.owner = owner
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._done = False

    def write(self, data: bytes) -> None:
        """Hold *data* if nothing is held yet, else send the held bytes and *data*."""
        held = self._held
        if held is None:
            if self._done:  # a caller that kept this object after it stepped aside
                self.transport.write(data)
            elif data:
                self._held = data
                self._loop.call_soon(self.flush)
            return
        self._release()
        if len(data) <= MERGE_LIMIT:
            self.transport.write(held + data)
        else:
            self.transport.write(held)
            self.transport.write(data)

    def flush(self) -> None:
        """Send what is held now (the next turn of the loop comes with nothing more),
        unless the connection is closing: the client is gone (uvloop would raise)."""
        held = self._held
        if held is not None:
            self._release()
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # what a response cycle does not call
        return getattr(self.transport, name)

    def _release(self) -> None:
        self._held = None
        self._done = True
        owner = self.owner
        if owner is not None and getattr(owner, "transport", None) is self:
            owner.transport = self.transport
