"""Notes that expire: a room that cleans itself up with an alarm.

Run it with ``python examples/alarms/app.py`` (``NOTE_TTL=10`` for ten-second notes).

- ``POST /parties/main/<room>`` with a text body adds a note.
- ``GET /parties/main/<room>`` lists the notes and how many clean-ups ran.
- A WebSocket to the room gets ``{"notes": [...]}`` on connect and
  ``{"expired": n}`` after each clean-up.

Each note lives ``NOTE_TTL`` seconds (default 60). The room keeps one alarm, set
for when its oldest note expires; ``on_alarm`` deletes the expired notes and sets
the next alarm. It runs whether or not anyone is connected, and after a server
restart the overdue alarm fires at once (the room is loaded, ``on_start`` runs,
then ``on_alarm``).
"""

import os
import time

from partydeco import party

TTL = float(os.environ.get("NOTE_TTL", "60"))


def note_key(at: float) -> str:
    return f"note:{int(at * 1e6):020d}"  # fixed width, so key order is time order


async def schedule_next(room):
    oldest = await room.storage.list(prefix="note:", limit=1)
    if oldest:
        (note,) = oldest.values()
        await room.storage.set_alarm(note["at"] + TTL)
    else:
        await room.storage.delete_alarm()


@party.on_start
async def started(room):
    await room.storage.put("starts", (await room.storage.get("starts") or 0) + 1)


@party.on_connect
async def welcome(connection, ctx):
    stored = await connection.room.storage.list(prefix="note:")
    connection.send({"notes": [note["text"] for note in stored.values()]})


@party.on_request
async def notes(request, room):
    if request.method == "POST":
        now = time.time()
        text = (await request.body()).decode("utf-8", "replace")[:1000]
        await room.storage.put(note_key(now), {"text": text, "at": now})
        if await room.storage.get_alarm() is None:
            await room.storage.set_alarm(now + TTL)
    stored = await room.storage.list(prefix="note:")
    return {
        "room": room.id,
        "notes": [note["text"] for note in stored.values()],
        "cleanups": await room.storage.get("cleanups") or 0,
        "cleaned_by": await room.storage.get("cleaned_by"),
    }


@party.on_alarm
async def cleanup(room):
    # room.id works here (in PartyKit it throws inside onAlarm).
    cutoff = note_key(time.time() - TTL + 0.001)
    expired = await room.storage.list(prefix="note:", end=cutoff)
    async with room.storage.transaction() as tx:
        await tx.delete(list(expired))
        await tx.put("cleanups", (await tx.get("cleanups") or 0) + 1)
        await tx.put("cleaned_by", room.id)
    room.broadcast({"expired": len(expired)})
    await schedule_next(room)


if __name__ == "__main__":
    party.run()
