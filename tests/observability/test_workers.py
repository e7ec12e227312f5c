"""Metrics with ``partydeco serve --workers 2``: any worker's scrape counts every worker."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from tests.support import eventually, free_port, start_process
from tests.support.scrape import scrape, value


async def test_two_workers_report_exact_totals_and_clean_up(tmp_path: Path) -> None:
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", "tests/support/ops_app.py", "--port", str(port),
         "--workers", "2"],
        port=port,
        env={"PARTYDECO_METRICS": "1", "TMPDIR": str(tmp_path)},
        ready_path="/pid",
    )  # fmt: skip
    try:
        (shared,) = list(tmp_path.glob("partydeco-metrics-*"))
        sockets: list[ClientConnection] = []
        pids: set[int] = set()
        async with AsyncExitStack() as stack:

            async def both_workers_hold_sockets() -> bool:
                ws = await stack.enter_async_context(
                    connect(f"ws://{server.base}/parties/chat/r{len(sockets)}?token=t-u")
                )
                sockets.append(ws)
                pids.add(json.loads(await ws.recv())["pid"])
                return len(pids) == 2 and len(sockets) >= 4

            await eventually(both_workers_hold_sockets, timeout=20, message="one worker only")
            for ws in sockets:
                await ws.send("hi")
                assert await ws.recv() == "hi"
            total = len(sockets)

            async def every_scrape_counts_all() -> bool:
                # each worker holds only some of the sockets: a scrape answered by
                # either must have read the other's values to count them all
                texts = [await scrape(server.base) for _ in range(6)]
                return all(
                    value(t, "partydeco_connections", party="chat") == total
                    and value(t, "partydeco_rooms", party="chat") == total
                    and value(t, "partydeco_messages_received_total", party="chat") == total
                    and value(t, "partydeco_messages_sent_total", party="chat") == 2 * total
                    and value(t, "partydeco_handshakes_total", party="chat", outcome="accepted",
                              status="101") == total
                    for t in texts
                )

            await eventually(every_scrape_counts_all, timeout=10, message="totals differ")
        text = ""

        async def closed_everywhere() -> bool:
            nonlocal text
            text = await scrape(server.base)
            return value(text, "partydeco_connections", party="chat") == 0

        await eventually(closed_everywhere, timeout=10, message="connections still counted")
        assert value(text, "partydeco_closes_total", party="chat", code="1000") == total
        assert shared.is_dir() and list(shared.glob("*.db"))
    finally:
        server.stop()
    assert not shared.exists(), "the shared metrics directory was left behind"
