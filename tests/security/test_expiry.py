"""Tokens expiring on open sockets: close with 3005 on time, refresh over the socket,
and partysocket's reconnect with a fresh token from its ``query`` function."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from partydeco import App, Party, Request, auth
from partydeco.client import Backoff, PartySocket
from partydeco.outbox import Outbox
from partydeco.security import expiry
from tests.support import eventually, serve
from tests.support.security_kit import Seen, echo_app, open_ws

SECRET = "expiry-tests-secret-0123456789abcdef-0123456789"


def token(sub: str = "alice", expires_in: int = 2) -> str:
    return auth.issue_token(SECRET, sub, expires_in=expires_in)


def exp_of(jwt: str) -> int:
    import base64

    payload = jwt.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "==="))["exp"])


def auth_app(seen: Seen, **options: Any) -> App:
    """The echo app of ``security_kit``, its sockets authenticated with HS256 JWTs."""
    app = echo_app(seen, token_leeway=0, **options)
    verifier = auth.JWTVerifier.from_secret(SECRET, leeway=0)
    app.party("main").before_connect(auth.before_connect_hook(verifier))
    return app


async def closed_with(ws: ClientConnection, timeout: float) -> tuple[int, str, float]:
    """Read until the server closes; the code, reason and wall-clock time of the close."""
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    at = time.time()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or "", at


async def test_expired_token_closes_socket_on_time_with_3005() -> None:
    seen = Seen()
    jwt = token(expires_in=2)
    exp = exp_of(jwt)
    async with serve(auth_app(seen)) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        code, reason, at = await closed_with(ws, timeout=exp - time.time() + 3)
        await asyncio.wait_for(seen.closed.wait(), 5)
    assert (code, reason) == (3005, "token expired")
    assert exp - 0.05 <= at <= exp + 1.0, (at, exp)
    assert seen.closes == [(3005, "token expired")]


async def test_leeway_delays_the_close() -> None:
    seen = Seen()
    jwt = token(expires_in=1)
    exp = exp_of(jwt)
    app = auth_app(seen)
    app.configure_party("main", token_leeway=1.5)
    async with serve(app) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        code, _, at = await closed_with(ws, timeout=exp - time.time() + 4)
    assert code == 3005
    assert at >= exp + 1.5 - 0.05


async def test_refresh_keeps_the_socket_open() -> None:
    seen = Seen()
    jwt = token(expires_in=2)
    exp = exp_of(jwt)
    async with serve(auth_app(seen, token_refresh=True)) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        fresh = token(expires_in=120)
        await ws.send(json.dumps({"type": "partydeco.refresh", "token": fresh}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack == {"type": "partydeco.refreshed", "expires_at": exp_of(fresh)}
        # the old expiry passes: no close may arrive
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), exp - time.time() + 1.0)
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 5) == "still here"
        await ws.close()
    assert seen.messages == ["still here"]  # the refresh frame never reached on_message


@pytest.mark.parametrize(
    ("frame", "error", "detail"),
    [
        (lambda: {"type": "partydeco.refresh", "token": token("mallory", 120)},
         "invalid_token", "token is for a different subject"),
        (lambda: {"type": "partydeco.refresh", "token": "not-a-jwt"},
         "invalid_token", "malformed token"),
        (lambda: {"type": "partydeco.refresh", "token": auth.issue_token("other-secret-" * 4,
                                                                        "alice", expires_in=60)},
         "invalid_token", "bad token signature"),
        (lambda: {"type": "partydeco.refresh"}, "malformed", None),
    ],
    ids=["other-subject", "garbage", "wrong-key", "no-token"],
)  # fmt: skip
async def test_refused_refresh_keeps_the_old_expiry(
    frame: Any, error: str, detail: str | None
) -> None:
    seen = Seen()
    jwt = token(expires_in=2)
    exp = exp_of(jwt)
    async with serve(auth_app(seen, token_refresh=True)) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        sent = frame()
        await ws.send(json.dumps(sent, separators=(",", ":")))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["type"] == "partydeco.refresh_error"
        assert answer["error"] == error
        if detail is not None:
            assert answer["detail"] == detail
        if "token" in sent and len(sent["token"]) > 8:
            assert sent["token"] not in json.dumps(answer)
        code, _, at = await closed_with(ws, timeout=exp - time.time() + 3)
    assert code == 3005
    assert at <= exp + 1.0
    assert seen.messages == []


async def test_messages_that_only_mention_refresh_reach_on_message() -> None:
    seen = Seen()
    jwt = token(expires_in=60)
    frames = [
        json.dumps({"text": '"partydeco.refresh" is a frame type'}),
        json.dumps({"type": "partydeco.refreshed", "token": "x"}),
        '"partydeco.refresh"',
        "[1, 2, \"partydeco.refresh\"]",
    ]
    async with serve(auth_app(seen, token_refresh=True)) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        for frame in frames:
            await ws.send(frame)
            assert await asyncio.wait_for(ws.recv(), 5) == frame
        await ws.close()
    assert seen.messages == frames


async def test_refresh_frames_are_ordinary_messages_unless_enabled() -> None:
    seen = Seen()
    jwt = token(expires_in=60)
    frame = json.dumps({"type": "partydeco.refresh", "token": token(expires_in=120)})
    async with serve(auth_app(seen)) as base:
        ws = await open_ws(base, f"/parties/main/r1?token={jwt}")
        await ws.send(frame)
        assert await asyncio.wait_for(ws.recv(), 5) == frame
        await ws.close()
    assert seen.messages == [frame]


def session_app(deadline: float) -> App:
    """An app whose ``before_connect`` hook sets *deadline* as every socket's expiry."""
    app = App(storage="memory://", token_leeway=0)
    room = Party("main", app)

    @room.before_connect
    async def session(request: Request, lobby: object) -> Request:
        request.expires_at = deadline
        return request

    @room.on_connect
    async def hello(conn: Any, ctx: Any) -> None:
        conn.send("hello")

    return app


