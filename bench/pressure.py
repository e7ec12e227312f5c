"""Server memory under clients that hold it on purpose: ``python bench/pressure.py``.

Two cases from issue 17, each against a fresh server process (the app of
``tests/support/pressure_app.py``, with the partydeco of this checkout, or of
``--against DIR``):

- ``unfinished``: 300 sockets each send 1 MB of a text message and never finish it.
- ``slow``: 30 sockets stop reading (a 4 KiB receive buffer), then the server sends
  100 personalised 64 KiB messages to each of them and to one reader.

Prints the server's resident memory (``VmRSS``) before, once it settled, and at its
peak (``VmHWM``), and how many sockets the server closed (``1013``) and which stayed.

    python bench/pressure.py                        # this checkout, defaults
    python bench/pressure.py --against ../main      # another checkout, same clients
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.rawws import TEXT, RawSocket, frame  # noqa: E402
from tests.support.servers import free_port  # noqa: E402


def memory(pid: int) -> tuple[float, float]:
    """``VmRSS`` and ``VmHWM`` of *pid*, in MiB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


async def settled(pid: int) -> float:
    """``VmRSS`` once it has not changed for a second."""
    last, _ = memory(pid)
    while True:
        await asyncio.sleep(1)
        now, _ = memory(pid)
        if abs(now - last) < 0.5:
            return now
        last = now


def start(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": f"{root}{os.pathsep}{ROOT}"}
    app = ROOT / "tests" / "support" / "pressure_app.py"
    process = subprocess.Popen(
        [sys.executable, str(app)], cwd=root, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"127.0.0.1:{port}"


async def ready(base: str) -> None:
    host, port = base.split(":")
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def closes(sockets: list[RawSocket]) -> dict[str, int]:
    codes = await asyncio.gather(*(ws.close_code(timeout=2) for ws in sockets))
    counted: dict[str, int] = {}
    for code in codes:
        key = "open" if code is None else str(code)
        counted[key] = counted.get(key, 0) + 1
    return counted


async def unfinished(base: str, pid: int) -> str:
    sockets = []
    for i in range(300):
        ws = await RawSocket.open(base, f"/parties/main/r{i % 10}")
        await ws.read_frame()
        sockets.append(ws)
    before = await settled(pid)
    piece = frame(TEXT, b"x" * 1_000_000, fin=False)
    for ws in sockets:
        ws.writer.write(piece)
    await asyncio.gather(*(ws.writer.drain() for ws in sockets), return_exceptions=True)
    counted = await closes(sockets)
    after = await settled(pid)
    _, peak = memory(pid)
    for ws in sockets:
        ws.close()
    return f"before {before:.0f}, settled {after:.0f}, peak {peak:.0f} MiB; sockets {counted}"


async def slow(base: str, pid: int) -> str:
    stalled = []
    for _ in range(30):
        ws = await RawSocket.open(base, "/parties/main/slow", receive_buffer=4096)
        await ws.read_frame()
        stalled.append(ws)
    reader = await RawSocket.open(base, "/parties/main/slow")
    await reader.read_frame()
    before = await settled(pid)
    await reader.send_frame(TEXT, b"fill:100:65536")
    for _ in range(100):
        await asyncio.wait_for(reader.read_frame(), 60)
    after = await settled(pid)
    _, peak = memory(pid)
    counted = await closes(stalled)
    for ws in [*stalled, reader]:
        ws.close()
    return f"before {before:.0f}, settled {after:.0f}, peak {peak:.0f} MiB; stalled {counted}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--cases", default="unfinished,slow")
    args = parser.parse_args()
    for case in args.cases.split(","):
        process, base = start(args.against.resolve())
        try:
            await ready(base)
            result = await {"unfinished": unfinished, "slow": slow}[case](base, process.pid)
            print(f"{case:10} {args.against.resolve().name}: {result}", flush=True)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    asyncio.run(main())
