"""Registration, the default app, routing and configuration: no server needed."""

from __future__ import annotations

import pytest

from partydeco import App, Party, SetupError, default_app, party
from partydeco.env import load_env, parse_dotenv
from partydeco.routing import Route, match


def test_decorators_return_the_function_unchanged() -> None:
    with App() as app:

        async def hello(connection: object, ctx: object) -> None: ...

        def relay(message: object, sender: object) -> None: ...

        assert party.on_connect(hello) is hello
        assert Party("chat").on_message(relay) is relay
        assert app.handlers["main"].on_connect == [hello]
        assert app.handlers["chat"].on_message == [relay]


def test_with_app_isolates_the_default_app() -> None:
    outer = default_app()
    with App() as app:
        assert default_app() is app
        assert party.app is app
        with App() as inner:
            assert party.app is inner
        assert party.app is app
    assert default_app() is outer


def test_handles_can_be_bound_to_an_app() -> None:
    app = App()
    chat = app.party("chat")

    @chat.on_request
    def info(request: object, room: object) -> str:
        return "ok"

    assert app.handlers["chat"].on_request == [info]


def test_registering_after_start_is_a_clear_error() -> None:
    with App() as app:
        app.freeze()  # what the server does as it starts
        with pytest.raises(SetupError, match="already serving"):

            @party.on_connect
            def late(connection: object, ctx: object) -> None: ...


def test_bad_party_names_and_handlers_are_refused() -> None:
    with pytest.raises(ValueError, match="party name"):
        Party("Chat Room")
    app = App()
    with pytest.raises(ValueError, match="unknown handler kind"):
        app.add_handler("main", "on_nothing", print)
    with pytest.raises(ValueError, match="callable"):
        app.add_handler("main", "on_message", "not a function")  # type: ignore[arg-type]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        App(max_message_size=0)
    with pytest.raises(TypeError):
        App(no_such_option=1)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_bytes_per_second": 0}, "max_bytes_per_second must be a positive number or None"),
        ({"max_bytes_per_second": "1 MiB"}, "max_bytes_per_second must be a positive number"),
        ({"byte_burst": 1000}, r"byte_burst \(1000\) must be at least max_message_size"),
        ({"byte_burst": 2.5e6}, "byte_burst must be a whole number"),
        ({"max_unfinished_bytes": -1}, "max_unfinished_bytes must be a positive number"),
        ({"max_unfinished_bytes": True}, "max_unfinished_bytes must be a positive number"),
        ({"message_timeout": 0}, "message_timeout must be a positive number"),
        ({"max_pending_bytes_per_process": 0}, "max_pending_bytes_per_process must be"),
        ({"max_room_id_length": 256.5}, "max_room_id_length must be a whole number"),
        ({"forwarded_header": "X-Real-IP"}, "forwarded_header must be 'X-Forwarded-For' or"),
    ],
)
def test_the_hardening_options_are_checked(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        App(**options)


def test_the_hardening_options_have_their_defaults() -> None:
    config = App().config
    assert config.byte_burst == 8 << 20 and config.max_bytes_per_second == 1 << 20
    assert App(max_message_size=16 << 20).config.byte_burst == 16 << 20
    assert config.max_unfinished_bytes == 32 << 20 and config.message_timeout == 30
    assert config.max_pending_bytes_per_process == 64 << 20
    assert config.max_room_id_length == 256 and config.forwarded_header == "X-Forwarded-For"
    app = App()
    app.configure_party("main", max_bytes_per_second=None, byte_burst=16 << 20)
    with pytest.raises(ValueError, match="max_unfinished_bytes cannot be set per party"):
        app.configure_party("main", max_unfinished_bytes=1)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/parties/chat/r1", Route("chat", "r1", "")),
        ("/parties/chat/r1/", Route("chat", "r1", "/")),
        ("/parties/chat/r1/a/b", Route("chat", "r1", "/a/b")),
        ("/party/r1", Route("main", "r1", "")),
        ("/party/r1/x", Route("main", "r1", "/x")),
        ("/parties/main/my%20room", Route("main", "my%20room", "")),
        ("/parties/chat/", None),
        ("/parties//r1", None),
        ("/party/", None),
        ("/other", None),
        ("/", None),
    ],
)
def test_routing(path: str, route: Route | None) -> None:
    assert match(path) == route


def test_dotenv_parsing_and_precedence(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    text = """
# comment
export TOKEN=abc
QUOTED="two words"
SINGLE='x # y'
TRAILING=value # note
EMPTY=
not an assignment
"""
    assert parse_dotenv(text) == {
        "TOKEN": "abc",
        "QUOTED": "two words",
        "SINGLE": "x # y",
        "TRAILING": "value",
        "EMPTY": "",
    }
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / ".env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    monkeypatch.setenv("OVERRIDDEN", "process")
    env = load_env(directory)
    assert env["FROM_FILE"] == "1"
    assert env["OVERRIDDEN"] == "process"