async def test_any_hook_can_set_expires_at() -> None:
    deadline = time.time() + 0.5
    async with serve(session_app(deadline)) as base:
        ws = await open_ws(base)
        code, _, at = await closed_with(ws, timeout=5)
    assert code == 3005
    assert deadline - 0.05 <= at <= deadline + 1.0


async def test_a_far_expiry_is_swept_in_then_closes_on_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(expiry, "HORIZON", 0.4)  # swept every 0.2 s; armed 0.4 s ahead
    deadline = time.time() + 1.0
    async with serve(session_app(deadline)) as base:
        ws = await open_ws(base)
        assert len(expiry._far[asyncio.get_running_loop()].due) == 1
        code, _, at = await closed_with(ws, timeout=5)
    assert code == 3005
    assert deadline - 0.05 <= at <= deadline + 1.0


async def test_a_closed_socket_leaves_no_far_expiry() -> None:
    async with serve(session_app(time.time() + 3600)) as base:
        ws = await open_ws(base)
        far = expiry._far[asyncio.get_running_loop()]
        assert len(far.due) == 1
        await ws.close()
        await eventually(lambda: not far.due, message="the expiry is still waiting")


def test_the_far_expiries_of_closed_loops_are_forgotten() -> None:
    async def arm_one() -> None:
        outbox = Outbox(send, max_messages=1, max_bytes=1, close_timeout=1)
        expiry.Expiry(outbox, time.time() + 3600)

    async def send(message: Any) -> None:
        pass

    for _ in range(3):
        asyncio.run(arm_one())
    assert len(expiry._far) == 1  # only the last loop's, until another loop arms one


async def test_client_header_cannot_set_an_expiry() -> None:
    seen = Seen()
    async with serve(auth_app(seen)) as base:
        jwt = token(expires_in=60)
        ws = await open_ws(
            base, f"/parties/main/r1?token={jwt}", headers={"Expires-At": "0", "X-Expires-At": "0"}
        )
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "ping"
        await ws.close()


async def test_partysocket_reconnects_with_a_fresh_token() -> None:
    seen = Seen()
    issued: list[str] = []

    def query() -> dict[str, str]:
        issued.append(token(expires_in=1 if not issued else 120))
        return {"token": issued[-1]}

    greetings: list[float] = []
    async with serve(auth_app(seen)) as base:
        socket = PartySocket(base, "r1", query=query, backoff=Backoff(0.05, 0.1, jitter=0))
        async with socket:
            async with asyncio.timeout(10):
                async for message in socket:
                    if message == "hello":
                        greetings.append(time.time())
                        if len(greetings) == 2:
                            break
            assert socket.close_info is not None
            assert socket.close_info.code == 3005
            await socket.send("on the second connection")
            async with asyncio.timeout(5):
                assert await socket.recv() == "on the second connection"
    assert len(issued) == 2
    assert seen.closes[0] == (3005, "token expired")
