"""How late a cron's run starts after its tick, on each storage, and on Redis with two apps.

Usage: python bench/cron_bench.py [--quick]

A per-second cron (``"* * * * * *"``) records ``time.time() - cron.scheduled_time`` as its
handler starts. Measured in this process, one after the other:

- baseline: an asyncio timer set for each whole second (what any scheduler on this event
  loop can do at best);
- memory and SQLite storage, one app;
- Redis (its own ``redis-server``), two apps sharing the keys, so each tick is claimed by
  one of them: the lateness, which app ran each tick, and any tick run twice.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_bench import redis_server

from partydeco import App, Cron, CronLobby
from partydeco.testing import TestClient

TICKS = 3 if "--quick" in sys.argv else 15


def summary(name: str, late: list[float]) -> str:
    ms = sorted(x * 1000 for x in late)
    return (
        f"{name:<28} ticks {len(ms):>3}  median {statistics.median(ms):6.2f} ms  "
        f"max {ms[-1]:6.2f} ms"
    )


async def baseline() -> list[float]:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    for _ in range(TICKS):
        tick = float(int(time.time()) + 1)
        done: asyncio.Future[float] = loop.create_future()
        loop.call_later(tick - time.time(), lambda t=tick, f=done: f.set_result(time.time() - t))
        late.append(await done)
    return late


class Runs:
    """``(app, tick, lateness)`` of each run; :attr:`enough` is set after ``TICKS + 1``."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, float, float]] = []
        self.enough = asyncio.Event()

    def add(self, name: str, cron: Cron) -> None:
        self.runs.append((name, cron.scheduled_time, time.time() - cron.scheduled_time))
        if len(self.runs) > TICKS:
            self.enough.set()

    def lateness(self) -> list[float]:
        return [late for _, _, late in self.runs[1:]]  # the first may be a start-up catch-up


def cron_app(storage: str | None, runs: Runs, name: str, **options: object) -> App:
    app = App(storage=storage, **options)

    @app.party().on_cron("* * * * * *")
    def tick(cron: Cron, lobby: CronLobby) -> None:
        runs.add(name, cron)

    return app


async def one_app(storage: str) -> list[float]:
    runs = Runs()
    async with TestClient(cron_app(storage, runs, "a")):
        await runs.enough.wait()
    return runs.lateness()


async def two_apps_on_redis(url: str) -> tuple[list[float], dict[str, int], int]:
    runs = Runs()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    options = {"redis_url": url, "redis_prefix": prefix}
    a = cron_app(None, runs, "A", **options)  # storage in Redis too: ticks are claimed
    b = cron_app(None, runs, "B", **options)
    async with TestClient(a), TestClient(b):
        await runs.enough.wait()
    ticks = [tick for _, tick, _ in runs.runs]
    by_app = {name: sum(1 for n, _, _ in runs.runs if n == name) for name in "AB"}
    return runs.lateness(), by_app, len(ticks) - len(set(ticks))


async def main() -> None:
    print(summary("baseline: asyncio timer", await baseline()))
    print(summary("cron, memory storage", await one_app("memory://")))
    with tempfile.TemporaryDirectory() as tmp:
        print(summary("cron, SQLite storage", await one_app(str(Path(tmp) / "s.db"))))
    with redis_server() as url:
        late, by_app, twice = await two_apps_on_redis(url)
    print(summary("cron, Redis, two apps", late) + f"  runs {by_app}  run twice {twice}")


if __name__ == "__main__":
    asyncio.run(main())
