"""Reconnection delays and the rule that decides whether a close is worth a reconnect."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["TERMINAL_STATUSES", "Backoff", "CloseInfo", "default_should_reconnect"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between connection attempts, with optional jitter.

    The first attempt (``attempt == 0``) happens at once. Retry ``n`` (``n >= 1``) waits
    ``min_delay * factor ** (n - 1)`` seconds, capped at ``max_delay``, then reduced by up to
    ``jitter`` of itself at random, so a crowd of clients that lost the same server does not
    come back in lockstep. Jitter only ever shortens a delay, so ``max_delay`` is a true bound.

    The defaults are partysocket's (3 s, 10 s, 1.3) plus 20 % jitter.

    Args:
        min_delay: seconds before the first retry.
        max_delay: the largest delay, in seconds.
        factor: how much each further retry's delay grows.
        jitter: fraction in ``[0, 1]``; ``0`` gives exactly partysocket's delays.
    """

    min_delay: float = 3.0
    max_delay: float = 10.0
    factor: float = 1.3
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.min_delay < 0 or self.max_delay < self.min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if self.factor < 1:
            raise ValueError("factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def base_delay(self, attempt: int) -> float:
        """The delay before ``attempt`` without jitter (``0.0`` for the first attempt)."""
        if attempt <= 0:
            return 0.0
        try:
            delay = self.min_delay * self.factor ** (attempt - 1)
        except OverflowError:  # a huge attempt count: far past the cap anyway
            return self.max_delay
        return min(delay, self.max_delay)

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The delay before ``attempt``, jittered with ``rng()`` (a float in ``[0, 1)``)."""
        base = self.base_delay(attempt)
        return base * (1 - self.jitter * rng())


#: Handshake statuses that no retry can fix: the server understood the request and said no.
#: 408 (timeout) and 429 (too many requests) are absent on purpose: they are worth a retry.
TERMINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410})


@dataclass(frozen=True)
class CloseInfo:
    """Why a connection attempt failed or an open connection ended.

    Exactly one of three shapes:

    * the server refused the handshake: ``status`` (and ``body``) are set, ``code`` is ``None``;
    * an open connection closed: ``code`` and ``reason`` are set (``1006`` when the connection
      dropped without a close frame);
    * the attempt failed before any answer (refused TCP connection, DNS, timeout, an exception
      from a ``query`` function): ``error`` is set, ``code`` and ``status`` are ``None``.
    """

    code: int | None = None
    reason: str = ""
    status: int | None = None
    body: bytes = b""
    error: BaseException | None = field(default=None, compare=False)

    @property
    def was_open(self) -> bool:
        """True when this ends a connection that had opened."""
        return self.code is not None


def default_should_reconnect(info: CloseInfo) -> bool:
    """The default rule: reconnect unless the server said, in effect, "never".

    Stops for a handshake refused with a status in :data:`TERMINAL_STATUSES` (401 and 403 for
    bad credentials, 400/404/405/410 for a request that will not get better), and for an open
    connection closed with code 1008 (policy violation) or an application code in
    ``4000-4999``. Everything else (network errors, timeouts, 5xx, 1000/1001/1006/1011/1012...)
    is retried. Applications that want a retryable 4xxx code pass their own predicate.
    """
    if info.status is not None:
        return info.status not in TERMINAL_STATUSES
    if info.code is not None:
        return not (info.code == 1008 or 4000 <= info.code <= 4999)
    return True
