"""Scheduled jobs: a cron that posts the time to a room, and one that resets it nightly.

Run it with ``python examples/cron/app.py`` (``CLOCK_SCHEDULE="* * * * * *"`` ticks every
second instead of every minute; a sixth field is seconds).

- WebSocket ``ws://127.0.0.1:1999/parties/main/clock``: ``{"ticks": n, "last": ...}`` on
  connect, then the same after each tick (``last`` is the tick's time, ISO 8601 in UTC).
- ``GET /parties/main/clock`` answers the same. Other methods get 405: clients cannot
  post ticks, because ``before_request`` refuses them, while the crons' calls through
  ``lobby.parties`` go room to room and skip the hooks.
- ``nightly`` runs at 03:00 UTC and sets the count back to zero.

A cron belongs to the party, not to a room: it runs once per tick (across every worker
and host on Redis) and reaches rooms through ``lobby.parties``. The count lives in
``.partydeco/storage.db``; after a restart the crons go on, and a tick missed while the
server was down runs once when it starts.
"""

import os

from partydeco import Response, party

CLOCK = os.environ.get("CLOCK_SCHEDULE", "* * * * *")


@party.on_cron(CLOCK)
async def clock(cron, lobby):
    room = lobby.parties["main"].get("clock")
    await room.fetch("/tick", method="POST", body=cron.scheduled_at.isoformat())


@party.on_cron("0 3 * * *")
async def nightly(cron, lobby):
    await lobby.parties["main"].get("clock").fetch("/reset", method="POST")


@party.before_request
def read_only(request, lobby):
    if request.method != "GET":
        return Response("Method Not Allowed", status=405)
    return None


async def state(room):
    return {"ticks": await room.storage.get("ticks") or 0, "last": await room.storage.get("last")}


@party.on_connect
async def welcome(connection, ctx):
    connection.send(await state(connection.room))


@party.on_request
async def clock_room(request, room):
    if request.method == "POST" and request.path.endswith("/tick"):
        last = (await request.body()).decode()
        await room.storage.put({"ticks": (await state(room))["ticks"] + 1, "last": last})
        room.broadcast(await state(room))
    elif request.method == "POST" and request.path.endswith("/reset"):
        await room.storage.put("ticks", 0)
    return await state(room)


if __name__ == "__main__":
    party.run()
