"""Handler tables that report on themselves: errors, hook latency, spans.

When metrics or tracing are on, the server serves a copy of each party's
:class:`~partydeco.dispatch.Dispatch` whose calls are wrapped: a handler's
exception is counted (and re-raised, so the room handles it as before), a
``before_*`` hook is timed, an ``on_alarm`` run is counted by outcome, and with
tracing each run is a span. With both off the tables are served as registered,
so the handlers cost nothing more.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException

from ..dispatch import KINDS, Call, Dispatch
from . import logs, verification

if TYPE_CHECKING:
    from .metrics import Metrics, PartyMeter
    from .tracing import Tracer

__all__ = ["instrument"]

_HOOKS = ("before_connect", "before_request")


def instrument(
    tables: Mapping[str, Dispatch],
    metrics: Metrics | None,
    tracer: Tracer | None,
    logged: bool = False,
) -> Mapping[str, Dispatch]:
    """The handler tables to serve: *tables* itself when nothing observes them.

    With *logged*, each run binds the log context (party, room, connection id,
    principal) from the handler's arguments.
    """
    if metrics is None and tracer is None and not logged:
        return tables
    served = {}
    for name, dispatch in tables.items():
        meter = metrics.meter(name) if metrics is not None else None
        changes: dict[str, Any] = {"meter": meter}
        for kind in KINDS:
            calls = getattr(dispatch, kind)
            changes[kind] = tuple(
                _wrap(call, kind, name, meter, tracer, logged) for call in calls
            )
        served[name] = replace(dispatch, **changes)
    return served


def _subject(kind: str, args: tuple[Any, ...]) -> tuple[str | None, Any]:
    """The room id a handler runs for, and the connection or request it serves."""
    if kind in ("on_start", "on_alarm"):
        return getattr(args[0], "id", None), None
    if kind == "on_request":
        return getattr(args[1], "id", None), args[0]
    if kind in _HOOKS:
        return getattr(args[1], "id", None), None
    conn = args[1] if kind == "on_message" else args[0]
    return getattr(conn.room, "id", None), conn


def _wrap(
    call: Call,
    kind: str,
    party: str,
    meter: PartyMeter | None,
    tracer: Tracer | None,
    logged: bool,
) -> Call:
    fn, is_async = call.fn, call.is_async
    if kind in _HOOKS:
        run = _timed_hook(fn, is_async, kind, meter)
    elif kind == "on_message" and tracer is None and not logged and not is_async:
        # the hot path: a plain function stays a plain function
        assert meter is not None
        return Call(_counted_sync(fn, kind, meter), False, call.decoder)
    else:
        run = _counted(fn, is_async, kind, meter)
    if tracer is not None:
        run = _traced(run, kind, party, tracer)
    if logged:
        run = _logged(run, kind, party)
    return Call(functools.wraps(fn)(run), True, call.decoder)


def _counted_sync(fn: Callable[..., Any], kind: str, meter: PartyMeter) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            meter.handler_error(kind, exc)
            raise

    return run


def _counted(
    fn: Callable[..., Any], is_async: bool, kind: str, meter: PartyMeter | None
) -> Callable[..., Any]:
    alarm = kind == "on_alarm"

    async def run(*args: Any) -> Any:
        try:
            result = fn(*args)
            if is_async:
                result = await result
        except HTTPException:  # abort(404) in on_request is an answer, not an error
            raise
        except Exception as exc:
            if meter is not None:
                meter.handler_error(kind, exc)
                if alarm:
                    meter.alarm("error")
            raise
        if alarm and meter is not None:
            meter.alarm("ok")
        return result

    return run


def _timed_hook(
    fn: Callable[..., Any], is_async: bool, kind: str, meter: PartyMeter | None
) -> Callable[..., Any]:
    async def run(*args: Any) -> Any:
        if meter is None:
            result = fn(*args)
            return await result if is_async else result
        token = verification.observer.set(meter.verification)
        started = time.perf_counter()
        try:
            result = fn(*args)
            return await result if is_async else result
        finally:
            meter.hook_time(kind, time.perf_counter() - started)
            verification.observer.reset(token)

    return run


def _traced(
    run: Callable[..., Any], kind: str, party: str, tracer: Tracer
) -> Callable[..., Any]:
    async def traced(*args: Any) -> Any:
        with tracer.handler(kind, party, _subject(kind, args)[0]):
            return await run(*args)

    return traced


def _logged(run: Callable[..., Any], kind: str, party: str) -> Callable[..., Any]:
    async def bound(*args: Any) -> Any:
        room, subject = _subject(kind, args)
        connection = getattr(subject, "id", None) if kind != "on_request" else None
        token = logs.bind(party, room or "", connection, getattr(subject, "principal", None))
        try:
            return await run(*args)
        finally:
            logs.unbind(token)

    return bound
