"""examples/chat: the server side in-process, and two pages in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from examples.chat.app import app
from partydeco.testing import HandshakeRefusedError, TestClient
from tests.support import serve
from tests.support.js_driver import CHROMIUM, JS_DIR, browser_ready


async def test_presence_messages_and_refusal_in_process() -> None:
    async with TestClient(app) as client:
        async with client.connect("r1", query={"token": "alice-token"}) as alice:
            assert await alice.receive_json() == {"type": "presence", "users": ["alice"]}
            async with client.connect("r1", query={"token": "bob-token"}) as bob:
                expected = {"type": "presence", "users": ["alice", "bob"]}
                assert await alice.receive_json() == expected
                assert await bob.receive_json() == expected
                await bob.send_json({"type": "message", "text": "  hi  "})
                said = {"type": "message", "from": "bob", "text": "hi"}
                assert await alice.receive_json() == said
                assert await bob.receive_json() == said
                await bob.send_json({"type": "message", "text": 42})
                assert (await bob.receive_json())["error"] == "invalid_message"
            assert await alice.receive_json() == {"type": "presence", "users": ["alice"]}
            who = await client.fetch("r1", query={"token": "bob-token"})
            assert who.json() == {"room": "r1", "you": "bob", "users": ["alice"]}
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("r1", query={"token": "wrong"}):
                pass
        assert (refused.value.status, refused.value.text) == (401, "Unauthorized")
        assert (await client.fetch("r1", query={"token": "wrong"})).status == 401


async def test_serves_the_page_and_the_vendored_partysocket() -> None:
    async with TestClient(app) as client:
        page = await client.get("/")
        assert page.status == 200 and '<script type="module" src="chat.js">' in page.text
        script = await client.get("/vendor/partysocket/index.js")
        assert script.status == 200
        assert "javascript" in (script.header("content-type") or "")
        assert (await client.get("/../app.py")).status == 404


async def test_two_pages_chat_and_a_bad_token_shows_an_error(tmp_path: Path) -> None:
    browser_ready()
    async with serve(app, websocket_ping_interval=None) as host:
        config = {
            "base": f"http://{host}",
            "room": "browser-room",
            "alice": "alice-token",
            "bob": "bob-token",
            "bad": "not-a-token",
            "shots": str(tmp_path),
        }
        process = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            "browser.mjs",
            json.dumps(config),
            cwd=JS_DIR,
            env={**os.environ, "CHROMIUM": CHROMIUM},
            stdout=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(90):
            out, _ = await process.communicate()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert report["ok"], report.get("error")
    assert report["alice_users"] == report["bob_users"] == ["alice", "bob"]
    assert report["bob_messages"] == ["alice:hello from alice"]
    assert report["alice_messages"] == ["alice:hello from alice"]
    assert report["bad_status"] == "Authentication failed: Unauthorized"
    assert report["bad_stopped"] is True
    assert report["bad_ws_attempts"] == 1  # stopped after the first refusal: no silent loop
    assert report["bad_composer_disabled"] is True
    assert not [s for s in report["steps"] if "pageerror" in s]
