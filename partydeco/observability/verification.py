"""Timing token verification where it happens: in the ready-made auth hooks.

The metrics' hook wrapper puts the party's observer in a context variable while a
``before_*`` hook runs; :func:`verify` (which the auth hooks call) times the
verifier when one is there, and costs one context-variable read when not.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

__all__ = ["observer", "verify"]

#: ``observe(seconds, outcome)`` of the party whose hook runs, while metrics are on.
observer: contextvars.ContextVar[Callable[[float, str], None] | None] = contextvars.ContextVar(
    "partydeco_verification_observer", default=None
)


async def verify(verifier: Any, token: str) -> Any:
    """``await verifier.verify(token)``, timed by outcome (``valid``, ``invalid`` for a
    refused token, ``error`` when the verifier could not decide) when observed."""
    observe = observer.get()
    if observe is None:
        return await verifier.verify(token)
    started = time.perf_counter()
    try:
        claims = await verifier.verify(token)
    except Exception as exc:
        invalid = getattr(exc, "status", None) == 401
        observe(time.perf_counter() - started, "invalid" if invalid else "error")
        raise
    observe(time.perf_counter() - started, "valid")
    return claims
