"""Dev mode's watch on handlers that block the event loop.

Every room of a process shares one event loop, so a handler that blocks it
(``time.sleep``, a synchronous HTTP client, a long computation) holds up every
room. In dev mode (``partydeco dev``, ``run(reload=True)``, or ``PARTYDECO_DEV=1``)
each handler is timed, each step of an ``async def`` separately, and a step longer
than :data:`SLOW_HANDLER_SECONDS` is logged as a warning naming the handler and
where it is defined. Outside dev mode handlers are called as registered, at no cost.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from .signatures import location

__all__ = ["DEV_ENV_VAR", "SLOW_HANDLER_SECONDS", "dev_mode", "timed"]

logger = logging.getLogger("partydeco")

#: The environment variable that turns dev mode on (``1``); the reloader sets it.
DEV_ENV_VAR = "PARTYDECO_DEV"

#: A handler step longer than this (seconds) is reported in dev mode: asyncio's own
#: ``slow_callback_duration``.
SLOW_HANDLER_SECONDS = 0.1


def dev_mode() -> bool:
    """Whether this process runs in dev mode (``PARTYDECO_DEV=1``)."""
    return os.environ.get(DEV_ENV_VAR) == "1"


def timed(
    fn: Callable[..., Any], is_async: bool, threshold: float = SLOW_HANDLER_SECONDS
) -> Callable[..., Any]:
    """*fn*, reporting each run (each step of an ``async def``) longer than *threshold*.

    Args:
        fn: the handler.
        is_async: whether *fn* returns an awaitable to be awaited.
        threshold: seconds a step may take before it is reported.
    """
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    where = location(fn)

    def report(elapsed: float) -> None:
        logger.warning(
            "handler %s (%s) blocked the event loop for %.2f s: every room of this process "
            "waited. Await I/O instead of blocking, and run blocking calls with "
            "`await asyncio.to_thread(...)`",
            name,
            where,
            elapsed,
        )

    if is_async:

        @functools.wraps(fn)
        def run_async(*args: Any) -> _Steps:
            return _Steps(fn(*args), threshold, report)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - start
            if elapsed > threshold:
                report(elapsed)

    return run


class _Steps:
    """Awaits a coroutine step by step, timing each step."""

    __slots__ = ("coro", "report", "threshold")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        threshold: float,
        report: Callable[[float], None],
    ) -> None:
        self.coro = coro
        self.threshold = threshold
        self.report = report

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            start = time.perf_counter()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self._check(start)
                return stop.value
            except BaseException:
                self._check(start)
                raise
            self._check(start)
            value, error = None, None
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation and the like go to the coroutine
                error = exc

    def _check(self, start: float) -> None:
        elapsed = time.perf_counter() - start
        if elapsed > self.threshold:
            self.report(elapsed)
