"""Server-to-server calls with a shared secret: your backend posts announcements
into a room over HTTP; browsers only listen.

Configure ``ROOM_ADMIN_SECRET`` in the environment (or ``.env``). Without it every
HTTP request is refused with 500 "shared secret not configured" - never accepted.

    curl -X POST -H "Authorization: Bearer $ROOM_ADMIN_SECRET" \\
         -d 'deploy at 5pm' http://127.0.0.1:1999/parties/main/ops
"""

from partydeco import auth, party

party.before_request(auth.require_shared_secret("ROOM_ADMIN_SECRET"))


@party.on_connect
async def listening(connection, ctx):
    connection.send("listening for announcements")


@party.on_request
async def announce(request, room):
    text = await request.text()
    room.broadcast(f"announcement: {text}")
    return {"delivered": len(list(room.get_connections()))}


if __name__ == "__main__":
    party.run()
