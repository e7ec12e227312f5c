"""Quart's app context around each party request and socket, at the price of what uses it.

Handlers of party URLs run in Quart's app context (``current_app``, ``g``, ``jsonify``,
extensions), one new context per request or socket, as Quart gives its own views.
Quart's ``async with app.app_context()`` also sends three signals and runs the
``teardown_appcontext`` functions; when none of them has anyone listening (the
usual case, checked on every request, so one connected later is heard),
:func:`quiet_context` gives a context that the caller only makes current in
:data:`current_context`: the same ``current_app`` and a fresh ``g``, without the
coroutines of pushing and popping it. Otherwise :func:`in_app_context` pushes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from quart.ctx import AppContext
from quart.signals import appcontext_popped, appcontext_pushed, appcontext_tearing_down

current_context: ContextVar[AppContext] | None
try:  # the context variable Quart (0.20-0.22) keeps the current app context in
    from quart.globals import _cv_app as current_context
except ImportError:  # pragma: no cover - another Quart: always the full push
    current_context = None

if TYPE_CHECKING:
    from quart import Quart

__all__ = ["current_context", "in_app_context", "quiet_context"]


def quiet_context(quart: Quart) -> AppContext | None:
    """A new app context of *quart* that needs only to be made current in
    :data:`current_context`, or ``None`` when pushing one does more (a teardown
    function, a signal receiver, an app context class of the app's own)."""
    if current_context is None or quart.teardown_appcontext_funcs:
        return None
    if appcontext_pushed.receivers or appcontext_popped.receivers:
        return None
    if appcontext_tearing_down.receivers:
        return None
    context = quart.app_context()
    return context if type(context) is AppContext else None


async def in_app_context(quart: Quart, serve: Callable[..., Awaitable[None]], *args: Any) -> None:
    """``await serve(*args)`` in a new app context of *quart*, pushed as Quart pushes it."""
    async with quart.app_context():
        await serve(*args)
