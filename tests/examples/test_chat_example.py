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


@pytest.fixture(autouse=True)
def memory_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chat keeps history in room storage: in memory here, not in ``.partydeco/``."""
    monkeypatch.setenv("PARTYDECO_STORAGE", "memory://")


def listed(*users: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"id": user, "connections": n} for user, n in users]


async def test_presence_messages_and_refusal_in_process() -> None:
    async with TestClient(app) as client:
        async with client.connect("r1", query={"token": "alice-token"}) as alice:
            position = await alice.receive_json()
            assert position == {"type": "partydeco.position", "epoch": position["epoch"],
                                "offset": 0}  # fmt: skip
            assert await alice.receive_json() == {
                "type": "partydeco.presence", "you": "alice", "users": listed(("alice", 1)),
                "count": 1, "anonymous": 0,
            }  # fmt: skip
            async with client.connect("r1", query={"token": "bob-token"}) as bob:
                assert (await bob.receive_json())["type"] == "partydeco.position"
                assert (await bob.receive_json())["users"] == listed(("alice", 1), ("bob", 1))
                assert await alice.receive_json() == {
                    "type": "partydeco.join", "user": "bob", "count": 2,
                }  # fmt: skip
                await bob.send_json({"type": "message", "text": "  hi  "})
                said = {
                    "type": "partydeco.message", "offset": 1,
                    "data": {"type": "message", "from": "bob", "text": "hi"},
                }  # fmt: skip
                assert await alice.receive_json() == said
                assert await bob.receive_json() == said
                await bob.send_json({"type": "message", "text": 42})
                assert (await bob.receive_json())["error"] == "invalid_message"
            # bob's tab may be reloading: he stays listed for presence_grace (10 s).
            who = await client.fetch("r1", query={"token": "bob-token"})
            assert who.json() == {"room": "r1", "you": "bob", "users": ["alice", "bob"]}
            # A page that saw nothing since offset 0 gets what it missed, then the position.
            query = {"token": "carol-token", "since": "0", "epoch": position["epoch"]}
            async with client.connect("r1", query=query) as carol:
                assert await carol.receive_json() == said
                assert (await carol.receive_json())["offset"] == 1
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
            "recovery": True,
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
    # bob's page was offline while alice wrote; its reconnect asked for what it missed
    assert report["bob_recovered"] == ["alice:hello from alice", "alice:while bob was away"]
    assert len(report["bob_ws_urls"]) == 2 and "since=1&epoch=" in report["bob_ws_urls"][1]
    assert report["alice_users_after"] == ["alice", "bob"]  # no leave for a reconnect
    assert report["bad_status"] == "Authentication failed: Unauthorized"
    assert report["bad_stopped"] is True
    assert report["bad_ws_attempts"] == 1  # stopped after the first refusal: no silent loop
    assert report["bad_composer_disabled"] is True
    assert not [s for s in report["steps"] if "pageerror" in s]
