"""The headers a party URL answers with, for responses made with and without headers."""

from __future__ import annotations

from typing import Any

import pytest

from partydeco import App, Request, Response, Room
from partydeco.testing import TestClient


def answers_app() -> App:
    app = App(allowed_origins=["https://app.example.com"])
    party = app.party("main")
    party.configure(cors=True)

    @party.on_request
    async def answer(request: Request, room: Room) -> Any:
        kind = room.id
        if kind == "dict":
            return {"room": kind}
        if kind == "changed":  # headers changed after the response was made
            response = Response("hi", 201)
            response.headers["X-Extra"] = "1"
            return response
        if kind == "empty":
            return Response(status=204)
        if kind == "typed":
            return Response(b"<p>", content_type="text/html")
        return Response("plain")

    return app


async def test_each_response_sends_its_content_type_and_length() -> None:
    async with TestClient(answers_app()) as client:
        data = await client.fetch("dict")
        assert data.json() == {"room": "dict"}
        assert data.headers == [
            ("content-type", "application/json"), ("content-length", str(len(data.body))),
        ]  # fmt: skip
        plain = await client.fetch("plain")
        assert plain.header("content-type") == "text/plain; charset=utf-8"
        typed = await client.fetch("typed")
        assert typed.header("content-type") == "text/html"
        empty = await client.fetch("empty")
        assert empty.status == 204 and empty.headers == [("content-length", "0")]


async def test_headers_changed_after_the_response_was_made_are_sent() -> None:
    async with TestClient(answers_app()) as client:
        changed = await client.fetch("changed")
    assert changed.status == 201
    assert changed.headers == [
        ("content-type", "text/plain; charset=utf-8"), ("x-extra", "1"), ("content-length", "2"),
    ]  # fmt: skip


async def test_cors_headers_join_a_response_made_without_headers() -> None:
    async with TestClient(answers_app()) as client:
        data = await client.fetch("dict", headers={"Origin": "https://app.example.com"})
    assert data.header("access-control-allow-origin") == "https://app.example.com"
    assert data.header("vary") == "Origin"
    assert data.header("content-type") == "application/json"


def test_a_response_reads_and_changes_its_headers_as_before() -> None:
    response = Response("hi")
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    response.headers["Content-Type"] = "text/markdown"
    assert response.content_type == "text/markdown"
    assert Response().content_type is None and "Content-Type" not in Response().headers
    assert Response.json([1]).content_type == "application/json"


def test_a_content_type_with_a_newline_is_refused_when_the_response_is_made() -> None:
    with pytest.raises(ValueError, match="newline"):
        Response("x", content_type="text/plain\r\nSet-Cookie: a=b")
    with pytest.raises(ValueError, match="newline"):
        Response("x", headers={}, content_type="text/plain\nX: y")
