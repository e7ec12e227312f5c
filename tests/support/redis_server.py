"""A real ``redis-server`` on a free loopback port, for the Redis tests and the bench.

Without the binary the tests skip with a reason; with ``CI`` set they fail instead,
so ``.ci/run`` makes them mandatory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from partydeco.testing import free_port

__all__ = ["RedisServer", "redis_binary"]


def redis_binary() -> str:
    """The path of ``redis-server``; skips the test (fails it in CI) when it is missing."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if path is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + "; it is required in CI")
        pytest.skip(message)
    return path


class RedisServer:
    """One ``redis-server`` process in *directory*; :meth:`stop` and :meth:`start` again
    keep the port (and, with *persistent*, the data: AOF with ``appendfsync always``)."""

    def __init__(self, binary: str, directory: Path, *, persistent: bool = False) -> None:
        self.binary = binary
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self._process = subprocess.Popen(
            args, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not start within 10s")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its AOF first) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None
