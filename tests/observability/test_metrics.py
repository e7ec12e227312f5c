"""Prometheus metrics through a real Hypercorn server: they move exactly as things happen."""

from __future__ import annotations

import sys
import time

import httpx
import pytest
from prometheus_client import generate_latest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room
from partydeco.errors import SetupError
from partydeco.observability.metrics import METRIC_NAMES, Metrics, close_label
from partydeco.observability.watch import SocketWatch
from partydeco.routing import Route
from partydeco.server.runtime import Runtime
from tests.support import eventually, serve
from tests.support.scrape import samples, scrape, value


def metered_app(**options: object) -> App:
    options.setdefault("metrics", True)
    app = App(storage="memory://", **options)  # type: ignore[arg-type]
    main = app.party()

    @main.before_connect
    def authenticate(request: Request, lobby: Lobby) -> Request | Response:
        if request.args.get("token") != "good":
            return Response("Unauthorized", 401)
        return request

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send("hello")

    @main.on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "count":
            n = (await sender.room.storage.get("n") or 0) + 1
            await sender.room.storage.put("n", n)
            sender.send(f"count:{n}")
        elif isinstance(message, str) and message.startswith("close:"):
            sender.close(int(message[6:]))
        else:
            sender.room.broadcast(message)

    @main.on_request
    def info(request: Request, room: Room) -> dict[str, str]:
        return {"room": room.id}

    return app


async def test_metrics_move_as_sockets_connect_talk_get_refused_and_close() -> None:
    app = metered_app()
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/r1"
        async with connect(f"{url}?token=good") as alice:
            assert await alice.recv() == "hello"
            async with connect(f"{url}?token=good") as bob:
                assert await bob.recv() == "hello"
                text = await scrape(base)
                assert value(text, "partydeco_connections", party="main") == 2
                assert value(text, "partydeco_rooms", party="main") == 1
                assert value(text, "partydeco_handshakes_total", party="main",
                             outcome="accepted", status="101") == 2  # fmt: skip
                with pytest.raises(InvalidStatus):
                    async with connect(f"{url}?token=bad"):
                        pass
                with pytest.raises(InvalidStatus):
                    async with connect(f"ws://{base}/parties/nosuchparty/r1"):
                        pass
                await alice.send("hello")  # broadcast to both
                assert await alice.recv() == await bob.recv() == "hello"
                await alice.send("boom")
                await alice.send("count")
                assert await alice.recv() == "count:1"
                await bob.send("close:4001")
                with pytest.raises(ConnectionClosed):
                    await bob.recv()
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://{base}/parties/main/r1")).status_code == 200
        await eventually(
            lambda: app.runtime is not None and not app.runtime.sockets, message="sockets open"
        )
        text = await scrape(base)
    got = samples(text)
    m = {"party": "main"}

    def at(name: str, **labels: str) -> float:
        return got.get((name, frozenset({**m, **labels}.items())), 0.0)

    assert at("partydeco_connections") == 0
    assert at("partydeco_handshakes_total", outcome="accepted", status="101") == 2
    assert at("partydeco_handshakes_total", outcome="hook", status="401") == 1
    assert value(text, "partydeco_handshakes_total", party="_unknown", outcome="not_found",
                 status="404") == 1  # fmt: skip
    # frames from clients: hello, boom, count, close:4001
    assert at("partydeco_messages_received_total") == 4
    assert at("partydeco_received_bytes_total") == len("hello" "boom" "count" "close:4001")
    # frames to clients: two greetings, one broadcast to two, count:1
    assert at("partydeco_messages_sent_total") == 5
    assert at("partydeco_sent_bytes_total") == 2 * 5 + 2 * 5 + len("count:1")
    assert at("partydeco_broadcasts_total") == 1
    assert at("partydeco_broadcast_receivers_total") == 2
    assert at("partydeco_handler_errors_total", handler="on_message", error="RuntimeError") == 1
    assert at("partydeco_closes_total", code="4xxx") == 1  # bob's 4001, closed by the room
    assert at("partydeco_closes_total", code="1000") == 1  # alice left
    assert at("partydeco_hook_seconds_count", hook="before_connect") == 3
    assert at("partydeco_storage_seconds_count", operation="get") == 1
    assert at("partydeco_storage_seconds_count", operation="write") == 1
    assert at("partydeco_http_requests_total", status="200") == 1
    assert value(text, "partydeco_backplane_up") == 1
    # the process's own metrics (prometheus-client's default registry) are there too
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in got)


async def test_a_limit_refusal_is_counted_as_one() -> None:
    app = metered_app(max_connections_per_room=1)
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/full?token=good"
        async with connect(url) as first:
            assert await first.recv() == "hello"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 503
            text = await scrape(base)
    assert value(text, "partydeco_handshakes_total", party="main", outcome="limit",
                 status="503") == 1  # fmt: skip


