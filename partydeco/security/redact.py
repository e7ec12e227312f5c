"""Keeping a request's credentials out of log lines.

A hook that fails may put anything in its exception: a token it was checking, a
connection string with a password. Before such text is logged, every value the
client sent that could be a credential (query parameter values, the
``Authorization`` and ``Cookie`` headers, the subprotocols a browser offers a
token in) is replaced with ``[redacted]``.
"""

from __future__ import annotations

import re
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..request import Request

__all__ = ["REDACTED", "describe", "redact", "secrets_of"]

REDACTED = "[redacted]"

#: Shorter values are left alone: redacting "1" would garble every number in a line.
MIN_SECRET = 4

_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "x-auth-token")
_COOKIE = re.compile(r"[^=;\s]+=([^;]*)")


def secrets_of(request: Request) -> list[str]:
    """The values in *request* that may be credentials, longest first."""
    found: set[str] = set()
    for values in request.args.listvalues():
        found.update(values)
    for name, value in request.headers.items():
        key = name.lower()
        if key in _CREDENTIAL_HEADERS:
            found.add(value)
            found.update(value.split())  # the credentials after "Bearer", "Basic", ...
        elif key == "cookie":
            found.update(match.group(1).strip('"') for match in _COOKIE.finditer(value))
        elif key == "sec-websocket-protocol":
            found.update(part.strip() for part in value.split(","))
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """*text* with every one of *secrets* replaced by ``[redacted]``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def describe(error: BaseException, request: Request) -> str:
    """*error* with its traceback and causes, as a log line may show it, redacted."""
    text = "".join(traceback.format_exception(error)).rstrip()
    return redact(text, secrets_of(request))
