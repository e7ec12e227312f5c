"""The optional packages and the extras that install them.

A part of partydeco that needs an optional package imports it through
:func:`require`, or turns a failed import into :func:`missing`: either way the user
gets a :class:`~partydeco.errors.MissingExtraError` naming the extra to install,
never a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["EXTRAS", "missing", "require"]

#: The extra that installs each optional package, by the package's import name.
EXTRAS: Mapping[str, str] = {
    "websockets": "client",
    "redis": "redis",
    "pycrdt": "yjs",
    "httpx2": "introspection",
    "authlib": "introspection",
    "uvloop": "speed",
    "uvicorn": "uvicorn",
    "httptools": "uvicorn",
    "watchfiles": "dev",
    "prometheus_client": "metrics",
    "opentelemetry": "otel",
}


def missing(error: ModuleNotFoundError, feature: str) -> ImportError:
    """The error to raise for *error*, a failed import while loading *feature*: a
    :class:`MissingExtraError` when the missing module is an optional package, else
    *error* itself."""
    package = (error.name or "").partition(".")[0]
    extra = EXTRAS.get(package)
    if extra is None:
        return error
    return MissingExtraError(feature, package, extra)


def require(package: str, feature: str) -> ModuleType:
    """Import the optional *package* for *feature*.

    Raises:
        MissingExtraError: the package is not installed.
    """
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        raise missing(error, feature) from None
