"""Handler signatures, checked when a handler is registered.

partydeco calls each kind of handler with a fixed number of positional arguments
(``on_message(message, sender)``, ``on_close(connection, code, reason)``, ...) and
awaits what an ``async def`` returns. A handler that cannot be called that way
would fail only when the first event arrives, far from the mistake; the check here
makes the decorator raise :class:`HandlerSignatureError` instead, naming the
handler, where it is defined and the signature partydeco expects.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import HandlerSignatureError

__all__ = ["PARAMETERS", "check_handler", "describe", "location"]

#: The arguments partydeco passes to each kind of handler, by kind.
PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "before_connect": ("request", "lobby"),
    "before_request": ("request", "lobby"),
    "on_start": ("room",),
    "on_connect": ("connection", "ctx"),
    "on_message": ("message", "sender"),
    "on_close": ("connection", "code", "reason"),
    "on_error": ("connection", "error"),
    "on_request": ("request", "room"),
    "connection_tags": ("connection", "ctx"),
    "on_alarm": ("room",),
    "on_cron": ("cron", "lobby"),
    "on_join": ("user", "room"),
    "on_leave": ("user", "room"),
}


def check_handler(kind: str, f: Callable[..., Any], params: Sequence[str] | None = None) -> None:
    """Check that partydeco can call *f* as a *kind* handler with *params*.

    Args:
        kind: the handler kind, as the decorator is named (``"on_message"``).
        f: the handler.
        params: the names of the arguments partydeco passes; by default
            :data:`PARAMETERS` of *kind*.

    Raises:
        HandlerSignatureError: *f* is a generator function, or it cannot take
            exactly these positional arguments.
    """
    params = tuple(PARAMETERS[kind] if params is None else params)
    if inspect.isasyncgenfunction(f) or inspect.isgeneratorfunction(f):
        what = "an async generator" if inspect.isasyncgenfunction(f) else "a generator"
        _fail(kind, f, params, f"it is {what} function (it contains yield); return instead")
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check against
    try:
        signature.bind(*params)
    except TypeError as exc:
        _fail(kind, f, params, str(exc))


def describe(kind: str, f: Callable[..., Any], params: Sequence[str]) -> str:
    """The signature partydeco expects of *f*, as a line of Python (``async def relay(message,
    sender)``)."""
    name = _name(f)
    if not name.isidentifier():
        name = kind
    return f"async def {name}({', '.join(params)})"


def location(f: Callable[..., Any]) -> str:
    """Where *f* is defined, as ``file:line`` (relative to the working directory when it
    is under it), or ``"unknown location"``."""
    target: Any = inspect.unwrap(f)
    while isinstance(target, functools.partial):
        target = target.func
    code = getattr(target, "__code__", None)
    if code is None:
        code = getattr(getattr(type(target), "__call__", None), "__code__", None)  # noqa: B004
    if code is None:
        return "unknown location"
    path = code.co_filename
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        relative = path
    if not relative.startswith(os.pardir):
        path = relative
    return f"{path}:{code.co_firstlineno}"


def _name(f: Callable[..., Any]) -> str:
    name = getattr(f, "__name__", None)
    if isinstance(name, str):
        return name
    func = getattr(f, "func", None)  # functools.partial
    if func is not None:
        return _name(func)
    return type(f).__name__


def _fail(kind: str, f: Callable[..., Any], params: Sequence[str], reason: str) -> None:
    name = _name(f)
    expected = describe(kind, f, params)
    raise HandlerSignatureError(
        f"{kind} handler {name} ({location(f)}) cannot be called as "
        f"{name}({', '.join(params)}): {reason}. Define it as `{expected}` "
        "(or a plain def with the same arguments)",
        kind=kind,
        handler=f,
        expected=expected,
        where=location(f),
    )
