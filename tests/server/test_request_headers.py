"""Request headers and query parameters read and changed without building ``headers``:
the same results as werkzeug's ``Headers`` and ``parse_qsl``, built or not."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest
from werkzeug.datastructures import MultiDict

from partydeco import Request

RAW = [
    (b"host", b"example.com"),
    (b"x-user-id", b"mallory"),
    (b"authorization", b"Bearer one"),
    (b"X-User-Id", b"eve"),
    (b"accept", b"*/*"),
]


def pair(built: bool) -> Request:
    request = Request("GET", "/parties/main/r", headers=list(RAW))
    if built:
        request.headers  # noqa: B018 - the werkzeug Headers from now on
    return request


@pytest.mark.parametrize("built", [False, True])
def test_header_values_lists_every_value_in_order(built: bool) -> None:
    request = pair(built)
    assert request.header_values("X-USER-ID") == ["mallory", "eve"]
    assert request.header_values("authorization") == ["Bearer one"]
    assert request.header_values("missing") == []


@pytest.mark.parametrize("built", [False, True])
def test_set_header_replaces_the_first_value_in_place_and_drops_the_rest(built: bool) -> None:
    request = pair(built)
    request.set_header("X-User-ID", "alice")
    request.set_header("X-Role", "admin")
    assert list(request.headers.items()) == [
        ("host", "example.com"),
        ("X-User-ID", "alice"),
        ("authorization", "Bearer one"),
        ("accept", "*/*"),
        ("X-Role", "admin"),
    ]
    assert request.header("x-user-id") == "alice"


@pytest.mark.parametrize("built", [False, True])
def test_set_header_refuses_newlines_and_keeps_what_latin1_cannot_hold(built: bool) -> None:
    request = pair(built)
    with pytest.raises(ValueError):
        request.set_header("X-User-ID", "alice\r\nX-Admin: 1")
    assert request.header_values("x-user-id") == ["mallory", "eve"]
    request.set_header("X-Name", "東京")
    assert request.headers["X-Name"] == "東京"


@pytest.mark.parametrize("built", [False, True])
def test_add_header_adds_a_value_after_the_others(built: bool) -> None:
    request = pair(built)
    request.add_header("X-User-ID", "alice")
    request.add_header("X-Name", "東京")
    assert request.header_values("x-user-id") == ["mallory", "eve", "alice"]
    assert request.headers["X-Name"] == "東京"
    with pytest.raises(ValueError):
        request.add_header("X-Role", "admin\r\nX-Admin: 1")
    assert request.header("x-role") is None


@pytest.mark.parametrize("built", [False, True])
def test_remove_header_drops_every_value_whatever_its_case(built: bool) -> None:
    request = pair(built)
    request.remove_header("X-USER-ID")
    request.remove_header("never-sent")
    assert request.header("x-user-id") is None
    assert [name for name, _ in request.headers.items()] == ["host", "authorization", "accept"]


def test_changes_leave_the_callers_list_and_a_copys_original_alone() -> None:
    raw = list(RAW)
    request = Request("GET", "/p", headers=raw)
    request.set_header("X-User-ID", "alice")
    clone = request.copy()
    clone.remove_header("X-User-ID")
    assert raw == RAW
    assert request.header("X-User-ID") == "alice"
    assert clone.header("X-User-ID") is None


def test_query_parameters_parse_as_parse_qsl_does() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice("ab=&%+x2F1") for _ in range(rng.randint(0, 14)))
        request = Request("GET", "/p", query_string=text.encode("latin-1"))
        expected = MultiDict(parse_qsl(text, keep_blank_values=True))
        assert list(request.args.lists()) == list(expected.lists())


SCOPE = {
    "type": "http", "method": "POST", "scheme": "https", "path": "/parties/main/r x",
    "raw_path": b"/parties/main/r%20x", "query_string": b"a=1&b=", "client": ("192.0.2.7", 5),
    "headers": list(RAW),
}  # fmt: skip


class Tagged(Request):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.tag = "made by __init__"


@pytest.mark.parametrize("cls", [Request, Tagged])
def test_from_scope_makes_the_request_init_makes(cls: type[Request]) -> None:
    made = cls.from_scope(SCOPE, max_body_size=10, drop_header=b"x-user-id")
    expected = Request(
        "POST", "/parties/main/r x", raw_path="/parties/main/r%20x", query_string=b"a=1&b=",
        headers=[h for h in RAW if h[0] != b"x-user-id"], scheme="https",
        remote_addr="192.0.2.7", receive=made._receive, max_body_size=10,
    )  # fmt: skip
    for name in Request.__slots__:
        assert getattr(made, name) == getattr(expected, name), name
    assert made.args == MultiDict([("a", "1"), ("b", "")])
    assert cls is Request or getattr(made, "tag", None) == "made by __init__"
