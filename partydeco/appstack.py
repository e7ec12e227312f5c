"""The default app: the innermost ``with App()``, else the global one.

``partydeco.party`` and ``Party("name")`` made without an app register on the
app at the top of this stack, looked up at each call, so a test can swap the app
with ``with App() as app:``. :mod:`partydeco.app` pushes the global app when it
is imported, so the stack is never empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SetupError

if TYPE_CHECKING:
    from .app import App

__all__ = ["default_app", "pop", "push"]

_stack: list[App] = []


def default_app() -> App:
    """The current default app: the innermost ``with App()``, else the global one."""
    return _stack[-1]


def push(app: App) -> None:
    """Make *app* the default app until it is popped."""
    _stack.append(app)


def pop(app: App) -> None:
    """Undo the :func:`push` of *app*.

    Raises:
        SetupError: *app* is not the innermost default app.
    """
    if len(_stack) > 1 and _stack[-1] is app:
        _stack.pop()
    else:
        raise SetupError("App contexts were exited out of order")
