"""Stopping a server: a second signal exits at once, servers that only tell the app late
are heard early, and a cancelled connection is not a traceback.

- :func:`force_exit_on_second_signal`: once a graceful shutdown has begun, the next
  SIGINT or SIGTERM ends the process at once (exit status 128 + the signal), without
  waiting for sockets or ``on_close`` handlers.
- :func:`chain_signals`: under a server that handles the signals itself and tells
  the app only after it has closed the connections (Uvicorn closes them with 1012),
  partydeco's handler runs first, so sockets are closed with 1001 before the server
  gets to them.
- :func:`quiet_cancelled_connections`: on Python 3.11, asyncio logs a
  ``CancelledError`` traceback for every connection task a server cancels at the
  end of its graceful timeout (``StreamReaderProtocol.connection_made``'s callback
  asks a cancelled task for its exception). partydeco ends its sockets before that,
  but a peer may still outlast it; the handler drops that one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["chain_signals", "force_exit_on_second_signal", "quiet_cancelled_connections"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_now(signum: int) -> None:
    sys.stderr.write(f"partydeco: {signal.Signals(signum).name} again, exiting now\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def force_exit_on_second_signal(*, if_server: bool = False) -> None:
    """From now on, SIGINT or SIGTERM ends the process at once (main thread only).

    With *if_server*, only when a server manages the signals (SIGINT is not Python's
    default ``KeyboardInterrupt`` handler): not in a test run serving in-process.
    """
    if if_server:
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                return
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _exit_now, sig)


def chain_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Run *callback* in the event loop before the server's own SIGINT/SIGTERM handler,
    the first time either arrives; exit at once the second time.

    Only Python-level handlers a server installed are chained (not the default
    ``KeyboardInterrupt`` one, nor ignored or default dispositions), and only from the
    main thread. Returns the function that puts the server's handlers back.
    """
    loop = asyncio.get_running_loop()
    chained: list[tuple[signal.Signals, Any, Any]] = []  # (signal, the server's, ours)
    fired = False

    def make(sig: signal.Signals, previous: Callable[[int, FrameType | None], Any]) -> Any:
        def handler(signum: int, frame: FrameType | None) -> None:
            nonlocal fired
            if fired:
                _exit_now(signum)
            fired = True
            loop.call_soon_threadsafe(callback)
            previous(signum, frame)

        return handler

    for sig in SIGNALS:
        try:
            previous = signal.getsignal(sig)
        except ValueError:
            continue
        if not callable(previous) or previous is signal.default_int_handler:
            continue
        ours = make(sig, previous)
        try:
            signal.signal(sig, ours)
        except ValueError:  # not the main thread
            continue
        chained.append((sig, previous, ours))

    def unchain() -> None:
        for sig, previous, ours in chained:
            with contextlib.suppress(ValueError):
                if signal.getsignal(sig) is ours:
                    signal.signal(sig, previous)
        chained.clear()

    return unchain


def quiet_cancelled_connections(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the loop's report of a cancelled connection task (see the module); every
    other report goes to the handler that was there before."""
    previous = loop.get_exception_handler()
    if getattr(previous, "partydeco_quiet", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError) and (
            "StreamReaderProtocol" in repr(context.get("handle"))
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.partydeco_quiet = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
