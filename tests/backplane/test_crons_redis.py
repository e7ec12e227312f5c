"""Crons on Redis: each tick runs once across workers, processes and restarts.

The first tests start real server processes (``partydeco serve tests/support/cron_app.py
--redis URL``, with ``--workers 2`` or as two processes) whose per-second cron logs every
run in one room; the last one runs two apps in this process to control what Redis holds
before they start.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from partydeco import App, Cron, CronLobby
from partydeco.cron import Schedule
from partydeco.crontab import cron_key
from partydeco.storage.redis import RedisStorage
from tests.support import Process, eventually, free_port, serve, start_process
from tests.support.redis_server import RedisServer


def start_node(redis: RedisServer, prefix: str, *, workers: int = 1) -> Process:
    port = free_port()
    args = ["-m", "partydeco", "serve", "tests/support/cron_app.py", "--port", str(port)]
    args += ["--redis", redis.url, "--workers", str(workers)]
    return start_process(args, port=port, env={"REDIS_PREFIX": prefix})



async def runs(node: Process) -> list[tuple[float, int]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{node.base}/parties/main/log", timeout=10)
        assert response.status_code == 200, response.text
        return [(float(tick), int(pid)) for tick, pid in response.json()["runs"]]


@pytest.mark.parametrize("layout", ["two workers", "two processes"])
async def test_each_tick_runs_once_across_the_cluster(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process], layout: str
) -> None:
    if layout == "two workers":
        nodes.append(start_node(redis_server, redis_prefix, workers=2))
    else:
        nodes.append(start_node(redis_server, redis_prefix))
        nodes.append(start_node(redis_server, redis_prefix))
    wanted = 6

    async def enough() -> list[tuple[float, int]] | None:
        logged = await runs(nodes[-1])
        return logged if len(logged) >= wanted else None

    logged = await eventually(enough, timeout=30, interval=0.2)
    ticks = [tick for tick, _ in logged]
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {logged}"
    assert all(tick == int(tick) for tick in ticks)
    assert ticks == sorted(ticks)
    # Every process answers with the same log: the room has one owner.
    assert (await runs(nodes[0]))[: len(logged)] == logged


async def test_a_tick_missed_while_no_process_ran_runs_once_on_redis(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    schedule = Schedule("0 * * * *")
    ran: list[tuple[str, Cron]] = []

    def build(name: str) -> App:
        app = App(redis_url=redis_server.url, redis_prefix=redis_prefix, redis_lease=1.0)

        @app.party().on_cron(schedule.expression)
        def report(cron: Cron, lobby: CronLobby) -> None:
            ran.append((name, cron))

        return app

    latest = schedule.latest(time.time())
    assert latest is not None
    key = cron_key("main", "report")
    async with RedisStorage(redis_server.url, prefix=redis_prefix) as storage:
        # As if every process had stopped three hours before the latest tick.
        await storage.set_alarm(key, latest - 3 * 3600)
        async with serve(build("A")), serve(build("B")):
            following = schedule.next_after(latest)

            async def moved_on() -> Any:
                return await storage.get_alarm(key) == following

            await eventually(moved_on, timeout=10)
            assert len(ran) == 1, ran  # one run for the missed ticks, in one process
            assert ran[0][1].scheduled_time == schedule.latest(time.time())
