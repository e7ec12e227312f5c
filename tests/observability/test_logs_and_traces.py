"""JSON log lines with room context, and OpenTelemetry spans in the client's trace."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import connect

from partydeco import App
from partydeco.errors import SetupError
from partydeco.observability import JSONFormatter
from partydeco.observability.logs import redact
from partydeco.server.runtime import Runtime
from tests.support import eventually, free_port, serve, start_process
from tests.support.ops_app import app as ops_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the test app logs, formatted by JSONFormatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("ops_app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_log_lines_carry_room_connection_and_principal(
    monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    monkeypatch.setenv("PARTYDECO_LOG_FORMAT", "json")
    async with serve(ops_app) as base:
        async with connect(f"ws://{base}/parties/chat/lobby?token=t-alice&_pk=c1") as ws:
            await ws.recv()
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{base}/parties/main/info?token=t-bob")
    joined, answered = entries(log_lines)
    assert {k: joined[k] for k in ("level", "logger", "event", "party", "room")} == {
        "level": "INFO", "logger": "ops_app", "event": "joined", "party": "chat", "room": "lobby",
    }  # fmt: skip
    assert (joined["connection"], joined["principal"]) == ("c1", "alice")
    assert joined["time"].endswith("Z")
    assert (answered["event"], answered["room"], answered["principal"]) == (
        "answered", "info", "bob",
    )  # fmt: skip
    assert "connection" not in answered


def test_tokens_never_reach_a_log_line() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "GET /r?token=%s&x=1 Authorization: Bearer abc.def %s",
        ("hunter2", jwt), None,
    )  # fmt: skip
    line = JSONFormatter().format(record)
    assert "hunter2" not in line and "abc.def" not in line and jwt not in line
    assert json.loads(line)["event"] == (
        "GET /r?token=[redacted]&x=1 Authorization: Bearer [redacted] [redacted]"
    )
    assert redact("access_token=abc&id_token=def") == "access_token=[redacted]&id_token=[redacted]"


async def test_partydeco_serve_writes_json_lines_without_tokens() -> None:
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", "tests/support/ops_app.py", "--port", str(port)],
        port=port, env={"PARTYDECO_LOG_FORMAT": "json"}, ready_path="/pid",
    )  # fmt: skip
    try:
        async with connect(f"ws://{server.base}/parties/chat/r?token=t-secretive&_pk=c9") as ws:
            await ws.recv()
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    joined = next(e for e in lines if e["event"] == "joined")
    assert (joined["room"], joined["connection"], joined["principal"]) == ("r", "c9", "secretive")
    assert any(e["logger"] == "partydeco.access" for e in lines)
    assert "t-secretive" not in server.output()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """An SDK recording spans in memory, installed once (OpenTelemetry allows one provider)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_spans_continue_the_clients_trace(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    spans.clear()
    monkeypatch.setenv("PARTYDECO_TRACING", "1")
    monkeypatch.setenv("PARTYDECO_LOG_FORMAT", "json")
    headers = {"traceparent": TRACEPARENT}
    async with serve(ops_app) as base:
        async with connect(
            f"ws://{base}/parties/chat/t?token=t-alice", additional_headers=headers
        ) as ws:
            await ws.recv()
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await eventually(lambda: any(s.name == "partydeco on_message" for s in
                                         spans.get_finished_spans()))  # fmt: skip
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{base}/parties/main/h?token=t-bob", headers=headers)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    handshake = by_name["partydeco handshake"]
    assert f"{handshake.context.trace_id:032x}" == TRACE_ID
    assert f"{handshake.parent.span_id:016x}" == PARENT_ID
    assert handshake.attributes["http.response.status_code"] == 101
    assert handshake.attributes["partydeco.room"] == "t"
    for name in ("partydeco before_connect", "partydeco connection_tags", "partydeco on_connect"):
        assert by_name[name].parent.span_id == handshake.context.span_id, name
    message = by_name["partydeco on_message"]
    assert f"{message.context.trace_id:032x}" == TRACE_ID
    assert f"{message.parent.span_id:016x}" == PARENT_ID  # the client's span, not the handshake's
    request = by_name["partydeco request"]
    assert f"{request.context.trace_id:032x}" == TRACE_ID
    assert by_name["partydeco on_request"].parent.span_id == request.context.span_id
    assert request.attributes["http.response.status_code"] == 200
    joined = next(e for e in entries(log_lines) if e["event"] == "joined")
    assert joined["trace_id"] == TRACE_ID


def test_tracing_without_the_opentelemetry_api_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(SetupError, match=r"partydeco\[otel\]"):
        Runtime(App(tracing=True, storage="memory://"))
