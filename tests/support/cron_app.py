"""The app the cron cluster tests run in separate processes.

``partydeco serve tests/support/cron_app.py --redis URL [--workers 2]``. A cron runs
every second (``CRON_SCHEDULE`` changes it) and logs its tick and its process's pid
in the room ``main/log`` through ``lobby.parties``, wherever that room's owner is.
``GET /parties/main/log`` answers ``{"runs": [[tick, pid], ...]}`` (the latest 500).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from partydeco import App, Cron, CronLobby, Request, Room

app = App(
    redis_prefix=os.environ.get("REDIS_PREFIX", "partydeco"),
    idle_timeout=600,
)
party = app.party()

_run = msgspec.json.Encoder()
_runs = msgspec.json.Decoder(tuple[float, int])


@party.on_cron(os.environ.get("CRON_SCHEDULE", "* * * * * *"))
async def tick(cron: Cron, lobby: CronLobby) -> None:
    body = _run.encode((cron.scheduled_time, os.getpid()))
    response = await lobby.parties["main"].get("log").fetch("", method="POST", body=body)
    if response.status != 200:
        raise RuntimeError(f"the log answered {response.status}")  # retried


@party.on_request
async def log(request: Request, room: Room) -> Any:
    runs: list[Any] = await room.storage.get("runs") or []
    if request.method == "POST":
        runs = [*runs, list(_runs.decode(await request.body()))][-500:]
        await room.storage.put("runs", runs)
    return {"runs": runs}