async def test_alarm_runs_and_retries_are_counted() -> None:
    app = App(metrics=True, storage="memory://", alarm_retry_delay=0.05)
    main = app.party()
    runs: list[float] = []

    @main.on_request
    async def arm(request: Request, room: Room) -> str:
        await room.storage.set_alarm(time.time())
        return "armed"

    @main.on_alarm
    def ring(room: Room) -> None:
        runs.append(time.time())
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    async with serve(app) as base:
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{base}/parties/main/a")
        await eventually(lambda: len(runs) == 2, message="the alarm did not run twice")

        async def counted() -> bool:
            text = await scrape(base)
            return (
                value(text, "partydeco_alarm_runs_total", party="main", outcome="ok") == 1
                and value(text, "partydeco_alarm_runs_total", party="main", outcome="error") == 1
                and value(text, "partydeco_alarm_retries_total", party="main") == 1
            )

        await eventually(counted, message="alarm metrics did not move")


async def test_the_metrics_url_takes_a_path_and_a_token() -> None:
    app = metered_app(metrics_path="/ops/metrics", metrics_token="scrape-me")
    async with serve(app) as base, httpx.AsyncClient() as client:
        refused = await client.get(f"http://{base}/ops/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get(
            f"http://{base}/ops/metrics", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert (await client.get(f"http://{base}/metrics")).status_code == 404
        text = await scrape(base, "/ops/metrics", token="scrape-me")
        assert "partydeco_connections" in text
        posted = await client.post(
            f"http://{base}/ops/metrics", headers={"Authorization": "Bearer scrape-me"}
        )
        assert posted.status_code == 405


async def test_environment_turns_metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTYDECO_METRICS", "1")
    monkeypatch.setenv("PARTYDECO_METRICS_TOKEN", "from-env")
    app = App(storage="memory://")
    async with serve(app) as base:
        assert "partydeco_rooms" in await scrape(base, token="from-env")


async def test_off_by_default_and_nothing_is_wrapped() -> None:
    app = metered_app(metrics=False)
    async with serve(app) as base, httpx.AsyncClient() as client:
        assert (await client.get(f"http://{base}/metrics")).status_code == 404
        assert (await client.get(f"http://{base}/readyz")).status_code == 404
        runtime = app.runtime
        assert runtime is not None
        # the handler tables are served as registered, and sockets are not watched
        assert runtime.dispatch is app.freeze()
        assert runtime.ops.watch_socket(Route("main", "r", ""), {}) is None
        async with connect(f"ws://{base}/parties/main/r?token=good") as ws:
            assert await ws.recv() == "hello"
            (outbox,) = runtime.sockets
            assert outbox.meter is None


def test_metrics_without_prometheus_client_name_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(SetupError, match=r"partydeco\[metrics\]"):
        Runtime(App(metrics=True, storage="memory://"))


def test_close_codes_are_labelled_by_class_beyond_the_known_ones() -> None:
    assert [close_label(c) for c in (1000, 1013, 3005, 4409, 3999, 4001, 4999, 2000)] == [
        "1000", "1013", "3005", "4409", "3xxx", "4xxx", "4xxx", "other",
    ]  # fmt: skip


def test_an_outbox_overflow_is_counted_with_its_close() -> None:
    metrics = Metrics(["main"])
    watch = SocketWatch(Route("main", "r", ""), {}, metrics.meter("main"), None, False)
    watch.meter.connections.inc()  # type: ignore[union-attr]
    watch.closed(1006, (1013, "send queue full"))
    text = generate_latest(metrics.registry).decode()
    assert value(text, "partydeco_outbox_overflows_total", party="main") == 1
    assert value(text, "partydeco_closes_total", party="main", code="1006") == 1
    assert value(text, "partydeco_connections", party="main") == 0


def test_every_metric_is_labelled_by_party_at_most() -> None:
    for name, (_, _, labels) in METRIC_NAMES.items():
        assert "room" not in labels and "user" not in labels and "principal" not in labels, name
        assert not labels or labels[0] == "party", name


async def test_frames_are_flushed_every_second_while_serving() -> None:
    app = metered_app()
    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/f?token=good") as ws:
            assert await ws.recv() == "hello"
            await ws.send("x")
            assert await ws.recv() == "x"
            runtime = app.runtime
            assert runtime is not None and runtime.ops.metrics is not None
            registry = runtime.ops.metrics.registry
            # no scrape: the server's own flush moves the count within a second or so
            await eventually(
                lambda: registry.get_sample_value(
                    "partydeco_messages_received_total", {"party": "main"}
                ) == 1,
                timeout=3,
                message="not flushed",
            )
