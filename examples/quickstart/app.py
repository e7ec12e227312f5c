"""The quickstart: a room that greets each user and relays messages.

Run it with ``TOKEN=secret python examples/quickstart/app.py`` (or put
``TOKEN=secret`` in a ``.env`` file), then connect to
``ws://127.0.0.1:1999/parties/main/lobby?token=secret``; the room answers HTTP at
``http://127.0.0.1:1999/parties/main/lobby?token=secret``.
"""

from partydeco import Response, party, requires_env


@party.before_connect  # WebSockets
@party.before_request  # plain HTTP
@requires_env("TOKEN")  # a warning as the app starts when TOKEN is not set
async def authenticate(request, lobby):
    expected = lobby.env.get("TOKEN")
    if not expected or request.args.get("token") != expected:
        return Response("Unauthorized", status=401)  # nothing reaches the room
    request.headers["X-User-ID"] = "alice"  # visible to on_connect and on_request
    return request


@party.on_connect
async def hello(connection, ctx):
    connection.send(f"Hello {ctx.request.headers['X-User-ID']} from party!")


@party.on_message
async def relay(message, sender):
    sender.room.broadcast(message, without=[sender.id])


@party.on_request
async def info(request, room):
    return {"room": room.id, "connections": len(list(room.get_connections()))}


if __name__ == "__main__":
    party.run()  # Hypercorn on 127.0.0.1:1999; `hypercorn app:party` works too
