"""Real servers for tests: an app on Hypercorn in the test's loop, or a server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from partydeco import App
from partydeco.testing import free_port, serving

__all__ = ["ROOT", "Process", "free_port", "serve", "start_process"]

#: The repository's root folder.
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def serve(app: App, **options: Any) -> AsyncIterator[str]:
    """A real Hypercorn server for *app* in this event loop; yields ``"127.0.0.1:PORT"``.

    Pings are off unless asked for: Hypercorn's ping task outlives a closed
    socket by up to one interval, which would delay every server's exit.
    """
    options.setdefault("websocket_ping_interval", None)
    async with serving(app, **options) as base:
        yield base


class Process:
    """A server running in a subprocess (for restarts, signals and kill -9)."""

    def __init__(self, popen: subprocess.Popen[bytes], port: int) -> None:
        self.popen = popen
        self.port = port
        self.base = f"127.0.0.1:{port}"

        self._output: str | None = None

    def output(self) -> str:
        """Everything the process printed; waits for it to exit."""
        if self._output is None:
            out, _ = self.popen.communicate(timeout=15)
            self._output = out.decode(errors="replace")
        return self._output

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and collect its output."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.output()


def start_process(
    args: list[str],
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready_path: str = "/__ready__",
) -> Process:
    """Start ``python *args*`` with ``PORT`` set, and wait until it answers HTTP."""
    port = port or free_port()
    full_env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT), **(env or {})}
    popen = subprocess.Popen(
        [sys.executable, *args],
        env=full_env,
        cwd=cwd or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        if popen.poll() is not None:
            out = popen.stdout.read().decode() if popen.stdout else ""
            raise AssertionError(f"server exited early ({popen.returncode}):\n{out}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1)
            return Process(popen, port)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                popen.kill()
                raise AssertionError("server did not start within 20s") from None
            time.sleep(0.05)
