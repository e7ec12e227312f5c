"""Memory that many sockets could add up to, measured on a real server process: unfinished
messages (300 sockets each holding 1 MB of a message they never finish) and slow receivers
(sockets that never read while the server sends them personalised 64 KiB messages).

Each test reads the server's resident memory from ``/proc`` and prints the figures."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import Process, eventually, start_process
from tests.support.rawws import TEXT, RawSocket, frame

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

MiB = 1 << 20


def memory(process: Process) -> tuple[float, float]:
    """The server's resident memory now and at its peak, in MiB."""
    status = Path(f"/proc/{process.popen.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def pressure_server(**options: object) -> Process:
    """The pressure app (``tests/support/pressure_app.py``) in its own process."""
    return start_process(
        ["-m", "tests.support.pressure_app"],
        env={"PRESSURE_OPTIONS": json.dumps(options)},
        ready_path="/parties/main/ready",
    )


async def closes(process: Process) -> dict[str, int]:
    """The close codes the server's ``on_close`` saw, with their counts."""
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://{process.base}/parties/main/report")
        return dict(r.json()["closes"])


def at_least(process: Process, total: int, code: str | None = None) -> object:
    """A condition for ``eventually``: the closes once *total* of them (of *code*) ran."""

    async def check() -> dict[str, int] | None:
        seen = await closes(process)
        counted = seen.get(code, 0) if code else sum(seen.values())
        return seen if counted >= total else None

    return check


async def test_300_sockets_holding_unfinished_messages_stay_within_the_budget() -> None:
    """The issue's finding 5: 300 sockets each holding 1 MB of a message they never finish
    took a server from 52 to 356 MB. With max_unfinished_bytes (32 MiB by default) the
    sockets past the budget are closed with 1013 and the server grows by about the budget."""
    server = pressure_server()  # max_unfinished_bytes: 32 MiB
    sockets: list[RawSocket] = []
    try:
        for i in range(300):
            ws = await RawSocket.open(server.base, f"/parties/main/r{i % 10}")
            assert await ws.read_frame() == (TEXT, b"hello")
            sockets.append(ws)
        before, _ = memory(server)
        piece = frame(TEXT, b"x" * 1_000_000, fin=False)
        for ws in sockets:
            ws.writer.write(piece)
        await asyncio.gather(*(ws.writer.drain() for ws in sockets), return_exceptions=True)
        # 33 sockets fit in the budget with their 1,000,000 bytes; the others are refused
        seen = await eventually(at_least(server, 267, "1013"), timeout=20)
        refused = seen["1013"]
        now, peak = memory(server)
        for ws in sockets:
            ws.close()
        await eventually(at_least(server, 300), timeout=20)
        after, _ = memory(server)
    finally:
        for ws in sockets:
            ws.close()
        server.stop()
    print(
        f"\nunfinished: RSS {before:.0f} MiB before, {now:.0f} MiB holding ({peak:.0f} peak), "
        f"{after:.0f} MiB after closing; {300 - refused} sockets held 1 MB, {refused} got 1013"
    )
    # 32 MiB held at most; the process grows by about three times that, read buffers and
    # the allocator's slack included (see docs/guide/security.md); it grew by 300 before
    assert peak - before < 140, f"grew by {peak - before:.0f} MiB"


async def test_slow_receivers_stay_within_the_process_outbox_budget() -> None:
    """The issue's finding 6: the per-socket outbox cap multiplies by sockets. With
    max_pending_bytes_per_process, the receivers with the most queued are closed with
    1013 and the server's memory stays near the budget."""
    server = pressure_server(max_pending_bytes_per_process=16 * MiB)
    stalled: list[RawSocket] = []
    readers: list[RawSocket] = []
    try:
        stalled += [
            await RawSocket.open(server.base, "/parties/main/slow", receive_buffer=4096)
            for _ in range(30)
        ]
        for ws in stalled:
            assert await ws.read_frame() == (TEXT, b"hello")
        controller = await RawSocket.open(server.base, "/parties/main/slow")
        readers.append(controller)
        assert await controller.read_frame() == (TEXT, b"hello")
        before, _ = memory(server)
        # 100 x 64 KiB to each of 31 receivers: 6.4 MB each, under the 8 MiB per-socket cap
        await controller.send_frame(TEXT, b"fill:100:65536")
        for _ in range(100):
            opcode, payload = await asyncio.wait_for(controller.read_frame(), 30)
            assert opcode == TEXT and len(payload) == 65536
        seen = await eventually(
            at_least(server, 25, "1013"), timeout=30, message="the stalled sockets stayed open"
        )
        now, peak = memory(server)
    finally:
        for ws in [*stalled, *readers]:
            ws.close()
        server.stop()
    print(
        f"\nslow receivers: RSS {before:.0f} MiB before, {now:.0f} MiB after, {peak:.0f} peak; "
        f"closes {seen}"
    )
    assert seen.get("1013", 0) >= 25, seen
    assert peak - before < 64, f"grew by {peak - before:.0f} MiB"
