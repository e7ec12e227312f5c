"""Tokens that expire while the socket is open, and refreshing them in place.

A ``before_connect`` hook that authenticated the client sets
``request.expires_at`` (seconds since the epoch, a JWT's ``exp``); the ready-made
``partydeco.auth`` hooks do. partydeco then arms one timer for the connection
(a single ``loop.call_at``, cancelled when the socket closes; for a token that
expires more than :data:`HORIZON` seconds ahead, once it comes that near); when it
fires, ``token_leeway`` seconds after the expiry, the socket is closed with
:data:`TOKEN_EXPIRED`. That code is outside 4000-4999 and is not 1008, so
clients (partysocket, :class:`partydeco.client.PartySocket`) reconnect, and
their ``query`` function supplies a fresh token.

With ``token_refresh=True`` a client can instead send a new token over the
open socket, as one text frame::

    {"type":"partydeco.refresh","token":"<jwt>"}

It is a JSON object whose ``type`` is ``"partydeco.refresh"``, with that
string within its first 64 characters (put ``type`` first, as
``JSON.stringify({type: "partydeco.refresh", token})`` does). It never reaches
``on_message``; frames that are not such an object go to ``on_message`` as
usual. The token is checked by ``request.token_refresher`` (the
ready-made hooks set one that verifies it like the first and requires the same
``sub``), and the client gets one of::

    {"type":"partydeco.refreshed","expires_at":1767225600}
    {"type":"partydeco.refresh_error","error":"invalid_token","detail":"token expired"}

``error`` is ``invalid_token`` (``detail`` says why), ``malformed`` (no
``token`` string) or ``unavailable`` (the keys could not be fetched). A
refused refresh leaves the connection and its old expiry as they were.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, TypeGuard

import msgspec

from ..auth.errors import InvalidTokenError
from ..closecodes import TOKEN_EXPIRED
from ..codec import encode_frame
from ..types import Refresher

if TYPE_CHECKING:
    from ..outbox import Outbox
    from .limits import Admission

__all__ = ["HORIZON", "REFRESH_MARK", "TOKEN_EXPIRED", "Expiry", "arm", "maybe_refresh", "refresh"]

logger = logging.getLogger("partydeco")

#: What a refresh frame holds within its first 64 characters.
REFRESH_MARK = '"partydeco.refresh"'


class _RefreshFrame(msgspec.Struct):
    type: str
    token: object = None


_decoder = msgspec.json.Decoder(_RefreshFrame)


#: A token that expires later than this (seconds) gets no timer of its own yet: it
#: waits with the others of its event loop, which one timer looks through every half
#: of it, arming the timer of each that came this near. Most sockets close long before
#: their token expires, and a timer made and cancelled for each costs more than a set
#: entry.
HORIZON = 60.0


class _Far:
    """The far-off expiries of one event loop, swept by a timer while there are any."""

    __slots__ = ("due", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: set[Expiry] = set()
        loop.call_later(HORIZON / 2, _sweep, self)
        for closed in [other for other in _far if other.is_closed()]:  # their sweeps never ran
            del _far[closed]
        _far[loop] = self


_far: dict[asyncio.AbstractEventLoop, _Far] = {}


class Expiry:
    """One connection's token expiry: closes its outbox with :data:`TOKEN_EXPIRED` at
    *deadline* (seconds since the epoch) unless cancelled."""

    __slots__ = ("deadline", "far", "outbox", "timer")

    def __init__(self, outbox: Outbox, deadline: float) -> None:
        self.outbox = outbox
        self.deadline = deadline
        self.timer: asyncio.TimerHandle | None = None
        loop = asyncio.get_running_loop()
        wait = deadline - time.time()
        if wait <= HORIZON:
            self.far: _Far | None = None
            self._start(loop, wait)
            return
        far = self.far = _far.get(loop)
        if far is None:
            far = self.far = _Far(loop)
        far.due.add(self)

    def _start(self, loop: asyncio.AbstractEventLoop, wait: float) -> None:
        close = self.outbox.close
        self.timer = loop.call_at(loop.time() + wait, close, TOKEN_EXPIRED, "token expired")

    def cancel(self) -> None:
        """Never close the outbox for this expiry (idempotent)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        elif self.far is not None:
            self.far.due.discard(self)


def _sweep(far: _Far) -> None:
    now = time.time()
    near = [expiry for expiry in far.due if expiry.deadline - now <= HORIZON]
    for expiry in near:
        far.due.discard(expiry)
        expiry._start(far.loop, expiry.deadline - now)
    if far.due:
        far.loop.call_later(HORIZON / 2, _sweep, far)
    else:
        del _far[far.loop]


def arm(outbox: Outbox, admission: Admission, expires_at: float | None, leeway: float) -> None:
    """(Re)arm the connection's expiry timer; ``None`` disarms it."""
    if admission.timer is not None:
        admission.timer.cancel()
        admission.timer = None
    if expires_at is not None:
        admission.timer = Expiry(outbox, expires_at + leeway)


def maybe_refresh(data: str | bytes) -> TypeGuard[str]:
    """Whether a frame may be a refresh frame (cheap: no parsing, no allocation)."""
    return type(data) is str and data.find(REFRESH_MARK, 0, 64) >= 0


async def refresh(
    data: str, refresher: Refresher, outbox: Outbox, admission: Admission, leeway: float
) -> bool:
    """Handle a frame that :func:`maybe_refresh`: if it is a refresh frame, verify the
    token, re-arm the timer, answer the client and return True; else return False."""
    try:
        frame = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    if frame.type != "partydeco.refresh":
        return False
    token = frame.token
    if not isinstance(token, str) or not token:
        outbox.put(_error("malformed", 'expected {"type":"partydeco.refresh","token":"..."}'))
        return True
    try:
        expires_at = await refresher(token)
    except Exception as exc:
        outbox.put(_refusal(exc))
        return True
    arm(outbox, admission, expires_at, leeway)
    outbox.put(encode_frame({"type": "partydeco.refreshed", "expires_at": expires_at}))
    return True


def _refusal(exc: Exception) -> str | bytes:
    if isinstance(exc, InvalidTokenError):
        if exc.status != 401:
            return _error("unavailable", exc.reason)
        return _error("invalid_token", exc.reason)
    # never echo an arbitrary exception: it could hold internals (or the token)
    logger.error("token refresher failed: %s", type(exc).__name__)
    return _error("unavailable", "token could not be checked")


def _error(error: str, detail: str) -> str | bytes:
    return encode_frame({"type": "partydeco.refresh_error", "error": error, "detail": detail})
