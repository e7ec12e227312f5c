"""A Yjs app for the npm-provider tests, in-process (``build()``) or as a cluster process.

``partydeco serve tests/support/yjs_app.py --redis URL`` serves ``app``. Rooms of the ``docs``
party are Yjs documents; ``?token=editor-token`` may edit, ``?token=viewer-token`` may
only read (the hook decides the role: a client's ``X-Role`` header is dropped), any
other token is refused with 401. ``GET /parties/docs/<room>?token=...`` answers the
text of the ``Y.Text`` "text" and the pid of the process that owns the room.
"""

from __future__ import annotations

import os
from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room
from partydeco.yjs import YjsParty

ROLES = {"editor-token": "editor", "viewer-token": "viewer"}


def build(**options: Any) -> App:
    """A fresh app with the ``docs`` party."""
    app = App(**options)
    docs = YjsParty("docs", app)

    def authenticate(request: Request, lobby: Lobby) -> Request | Response:
        request.headers.remove("X-Role")
        role = ROLES.get(request.args.get("token", ""))
        if role is None:
            return Response("Unauthorized", status=401)
        request.headers["X-Role"] = role
        return request

    docs.before_connect(authenticate)
    docs.before_request(authenticate)

    @docs.read_only
    def viewers(connection: Connection, ctx: ConnectContext) -> bool:
        return ctx.request.headers["X-Role"] != "editor"

    @docs.on_request
    def read(request: Request, room: Room) -> dict[str, Any]:
        return {"text": str(docs.document(room).get_text("text")), "pid": os.getpid()}

    return app


app = build(
    redis_lease=float(os.environ.get("LEASE", "5")),
    redis_prefix=os.environ.get("REDIS_PREFIX", "partydeco"),
    max_messages_per_second=None,
)
