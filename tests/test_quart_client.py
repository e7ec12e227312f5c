"""Behaviour through Quart's test client: fast, in-process, no network."""

from __future__ import annotations

import msgspec
import pytest
from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError
from werkzeug.exceptions import Forbidden

from partydeco import (
    App,
    ConnectContext,
    Connection,
    Lobby,
    Party,
    Request,
    Response,
    Room,
    StateTooLarge,
    party,
)


class Chat(msgspec.Struct, tag="chat"):
    text: str


class Move(msgspec.Struct, tag="move"):
    x: int
    y: int


def make_app() -> App:
    app = App()
    with app:

        @party.on_connect
        async def hello(connection: Connection, ctx: ConnectContext) -> None:
            connection.send(f"hello {ctx.request.headers.get('X-User-ID', 'anon')} {connection.id}")

        @party.on_message
        async def echo(message: str | bytes, sender: Connection) -> None:
            sender.send(message)

    return app


async def test_hook_returning_a_response_refuses_the_handshake() -> None:
    app = make_app()

    @app.party().before_connect
    async def refuse(request: Request, lobby: Lobby) -> Response:
        return Response("Unauthorized", status=401, headers={"WWW-Authenticate": "Bearer"})

    with pytest.raises(WebsocketResponseError) as info:
        async with app.test_client().websocket("/parties/main/r1") as ws:
            await ws.receive()
    assert info.value.response.status_code == 401
    assert await info.value.response.get_data() == b"Unauthorized"
    assert info.value.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("form", ["returns-request", "returns-none", "returns-copy"])
async def test_hook_forwards_the_request_and_its_headers(form: str) -> None:
    app = make_app()

    @app.party().before_connect
    def authenticate(request: Request, lobby: Lobby) -> Request | None:
        if form == "returns-copy":
            changed = request.copy()
            changed.headers["X-User-ID"] = "carol"
            return changed
        request.headers["X-User-ID"] = "carol"
        return request if form == "returns-request" else None

    async with app.test_client().websocket("/parties/main/r1?_pk=c1") as ws:
        assert await ws.receive() == "hello carol c1"


async def test_hook_exceptions_refuse_without_showing_their_text() -> None:
    app = make_app()

    @app.party().before_connect
    async def broken(request: Request, lobby: Lobby) -> None:
        raise PermissionError("token expired for db-7.internal")

    @app.party().before_request
    async def forbidden(request: Request, lobby: Lobby) -> None:
        raise Forbidden("not yours")

    with pytest.raises(WebsocketResponseError) as info:
        async with app.test_client().websocket("/parties/main/r1") as ws:
            await ws.receive()
    assert info.value.response.status_code == 401
    body = await info.value.response.get_data()
    assert body == b"Unauthorized"
    response = await app.test_client().get("/parties/main/r1")
    assert response.status_code == 403
    assert await response.get_data() == b"not yours"


async def test_first_response_wins_and_hooks_run_in_order() -> None:
    app = make_app()
    calls: list[str] = []
    main = app.party()

    @main.before_request
    def first(request: Request, lobby: Lobby) -> None:
        calls.append(f"first {lobby.party}/{lobby.id}")

    @main.before_request
    def second(request: Request, lobby: Lobby) -> Response:
        calls.append("second")
        return Response("stop", status=429)

    @main.before_request
    def third(request: Request, lobby: Lobby) -> None:
        calls.append("third")

    response = await app.test_client().get("/parties/main/room-7")
    assert response.status_code == 429
    assert calls == ["first main/room-7", "second"]


async def test_on_request_return_forms() -> None:
    app = App()
    api = app.party("api")

    class Info(msgspec.Struct):
        room: str
        path: str

    @api.on_request
    async def answer(request: Request, room: Room) -> object:
        kind = request.args.get("kind")
        if kind == "text":
            return "plain"
        if kind == "bytes":
            return b"\x00\x01"
        if kind == "struct":
            return Info(room.id, request.path)
        if kind == "response":
            return Response("made", status=201, headers={"X-A": "b"})
        if kind == "forbidden":
            raise Forbidden()
        if kind == "boom":
            raise RuntimeError("secret internals")
        if kind == "none":
            return None
        return {"room": room.id, "party": room.party, "body": (await request.body()).decode()}

    client = app.test_client()
    r = await client.post("/parties/api/r9/sub/path?kind=dict", data=b"payload")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert await r.get_json() == {"room": "r9", "party": "api", "body": "payload"}
    r = await client.get("/parties/api/r9?kind=text")
    assert (await r.get_data(), r.headers["Content-Type"]) == (
        b"plain",
        "text/plain; charset=utf-8",
    )
    r = await client.get("/parties/api/r9?kind=bytes")
    assert (await r.get_data(), r.headers["Content-Type"]) == (
        b"\x00\x01",
        "application/octet-stream",
    )
    r = await client.get("/parties/api/r9/deep/er?kind=struct")
    assert await r.get_json() == {"room": "r9", "path": "/parties/api/r9/deep/er"}
    r = await client.get("/parties/api/r9?kind=response")
    assert (r.status_code, r.headers["X-A"]) == (201, "b")
    assert (await client.get("/parties/api/r9?kind=forbidden")).status_code == 403
    r = await client.get("/parties/api/r9?kind=boom")
    assert r.status_code == 500
    assert b"secret" not in await r.get_data()
    assert (await client.get("/parties/api/r9?kind=none")).status_code == 404


async def test_unknown_party_and_missing_on_request_answer_404() -> None:
    app = make_app()
    client = app.test_client()
    r = await client.get("/parties/nope/r1")
    assert r.status_code == 404
    assert await r.get_data() == b"Party nope not found"
    r = await client.get("/parties/main/r1")
    assert r.status_code == 404
    with pytest.raises(WebsocketResponseError) as info:
        async with client.websocket("/parties/nope/r1") as ws:
            await ws.receive()
    assert info.value.response.status_code == 404


