"""examples/collab: the page and its vendored bundle, then two Chromium pages editing one
document, and a third page after a server restart."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from examples.collab.app import app
from partydeco.testing import HandshakeRefusedError, TestClient
from tests.support import ROOT, free_port, start_process
from tests.support.js_driver import CHROMIUM, JS_DIR, browser_ready


async def test_serves_the_page_and_the_vendored_bundle_and_refuses_bad_tokens() -> None:
    async with TestClient(app) as client:
        page = await client.get("/")
        assert page.status == 200 and '<script type="module" src="collab.js">' in page.text
        bundle = await client.get("/vendor/yjs/yjs-provider.js")
        assert bundle.status == 200 and "YPartyKitProvider" in bundle.text
        try:
            async with client.connect("notes", party="docs", query={"token": "nope"}):
                raise AssertionError("a bad token was let in")
        except HandshakeRefusedError as refused:
            assert (refused.status, refused.text) == (401, "Unauthorized")


async def run_pages(config: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node",
        "collab_browser.mjs",
        json.dumps(config),
        cwd=JS_DIR,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
        out, _ = await process.communicate()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert report["ok"], report.get("error")
    assert not [s for s in report["steps"] if "pageerror" in s]
    return report


async def test_two_pages_edit_together_and_the_text_survives_a_restart(tmp_path: Path) -> None:
    """The example runs as a process (its storage in its working directory), stopped and
    started again on the same port."""
    browser_ready()
    port = free_port()
    config = {"room": "browser-notes", "shots": str(tmp_path), "base": f"http://127.0.0.1:{port}"}
    script = str(ROOT / "examples" / "collab" / "app.py")
    server = start_process([script], port=port, cwd=tmp_path)
    try:
        edit = await run_pages({**config, "phase": "edit"})
    finally:
        server.stop()
    assert edit["alice_text"] == edit["bob_text"] == "hello from alice and bob"
    assert edit["words"] == "5"  # kept by the server's on_document_change
    assert edit["users"] == ["alice", "bob"]
    assert (tmp_path / ".partydeco" / "storage.db").exists()
    server = start_process([script], port=port, cwd=tmp_path)
    try:
        reload = await run_pages({**config, "phase": "reload"})
    finally:
        server.stop()
    assert reload["reload_text"] == "hello from alice and bob"
    assert reload["words"] == "5"
    assert "Traceback" not in server.output()
