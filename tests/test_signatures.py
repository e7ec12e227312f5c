"""Handler signatures are checked as handlers are registered, not when the first event comes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from partydeco import App, HandlerSignatureError, Party, SetupError, party
from partydeco.signatures import PARAMETERS
from partydeco.testing import TestClient


def line_of(f: Callable[..., Any]) -> str:
    return f"tests/test_signatures.py:{f.__code__.co_firstlineno}"


@pytest.mark.parametrize("kind", sorted(PARAMETERS))
def test_every_kind_refuses_a_handler_with_one_argument_too_few(kind: str) -> None:
    expected = PARAMETERS[kind]

    async def handler(*args: Any) -> None: ...

    # the same function, with one argument fewer than partydeco passes
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for name in expected[:-1]
        ]
    )
    register = party.on_cron("* * * * *") if kind == "on_cron" else getattr(party, kind)
    with App(), pytest.raises(HandlerSignatureError) as info:
        register(handler)
    error = info.value
    assert isinstance(error, SetupError)
    assert error.kind == kind
    assert error.where == line_of(handler)
    assert error.expected == f"async def handler({', '.join(expected)})"
    assert str(error) == (
        f"{kind} handler handler ({line_of(handler)}) cannot be called as "
        f"handler({', '.join(expected)}): too many positional arguments. "
        f"Define it as `async def handler({', '.join(expected)})` "
        "(or a plain def with the same arguments)"
    )


def test_the_issue_s_examples_fail_at_the_decorator() -> None:
    with App() as app:
        with pytest.raises(HandlerSignatureError, match=r"relay\(message, sender\)"):

            @party.on_message
            async def relay(message: Any) -> None: ...

        with pytest.raises(HandlerSignatureError, match="missing a required argument: 'user'"):

            @party.on_connect
            async def hello(connection: Any, ctx: Any, user: Any) -> None: ...

        with pytest.raises(HandlerSignatureError, match=r"async def info\(request, room\)"):

            @Party("api").on_request
            def info(request: Any) -> str:
                return "ok"

        assert app.handlers["main"].on_message == []
        assert app.handlers["main"].on_connect == []

        # what partydeco can call is accepted
        class Handler:
            async def __call__(self, message: Any, sender: Any) -> None: ...

        class Room:
            def on_close(self, connection: Any, code: int, reason: str) -> None: ...

        async def two(request: Any, lobby: Any, extra: int = 0, *, flag: bool = False) -> None: ...

        party.on_message(Handler())
        party.on_close(Room().on_close)
        party.before_connect(two)
        party.on_message(lambda *args: None)
        party.on_error(functools.partial(lambda tag, connection, error: None, "tag"))
        party.on_start(print)  # a builtin: nothing to check
        assert len(app.handlers["main"].on_message) == 2


def test_generators_are_refused() -> None:
    with App():
        with pytest.raises(HandlerSignatureError, match="async generator function"):

            @party.on_request
            async def stream(request: Any, room: Any) -> Any:
                yield "a"

        with pytest.raises(HandlerSignatureError, match="it is a generator function"):

            @party.on_start
            def start(room: Any) -> Any:
                yield None


def test_a_call_instead_of_a_function_is_named() -> None:
    async def relay(message: Any, sender: Any) -> None: ...

    coroutine = relay("m", None)
    with App(), pytest.raises(ValueError, match="not a call of it"):
        party.on_message(coroutine)  # type: ignore[arg-type]
    coroutine.close()


def test_yjs_handlers_are_checked_too() -> None:
    from partydeco.yjs import YjsParty

    with App():
        docs = YjsParty("docs")
        with pytest.raises(HandlerSignatureError, match=r"read_only handler viewers \(tests/"):

            @docs.read_only
            def viewers(connection: Any) -> bool:
                return True

        with pytest.raises(HandlerSignatureError, match=r"async def count\(document\)"):

            @docs.on_document_change
            def count(document: Any, extra: Any) -> None: ...


async def test_await_on_send_broadcast_and_close_works() -> None:
    with App() as app:

        @party.on_connect
        async def hello(connection: Any, ctx: Any) -> None:
            await connection.send("hi")
            await connection.room.broadcast("all")

        @party.on_message
        async def bye(message: Any, sender: Any) -> None:
            await sender.send(f"bye {message}")
            await sender.close(4000, "done")

        async with TestClient(app) as client, client.connect("r") as ws:
            assert await ws.receive() == "hi"
            assert await ws.receive() == "all"
            await ws.send("alice")
            assert await ws.receive() == "bye alice"
            assert await ws.wait_closed() == (4000, "done")


async def test_a_sync_wrapper_around_an_async_handler_is_awaited() -> None:
    def logged(f: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(f)
        def wrapper(*args: Any) -> Awaitable[None]:
            return f(*args)

        return wrapper

    with App() as app:

        @party.on_message
        @logged
        async def echo(message: Any, sender: Any) -> None:
            sender.send(message)

        @party.on_request
        @logged
        async def info(request: Any, room: Any) -> Any:
            return {"room": room.id}

        async with TestClient(app) as client:
            assert (await client.get("/parties/main/r")).json() == {"room": "r"}
            async with client.connect("r") as ws:
                await ws.send("ping")
                assert await ws.receive() == "ping"
