"""Start-up diagnostics: the configuration handlers declared they need, checked as the
app starts.

A hook that reads a secret from the environment fails every request when the secret
is missing, and only says so (if at all) when the first client arrives. A handler
declares what it reads with :func:`requires_env`; the ready-made hooks of
:mod:`partydeco.auth` declare theirs. As the app starts, every declared variable
missing from the environment and ``.env`` is logged as a warning naming the
handler, where it is defined and the variable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .dispatch import KINDS, PartyHandlers
from .signatures import location

__all__ = ["declared_env", "missing_env", "requires_env", "warn_missing_env"]

logger = logging.getLogger("partydeco")

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__partydeco_requires_env__"


def requires_env(*names: str) -> Callable[[F], F]:
    """Declare the environment variables a handler reads; returns the handler unchanged.

    As the app starts, each one that is missing or empty (in the environment and in
    ``.env``) is logged as a warning naming the handler, so a server without its
    secret says so at once instead of refusing every client in silence.

    Example::

        @party.before_connect
        @requires_env("TOKEN")
        async def authenticate(request, lobby):
            ...

    Args:
        *names: the variables' names.

    Raises:
        ValueError: no name, or a name that is not a non-empty string.
    """
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("requires_env() needs the names of environment variables")

    def declare(f: F) -> F:
        setattr(f, _ATTRIBUTE, (*declared_env(f), *names))
        return f

    return declare


def declared_env(f: Callable[..., Any]) -> tuple[str, ...]:
    """The environment variables *f* declared with :func:`requires_env`."""
    names = getattr(f, _ATTRIBUTE, ())
    return tuple(names) if isinstance(names, tuple) else ()


def missing_env(handlers: Mapping[str, PartyHandlers], env: Mapping[str, str]) -> list[str]:
    """One message for each variable a registered handler declared and *env* lacks (a
    function registered for several kinds, a hook for WebSockets and HTTP, once)."""
    messages = []
    for party, table in handlers.items():
        kinds: dict[Callable[..., object], list[str]] = {}
        for kind in KINDS:
            for f in getattr(table, kind):
                kinds.setdefault(f, []).append(kind)
        for f, registered in kinds.items():
            for name in dict.fromkeys(declared_env(f)):
                if not env.get(name):
                    handler = getattr(f, "__qualname__", None) or repr(f)
                    messages.append(
                        f"{name} is not set (environment or .env): "
                        f"{' and '.join(dict.fromkeys(registered))} handler "
                        f"{handler} ({location(f)}) of party {party!r} needs it"
                    )
    return messages


def warn_missing_env(handlers: Mapping[str, PartyHandlers], env: Mapping[str, str]) -> None:
    """Log :func:`missing_env` as warnings."""
    for message in missing_env(handlers, env):
        logger.warning("%s", message)
