"""A browser chat on partydeco: a static page, partysocket in the browser, rooms on the server.

Run it from the repository root::

    python examples/chat/app.py            # or: partydeco serve examples/chat/app.py

then open http://127.0.0.1:1999/?room=lobby&token=alice-token and, in another tab,
http://127.0.0.1:1999/?room=lobby&token=bob-token.

Tokens come from ``CHAT_TOKENS`` (``token:user,token:user``; in the environment or a ``.env``
file). The defaults are demo tokens: set your own before exposing the server anywhere.
The page sends its token as ``?token=`` (browsers cannot set WebSocket headers); the hooks
check it and pass the user on as ``X-User-ID``, which makes them the connection's principal.

The party keeps presence (who is here, with ``partydeco.presence`` / ``join`` / ``leave``
messages; a reloading tab is not a leave) and the last 100 messages, so a page that lost
its connection gets what it missed when it reconnects (``static/history.js``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from quart import Response as QuartResponse
from quart import send_from_directory

from partydeco import App, Connection, Lobby, Request, Response, Room

STATIC = Path(__file__).resolve().parent / "static"
DEMO_TOKENS = "alice-token:alice,bob-token:bob,carol-token:carol"

app = App()
chat = app.party("main")
chat.configure(presence=True, history=100)


class Say(msgspec.Struct, tag="message"):
    """What a page sends: ``{"type": "message", "text": "..."}``."""

    text: str


def users_by_token(env: Mapping[str, str]) -> dict[str, str]:
    """Parse ``CHAT_TOKENS`` (``token:user,...``) into ``{token: user}``."""
    pairs = (item.partition(":") for item in env.get("CHAT_TOKENS", DEMO_TOKENS).split(","))
    return {token.strip(): user.strip() for token, _, user in pairs if token.strip() and user}


def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    """Accept ``?token=`` or ``Authorization: Bearer``; forward the user as ``X-User-ID``."""
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    token = bearer if scheme.lower() == "bearer" else request.args.get("token", "")
    user = users_by_token(lobby.env).get(token)
    if user is None:
        return Response("Unauthorized", status=401)
    request.headers["X-User-ID"] = user
    return request


chat.before_connect(authenticate)
chat.before_request(authenticate)


@chat.on_message
async def say(message: Say, sender: Connection) -> None:
    text = message.text.strip()[:500]
    if text:  # kept in the room's history: sent with its offset
        sender.room.broadcast({"type": "message", "from": sender.principal, "text": text})


@chat.on_request
async def who(request: Request, room: Room) -> dict[str, Any]:
    users = sorted(room.presence.users())
    return {"room": room.id, "you": request.headers["X-User-ID"], "users": users}


@app.quart.route("/")
async def index() -> QuartResponse:
    return await send_from_directory(STATIC, "index.html")


@app.quart.route("/<path:name>")
async def asset(name: str) -> QuartResponse:
    return await send_from_directory(STATIC, name)


if __name__ == "__main__":
    app.run()
