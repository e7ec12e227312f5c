"""Quart's app context around each party request and socket, at the price of what uses it.

Handlers of party URLs run in Quart's app context (``current_app``, ``g``, ``jsonify``,
extensions), one new context per request or socket, as Quart gives its own views.
Quart's ``async with app.app_context()`` also sends three signals and runs the
``teardown_appcontext`` functions; when none of them has anyone listening (the
usual case, checked on every request, so one connected later is heard), the context
is only made current: the same ``current_app`` and a fresh ``g``, without the
coroutines of pushing and popping it.
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

__all__ = ["in_app_context"]

_SIGNALS = (appcontext_pushed, appcontext_popped, appcontext_tearing_down)


def _quiet(quart: Quart) -> bool:
    """Whether pushing an app context of *quart* would do nothing but make it current."""
    return current_context is not None and not (
        quart.teardown_appcontext_funcs or any(signal.receivers for signal in _SIGNALS)
    )


async def in_app_context(quart: Quart, serve: Callable[..., Awaitable[None]], *args: Any) -> None:
    """``await serve(*args)`` in a new app context of *quart* (see the module)."""
    context = quart.app_context()
    if current_context is not None and type(context) is AppContext and _quiet(quart):
        token = current_context.set(context)
        try:
            await serve(*args)
        finally:
            current_context.reset(token)
        return
    async with context:  # an app context class of the app's own pushes as it says
        await serve(*args)
