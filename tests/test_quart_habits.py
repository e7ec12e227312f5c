"""What Quart users write works in party handlers: tuples, Quart and Werkzeug responses,
``jsonify``, ``current_app`` and ``g``; and dev mode names a handler that blocks the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import quart
import werkzeug
from quart import current_app, g, jsonify

from partydeco import App, ConnectContext, Connection, Request, Room, party
from partydeco.testing import TestClient
from tests.support import eventually


async def test_on_request_answers_what_a_quart_view_returns() -> None:
    with App() as app:

        @party.on_request
        async def answer(request: Request, room: Room) -> Any:
            kind = request.args.get("kind")
            if kind == "status":
                return "created", 201
            if kind == "headers":
                return {"ok": True}, 202, {"X-Kind": "headers", "Cache-Control": "no-store"}
            if kind == "only-headers":
                return "hi", {"X-Kind": "only"}
            if kind == "quart":
                return quart.Response("quart body", status=418, headers={"X-From": "quart"})
            if kind == "werkzeug":
                return werkzeug.Response(b"\x00bytes", status=203, mimetype="application/x-raw")
            if kind == "jsonify":
                return jsonify(room=room.id, app=current_app.name), 200
            if kind == "list":
                return ["a", 1]
            return None

        async with TestClient(app) as client:
            r = await client.get("/parties/main/r?kind=status")
            assert (r.status, r.text, r.header("content-type")) == (
                201, "created", "text/plain; charset=utf-8",
            )  # fmt: skip
            r = await client.get("/parties/main/r?kind=headers")
            assert (r.status, r.json(), r.header("x-kind")) == (202, {"ok": True}, "headers")
            assert r.header("cache-control") == "no-store"
            r = await client.get("/parties/main/r?kind=only-headers")
            assert (r.status, r.text, r.header("x-kind")) == (200, "hi", "only")
            r = await client.get("/parties/main/r?kind=quart")
            assert (r.status, r.text, r.header("x-from")) == (418, "quart body", "quart")
            assert [v for k, v in r.headers if k == "content-length"] == ["10"]
            r = await client.get("/parties/main/r?kind=werkzeug")
            assert (r.status, r.body, r.header("content-type")) == (
                203, b"\x00bytes", "application/x-raw",
            )  # fmt: skip
            r = await client.get("/parties/main/r?kind=jsonify")
            assert (r.status, r.json()) == (200, {"room": "r", "app": "partydeco"})
            assert r.header("content-type") == "application/json"
            r = await client.get("/parties/main/r?kind=list")
            assert r.json() == ["a", 1]


async def test_a_value_that_is_no_answer_is_a_500_naming_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with App() as app:

        @party.on_request
        async def broken(request: Request, room: Room) -> Any:
            return {"a": "too"}, 200, {}, "many"

        async with TestClient(app) as client:
            with caplog.at_level(logging.ERROR, logger="partydeco"):
                r = await client.get("/parties/main/r")
    assert (r.status, r.text) == (500, "Internal Server Error")
    (record,) = [r for r in caplog.records if "broken" in r.getMessage()]
    assert record.getMessage().startswith("on_request handler ")
    assert "test_quart_habits.py:" in record.getMessage()
    assert "a tuple of 4 items; return (body, status)" in record.getMessage()


async def test_handlers_run_in_quart_s_app_context() -> None:
    seen: list[Any] = []
    with App() as app:
        app.quart.config["GREETING"] = "hello"
        app.quart.extensions["counter"] = {"n": 0}

        @party.on_connect
        async def hello(connection: Connection, ctx: ConnectContext) -> None:
            g.user = connection.id  # g lives as long as the socket
            connection.send(current_app.config["GREETING"])

        @party.on_message
        def count(message: str, sender: Connection) -> None:
            current_app.extensions["counter"]["n"] += 1
            sender.send(f"{g.user} {current_app.extensions['counter']['n']}")

        @party.on_request
        async def alarm(request: Request, room: Room) -> str:
            await room.storage.set_alarm(time.time())
            return "set"

        @party.on_alarm
        async def ring(room: Room) -> None:
            seen.append(current_app.name)

        async with TestClient(app) as client:
            async with client.connect("r", id="alice") as ws:
                assert await ws.receive() == "hello"
                await ws.send("x")
                assert await ws.receive() == "alice 1"
            assert (await client.get("/parties/main/r")).text == "set"
            await eventually(lambda: seen, message="on_alarm did not run")
    assert seen == ["partydeco"]


async def test_each_request_gets_a_fresh_g_and_teardowns_and_signals_run_once_registered() -> None:
    torn: list[BaseException | None] = []
    pushed: list[Any] = []
    with App() as app:

        @party.on_request
        async def remember(request: Request, room: Room) -> str:
            seen = g.get("seen", "nothing")
            g.seen = request.args.get("n")
            return f"{seen} {current_app.name}"

        async with TestClient(app) as client:
            assert (await client.get("/parties/main/r?n=1")).text == "nothing partydeco"
            assert (await client.get("/parties/main/r?n=2")).text == "nothing partydeco"
            # registered while serving: heard from the next request on
            app.quart.teardown_appcontext(torn.append)

            def on_push(sender: Any, **extra: Any) -> None:
                pushed.append(sender)

            quart.appcontext_pushed.connect(on_push, weak=False)
            try:
                assert (await client.get("/parties/main/r?n=3")).text == "nothing partydeco"
                assert torn == [None]
                assert pushed == [app.quart]
            finally:
                quart.appcontext_pushed.disconnect(on_push)


async def test_dev_mode_names_a_handler_that_blocks_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PARTYDECO_DEV", "1")
    with App() as app:

        @party.on_message
        def blocking(message: str, sender: Connection) -> None:
            time.sleep(0.15)  # what a synchronous HTTP call does to the loop

        @party.on_request
        async def slow_async(request: Request, room: Room) -> str:
            await asyncio.sleep(0.15)  # waiting without blocking is fine
            time.sleep(0.15)  # noqa: ASYNC251 - the mistake dev mode reports
            return "done"

        async with TestClient(app) as client:
            with caplog.at_level(logging.WARNING, logger="partydeco"):
                async with client.connect("r") as ws:
                    await ws.send("x")
                assert (await client.get("/parties/main/r")).text == "done"
    messages = [r.getMessage() for r in caplog.records]
    warnings = [m for m in messages if "blocked the event loop" in m]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("handler test_dev_mode_names_a_handler_that_blocks_the_loop.")
    assert ".blocking (tests/test_quart_habits.py:" in warnings[0]
    assert ".slow_async (tests/test_quart_habits.py:" in warnings[1]
    assert "asyncio.to_thread" in warnings[0]


async def test_outside_dev_mode_handlers_are_called_as_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PARTYDECO_DEV", raising=False)
    with App() as app:

        @party.on_message
        def relay(message: str, sender: Connection) -> None: ...

        (call,) = app.freeze()["main"].on_message
        assert call.fn is relay
    monkeypatch.setenv("PARTYDECO_DEV", "1")
    with App() as app:
        party.on_message(relay)
        (call,) = app.freeze()["main"].on_message
        assert call.fn is not relay and call.fn.__wrapped__ is relay