async def test_body_over_the_limit_answers_413() -> None:
    app = App(max_body_size=10)

    @app.party().on_request
    async def read(request: Request, room: Room) -> bytes:
        return await request.body()

    client = app.test_client()
    assert (await client.post("/party/r", data=b"x" * 10)).status_code == 200
    r = await client.post("/party/r", data=b"x" * 11)
    assert r.status_code == 413


async def test_non_party_urls_are_served_by_quart() -> None:
    app = make_app()

    @app.quart.route("/health")
    async def health() -> str:
        return "ok"

    client = app.test_client()
    assert await (await client.get("/health")).get_data() == b"ok"
    assert (await client.get("/parties/")).status_code == 404


async def test_connection_ids_come_from_pk_else_uuid4() -> None:
    app = make_app()
    client = app.test_client()
    async with client.websocket("/parties/main/r1?_pk=fixed-id&x=1") as ws:
        assert await ws.receive() == "hello anon fixed-id"
    async with client.websocket("/parties/main/r1") as ws:
        greeting = await ws.receive()
    generated = str(greeting).rsplit(" ", 1)[1]
    import uuid

    assert uuid.UUID(generated).version == 4


async def test_text_stays_text_and_binary_stays_binary() -> None:
    app = make_app()
    async with app.test_client().websocket("/party/r1") as ws:
        await ws.receive()
        await ws.send("text")
        assert await ws.receive() == "text"
        await ws.send(b"\x00\xff")
        assert await ws.receive() == b"\x00\xff"


async def test_connection_state_is_capped() -> None:
    app = App()
    seen: list[object] = []

    @app.party().on_connect
    def connect(connection: Connection, ctx: ConnectContext) -> None:
        connection.set_state({"n": 1})
        connection.set_state(lambda prev: {"n": prev["n"] + 1})
        try:
            connection.set_state("x" * 3000)
        except StateTooLarge as exc:
            seen.append((exc.size, exc.limit))
        seen.append(connection.state)
        connection.send("done")

    async with app.test_client().websocket("/party/r1") as ws:
        assert await ws.receive() == "done"
    assert seen == [(3002, 2048), {"n": 2}]


async def test_typed_messages_are_decoded_and_validated() -> None:
    app = App()
    errors: list[BaseException] = []

    @app.party().on_message
    async def typed(message: Chat | Move, sender: Connection) -> None:
        sender.send(message)

    @app.party().on_error
    def record(connection: Connection, error: BaseException) -> None:
        errors.append(error)

    async with app.test_client().websocket("/party/r1") as ws:
        await ws.send('{"type": "move", "x": 1, "y": 2}')
        assert msgspec.json.decode(await ws.receive()) == {"type": "move", "x": 1, "y": 2}
        await ws.send('{"type": "move", "x": "one", "y": 2}')
        error = msgspec.json.decode(await ws.receive())
        assert error["error"] == "invalid_message"
        assert "$.x" in error["detail"]
        await ws.send("not json")
        assert msgspec.json.decode(await ws.receive())["error"] == "invalid_message"
        await ws.send('{"type": "chat", "text": "still open"}')
        assert msgspec.json.decode(await ws.receive()) == {"type": "chat", "text": "still open"}
    assert len(errors) == 2
    from partydeco import InvalidMessage

    assert all(isinstance(e, InvalidMessage) for e in errors)


async def test_on_connect_error_closes_with_1011() -> None:
    app = App()
    closed: list[int] = []

    @app.party().on_connect
    async def broken(connection: Connection, ctx: ConnectContext) -> None:
        raise RuntimeError("database password is hunter2")

    @app.party().on_close
    def gone(connection: Connection, code: int, reason: str) -> None:
        closed.append(code)

    async with app.test_client().websocket("/party/r1") as ws:
        with pytest.raises(WebsocketDisconnectError) as info:
            await ws.receive()
    assert info.value.args[0] == 1011
    assert closed == [1011]


async def test_on_start_runs_once_and_retries_after_failure() -> None:
    app = App()
    attempts: list[str] = []

    @app.party().on_start
    async def start(room: Room) -> None:
        attempts.append(room.id)
        if len(attempts) == 1:
            raise RuntimeError("first start fails")

    @app.party().on_request
    def answer(request: Request, room: Room) -> str:
        return "ok"

    client = app.test_client()
    assert (await client.get("/party/r1")).status_code == 500
    assert (await client.get("/party/r1")).status_code == 200
    assert (await client.get("/party/r1")).status_code == 200
    assert (await client.get("/party/r2")).status_code == 200
    assert attempts == ["r1", "r1", "r2"]


async def test_typed_handler_with_an_unsupported_annotation_fails_at_start() -> None:
    app = App()

    class NotEncodable:
        pass

    @app.party().on_message
    def handler(message: NotEncodable, sender: Connection) -> None: ...

    from partydeco import SetupError

    with pytest.raises(SetupError, match="main"):
        app.freeze()


async def test_two_parties_are_isolated() -> None:
    app = App()
    for name in ("a", "b"):
        p = Party(name, app)

        @p.on_connect
        def hello(connection: Connection, ctx: ConnectContext, name: str = name) -> None:
            connection.send(f"{name}:{connection.room.party}:{connection.room.id}")

    client = app.test_client()
    async with client.websocket("/parties/a/same") as wa, client.websocket("/parties/b/same") as wb:
        assert await wa.receive() == "a:a:same"
        assert await wb.receive() == "b:b:same"
