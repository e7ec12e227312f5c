"""Run the real ``partysocket`` npm client in Node and drive it from async tests.

``tests/js/driver.mjs`` speaks line-delimited JSON; :class:`NodePartySocket` sends it commands
and collects its events, so a test can wait for "socket a received X" as a condition.
The npm packages are pinned in ``tests/js/package-lock.json``; :func:`ensure_node_modules`
runs ``npm ci`` there when ``node_modules`` is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"

Event = dict[str, Any]


#: The npm packages the tests drive; ``npm ci`` runs when one of them is missing.
PACKAGES = ("partysocket", "playwright-core", "ws", "y-partykit", "y-websocket", "yjs")


def ensure_node_modules() -> None:
    """Install the pinned npm packages once; skip (locally) or fail (in CI) without Node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI for the npm client tests")
        pytest.skip("node/npm not installed")
    if not all((JS_DIR / "node_modules" / p / "package.json").exists() for p in PACKAGES):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300
        )


class NodePartySocket:
    """A Node process holding named ``PartySocket`` instances."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._ids = itertools.count(1)
        self.events: list[Event] = []
        self._replies: dict[int, Event] = {}
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            message: Event = json.loads(line)
            async with self._changed:
                if "reply" in message:
                    self._replies[message["reply"]] = message
                else:
                    self.events.append(message)
                self._changed.notify_all()

    async def request(self, op: str, **fields: Any) -> Event:
        """Send a command and return its reply (raises if the driver reports an error)."""
        assert self._process.stdin is not None
        ident = next(self._ids)
        self._process.stdin.write(json.dumps({"id": ident, "op": op, **fields}).encode() + b"\n")
        await self._process.stdin.drain()
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: ident in self._replies)
        reply = self._replies.pop(ident)
        if not reply["ok"]:
            raise AssertionError(f"driver failed on {op}: {reply['error']}")
        return reply

    async def wait_event(self, predicate: Callable[[Event], bool], *, seconds: float = 10) -> Event:
        """Wait until an event matching ``predicate`` has been seen and return the first one."""

        def found() -> Event | None:
            return next((e for e in self.events if predicate(e)), None)

        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event

    def of(self, sock: str, kind: str) -> list[Event]:
        """Events of one kind seen so far for one socket."""
        return [e for e in self.events if e.get("sock") == sock and e.get("event") == kind]

    async def messages(self, sock: str, count: int) -> list[Any]:
        """Wait for ``count`` messages on ``sock``; text as ``str``, binary as ``bytes``."""
        await self.wait_event(lambda e: len(self.of(sock, "message")) >= count)
        return [
            e["text"] if "text" in e else bytes(e["bytes"])
            for e in self.of(sock, "message")[:count]
        ]

    async def open(self, sock: str, token: str, *, history: bool = False, **options: Any) -> None:
        """``new PartySocket({...options, query: async () => ({token})})``; with *history*,
        through the recovery snippet ``examples/chat/static/history.js``."""
        await self.request("open", sock=sock, token=token, history=history, options=options)

    async def send(self, sock: str, data: str | bytes) -> bool:
        """``ps.send(data)``; returns partysocket's own result (False when queued)."""
        fields = {"text": data} if isinstance(data, str) else {"bytes": list(data)}
        sent: bool = (await self.request("send", sock=sock, **fields))["sent"]
        return sent

    async def close(self) -> None:
        """Close every socket and end the process."""
        with contextlib.suppress(Exception):
            await self.request("exit")
        async with asyncio.timeout(10):
            await self._process.wait()
        await self._reader


@contextlib.asynccontextmanager
async def node_partysocket(script: str = "driver.mjs") -> AsyncIterator[NodePartySocket]:
    """Start ``node tests/js/<script>`` and stop it at the end of the block.

    ``driver.mjs`` drives partysocket, ``ydriver.mjs`` the Yjs providers; both speak the
    same line protocol.
    """
    ensure_node_modules()
    process = await asyncio.create_subprocess_exec(
        "node",
        script,
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    driver = NodePartySocket(process)
    try:
        await driver.wait_event(lambda e: e.get("event") == "ready")
        yield driver
    finally:
        if process.returncode is None:
            await driver.close()


#: The Chromium the browser tests drive (playwright-core with this executable).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def browser_ready() -> None:
    """Make sure the npm packages and Chromium are there; skip (fail in CI) without Chromium."""
    ensure_node_modules()
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip("chromium is not installed")
