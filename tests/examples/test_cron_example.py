"""The cron example, run as a real server process with a per-second clock."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.support import ROOT, start_process

CRON = str(ROOT / "examples" / "cron" / "app.py")


async def test_the_clock_cron_posts_each_tick_to_the_room(tmp_path: Path) -> None:
    server = start_process([CRON], cwd=tmp_path, env={"CLOCK_SCHEDULE": "* * * * * *"})
    try:
        async with connect(f"ws://{server.base}/parties/main/clock") as ws:

            async def state() -> dict[str, Any]:
                return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

            first = await state()  # on connect
            ticks = [await state() for _ in range(3)]  # then one per tick
        counts = [first["ticks"], *(tick["ticks"] for tick in ticks)]
        assert counts == sorted(set(counts))
        times = [datetime.fromisoformat(str(tick["last"])) for tick in ticks]
        assert times[0].utcoffset() == timedelta(0)
        assert times == sorted(set(times))
        assert all(t.microsecond == 0 for t in times)
        async with httpx.AsyncClient() as client:
            url = f"http://{server.base}/parties/main/clock"
            refused = await client.post(f"{url}/tick", content=b"2000-01-01T00:00:00+00:00")
            assert refused.status_code == 405
            now = (await client.get(url)).json()
            assert now["ticks"] >= ticks[-1]["ticks"]
            assert now["last"] != "2000-01-01T00:00:00+00:00"
    finally:
        server.stop()
