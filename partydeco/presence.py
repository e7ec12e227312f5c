"""Who is in a room: its users (principals) and how many connections each has open.

A room tracks presence when its party has ``on_join`` / ``on_leave`` handlers or
``presence=True`` (then its clients are told too). Everything is computed by the
room itself, on the one process that owns it (even on Redis, where connections held
by other processes are connections of the owner's room), so the list is the same
for every client and events come in the room's order.

- A user is present while at least one of their connections is open; three tabs of
  one user are one entry with ``connections: 3``. A connection without a principal
  is counted in ``anonymous`` and is no one's presence.
- A **join** is a user's first connection; it is reported before that connection's
  ``on_connect``. A **leave** is reported ``presence_grace`` seconds after a user's
  last connection closed (after its ``on_close``), unless a connection of theirs
  joined meanwhile: a reconnecting tab causes neither a leave nor a join. Until
  then the user stays listed, with ``connections: 0``.
- With ``presence=True`` a joining connection gets one ``partydeco.presence``
  message listing at most ``presence_snapshot`` users (the longest present first)
  and the totals; then every client gets one small ``partydeco.join`` /
  ``partydeco.leave`` message per user who comes or goes, never the list again.
  ``GET /parties/<party>/<room>/presence`` pages through the whole list.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from itertools import islice
from typing import TYPE_CHECKING, Any

from .response import Response
from .routing import match

if TYPE_CHECKING:
    from .config import Config
    from .connection import Connection
    from .dispatch import Call, Dispatch
    from .request import Request
    from .room import Room

__all__ = ["MAX_PAGE", "Presence"]

logger = logging.getLogger("partydeco")

#: The most users one ``GET .../presence`` answer lists.
MAX_PAGE = 1000


class Presence:
    """The presence of one room: ``room.presence`` (see the module).

    Example::

        @party.on_request
        async def who(request, room):
            return {"users": sorted(room.presence.users()), "online": len(room.presence)}

    Attributes:
        announce: whether clients are told (the party's ``presence`` option).
        grace: seconds between a user's last close and their leave.
        snapshot_limit: most users listed in the message a joining connection gets.
        anonymous: open connections without a principal.
    """

    __slots__ = (
        "_closed",
        "_counts",
        "_leaving",
        "_on_join",
        "_on_leave",
        "_room",
        "_sorted",
        "_tasks",
        "announce",
        "anonymous",
        "grace",
        "snapshot_limit",
    )

    def __init__(self, room: Room, config: Config, dispatch: Dispatch) -> None:
        self._room = room
        self.announce = config.presence
        self.grace = float(config.presence_grace)
        self.snapshot_limit = config.presence_snapshot
        self._on_join: tuple[Call, ...] = dispatch.on_join
        self._on_leave: tuple[Call, ...] = dispatch.on_leave
        # user -> open connections, in the order users joined (0 while leaving)
        self._counts: dict[str, int] = {}
        # users whose last connection closed, with the timer that reports their leave
        self._leaving: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sorted: list[str] | None = None  # the users in id order, for the HTTP read
        self._closed = False
        self.anonymous = 0

    @classmethod
    def of(cls, room: Room, dispatch: Dispatch) -> Presence | None:
        """The presence of *room*, or ``None`` when its party tracks none (no
        ``presence=True``, no ``on_join`` or ``on_leave``)."""
        if room.config.presence or dispatch.on_join or dispatch.on_leave:
            return cls(room, room.config, dispatch)
        return None

    def __repr__(self) -> str:
        return f"<Presence {self._room.party}/{self._room.id} users={len(self._counts)}>"

    # -- what handlers read -------------------------------------------------------------

    def users(self) -> dict[str, int]:
        """The present users and their open connections, the longest present first."""
        return dict(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, user: object) -> bool:
        return user in self._counts

    @property
    def pending(self) -> bool:
        """Whether a leave is still to be reported (the room is not idle until then)."""
        return bool(self._leaving or self._tasks)

    # -- called by the room --------------------------------------------------------------

    async def arrive(self, conn: Connection) -> None:
        """*conn* was attached: count it, tell the clients, run ``on_join`` for a new user."""
        user = conn.principal
        joined = False
        if user is None:
            self.anonymous += 1
        else:
            # Still listed with 0 connections (leaving): a reconnect, not a join.
            joined = user not in self._counts
            if joined:
                self._sorted = None
            self._counts[user] = self._counts.get(user, 0) + 1
            timer = self._leaving.pop(user, None)
            if timer is not None:
                timer.cancel()
        if self.announce:
            conn.send(self.snapshot(user))
            if joined:
                event = {"type": "partydeco.join", "user": user, "count": len(self._counts)}
                self._room.broadcast(event, without=(conn.id,), history=False)
        if joined and user is not None:
            await self._run(self._on_join, user)

    def remove(self, conn: Connection) -> str | None:
        """*conn* left the room's connections; the user whose last connection it was."""
        user = conn.principal
        if user is None:
            self.anonymous -= 1
            return None
        count = self._counts.get(user, 0) - 1
        if count > 0:
            self._counts[user] = count
            return None
        if user in self._counts:
            self._counts[user] = 0
            return user
        return None

    async def depart(self, user: str) -> None:
        """*user*'s last connection closed and its ``on_close`` ran: report the leave
        now (no grace) or after the grace."""
        if self._closed or self._counts.get(user) != 0 or user in self._leaving:
            return
        if self.grace <= 0:
            await self._leave(user)
            return
        loop = asyncio.get_running_loop()
        self._leaving[user] = loop.call_later(self.grace, self._leave_later, user)

    def _leave_later(self, user: str) -> None:
        task = asyncio.get_running_loop().create_task(
            self._leave_in_turn(user), name=f"partydeco-leave {self._room!r}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _leave_in_turn(self, user: str) -> None:
        # A late leave is an event of the room: it waits for the room's input gate.
        gate = self._room.gate
        if gate.blocked:
            await gate.enter()
        if self._leaving.pop(user, None) is not None:
            await self._leave(user)

    async def _leave(self, user: str) -> None:
        if self._counts.get(user) != 0:
            return  # a connection of theirs came back
        del self._counts[user]
        self._sorted = None
        if self.announce:
            event = {"type": "partydeco.leave", "user": user, "count": len(self._counts)}
            self._room.broadcast(event, history=False)
        await self._run(self._on_leave, user)

    async def _run(self, calls: tuple[Call, ...], user: str) -> None:
        for call in calls:
            try:
                await call(user, self._room)
            except Exception:
                logger.exception("error in %s handler of %r", call.name, self._room)

    def close(self) -> None:
        """The room is unloaded: leaves not yet reported are dropped."""
        self._closed = True
        for timer in self._leaving.values():
            timer.cancel()
        self._leaving.clear()
        for task in self._tasks:
            task.cancel()

    # -- what clients get ----------------------------------------------------------------

    def snapshot(self, you: str | None = None) -> dict[str, Any]:
        """The ``partydeco.presence`` message a joining connection gets."""
        listed = islice(self._counts.items(), self.snapshot_limit)
        return {
            "type": "partydeco.presence",
            "you": you,
            "users": [{"id": user, "connections": n} for user, n in listed],
            "count": len(self._counts),
            "anonymous": self.anonymous,
        }

    def answer(self, request: Request) -> Response | None:
        """Answer ``GET``/``HEAD`` on the room's presence path (with ``presence=True``);
        ``None`` for other requests.

        ``?limit=`` (1 to :data:`MAX_PAGE`, 100 by default) users in id order,
        after the id given as ``?after=``; ``next`` is the ``after`` of the next page.
        """
        if not self.announce or request.method not in ("GET", "HEAD"):
            return None
        route = match(request.raw_path)
        if route is None or route.rest != "/presence":
            return None
        text = request.args.get("limit", "100")
        if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
            return Response(f"limit must be an integer from 1 to {MAX_PAGE}", 400)
        limit = int(text)
        if self._sorted is None:
            self._sorted = sorted(self._counts)
        ids = self._sorted
        after = request.args.get("after")
        start = 0 if after is None else bisect_right(ids, after)
        page = ids[start : start + limit]
        return Response.json(
            {
                "room": self._room.id,
                "count": len(self._counts),
                "anonymous": self.anonymous,
                "users": [{"id": user, "connections": self._counts[user]} for user in page],
                "next": page[-1] if start + limit < len(ids) else None,
            }
        )
