"""What a PartySocket is given as values or as functions: query, headers, callbacks.

partysocket lets ``query`` be a function called before every connection attempt, so a
fresh token goes with each reconnect; callbacks may be sync or async. These helpers
resolve either form.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from partydeco.client.backoff import CloseInfo
from partydeco.client.url import QueryValue

__all__ = ["CloseCallback", "HeadersSource", "OpenCallback", "QuerySource", "call_back", "resolve"]

logger = logging.getLogger("partydeco.client")

_T = TypeVar("_T")
_Source = Mapping[str, _T] | Callable[[], Mapping[str, _T] | Awaitable[Mapping[str, _T]]]

#: Query parameters: a mapping, or a (sync or async) function called on every attempt.
QuerySource = (
    Mapping[str, QueryValue]
    | Callable[[], Mapping[str, QueryValue] | Awaitable[Mapping[str, QueryValue]]]
)
#: Extra handshake headers: a mapping, or a (sync or async) function called on every attempt.
HeadersSource = Mapping[str, str] | Callable[[], Mapping[str, str] | Awaitable[Mapping[str, str]]]

#: ``on_open()``, sync or async.
OpenCallback = Callable[[], Awaitable[None] | None]
#: ``on_close(info)``, sync or async.
CloseCallback = Callable[[CloseInfo], Awaitable[None] | None]


async def resolve(source: _Source[_T] | None) -> Mapping[str, _T]:
    """Return ``source`` itself, or what calling (and awaiting) it gives."""
    if source is None:
        return {}
    if callable(source):
        result = source()
        if inspect.isawaitable(result):
            result = await result
        return result
    return source


async def call_back(
    owner: str, callback: Callable[..., Awaitable[None] | None] | None, *args: Any
) -> None:
    """Run a user callback; its failure is logged and never stops the socket."""
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("%s: PartySocket callback %r failed", owner, callback)
