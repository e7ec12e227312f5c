"""What a client learns when a ``before_connect`` / ``before_request`` hook raises: PartyKit's
"an exception refuses" contract, without the exception's text (host names, tokens) and with
503 when a backend is down, so clients retry. The whole exception is logged, redacted."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from quart import abort

from partydeco import App, Party, RefusedError, Request
from partydeco.auth import InvalidTokenError, JWKSUnavailableError
from tests.support import serve
from tests.support.security_kit import refusal

TOKEN = "TOPSECRET123"
LEAK = f"Error 111 connecting to sessions-db.internal:6379 for token {TOKEN}"


#: A library's own connection error that is not an OSError, named as redis-py names its own.
LibraryConnectionError: type[Exception] = type("ConnectionError", (Exception,), {})


def raising(error: BaseException) -> App:
    app = App(storage="memory://")
    room = Party("main", app)

    async def hook(request: Request, lobby: Any) -> None:
        raise error

    room.before_connect(hook)
    room.before_request(hook)

    @room.on_connect
    async def hello(conn: Any, ctx: Any) -> None:
        conn.send("hello")

    @room.on_request
    async def answer(request: Request, _room: Any) -> str:
        return "ok"

    return app


CASES: list[tuple[BaseException, int, bytes]] = [
    (OSError(LEAK), 503, b"Service Unavailable"),
    (ConnectionError(LEAK), 503, b"Service Unavailable"),
    (LibraryConnectionError(LEAK), 503, b"Service Unavailable"),
    (TimeoutError(LEAK), 503, b"Service Unavailable"),
    (ValueError(LEAK), 401, b"Unauthorized"),
    (KeyError(LEAK), 401, b"Unauthorized"),
    (PermissionError(LEAK), 401, b"Unauthorized"),
    (RefusedError("this room is for members", status=403), 403, b"this room is for members"),
    (RefusedError(), 401, b"Unauthorized"),
    (InvalidTokenError("token expired"), 401, b"token expired"),
    (JWKSUnavailableError(), 503, b"signing keys unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "status", "body"), CASES, ids=lambda v: type(v).__name__)
async def test_a_raising_hook_refuses_without_its_message(
    error: BaseException, status: int, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="partydeco")
    app = raising(error)
    async with serve(app) as base:
        got = await refusal(base, f"/parties/main/r1?token={TOKEN}")
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"http://{base}/parties/main/r1", headers={"Authorization": f"Bearer {TOKEN}"}
            )
    assert (got[0], got[2]) == (status, body)
    assert (r.status_code, r.content) == (status, body)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert TOKEN not in logged
    if str(error) == LEAK:  # an unexpected error: logged whole, for the operator
        assert "sessions-db.internal:6379" in logged and "Traceback" in logged
        assert "[redacted]" in logged


async def test_an_http_exception_keeps_its_status_and_description() -> None:
    app = App(storage="memory://")
    room = Party("main", app)

    @room.before_request
    async def forbid(request: Request, lobby: Any) -> None:
        abort(403, "ask the owner for an invitation")

    @room.on_request
    async def answer(request: Request, _room: Any) -> str:
        return "ok"

    async with serve(app) as base, httpx.AsyncClient() as http:
        r = await http.get(f"http://{base}/parties/main/r1")
    assert (r.status_code, r.text) == (403, "ask the owner for an invitation")


def test_refused_error_checks_its_status() -> None:
    with pytest.raises(ValueError, match="status must be an HTTP error status"):
        RefusedError("x", status=200)
    assert repr(RefusedError("no", status=404)) == "RefusedError('no', status=404)"
