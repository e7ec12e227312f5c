"""A shared counter kept in room storage: it survives a server restart.

Run it with ``python examples/counter/app.py`` and open http://127.0.0.1:1999/ (the
page in ``public/`` is served as a static asset), or talk to a room directly:

- WebSocket ``ws://127.0.0.1:1999/parties/main/<room>``: the server sends the count
  on connect and after every change; send ``increment`` to add one.
- ``GET /parties/main/<room>`` returns ``{"count": n}``; ``POST`` adds one.

The count lives in ``.partydeco/storage.db`` under the working directory (set
``PARTYDECO_STORAGE`` to put it elsewhere), so stopping and starting the server
keeps it.
"""

from partydeco import party

party.static("public")


async def increment(room):
    async with room.storage.transaction() as tx:  # concurrent increments never collide
        count = (await tx.get("count") or 0) + 1
        await tx.put("count", count)
    room.broadcast(str(count))
    return count


@party.on_connect
async def welcome(connection, ctx):
    connection.send(str(await connection.room.storage.get("count") or 0))


@party.on_message
async def on_message(message, sender):
    if message == "increment":
        await increment(sender.room)


@party.on_request
async def counter(request, room):
    if request.method == "POST":
        return {"count": await increment(room)}
    return {"count": await room.storage.get("count") or 0}


if __name__ == "__main__":
    party.run()
