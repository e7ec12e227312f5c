"""A shared text page on partydeco.yjs: the npm Yjs provider in the browser, documents in rooms.

Run it from the repository root::

    python examples/collab/app.py            # or: partydeco serve examples/collab/app.py

then open http://127.0.0.1:1999/?room=notes&token=alice-token and, in another window,
http://127.0.0.1:1999/?room=notes&token=bob-token: what one types, the other sees, cursors
included, and the text is still there after a restart (it lives in room storage,
``.partydeco/storage.db`` by default). ``viewer-token`` opens the page read-only.

Tokens come from ``COLLAB_TOKENS`` (``token:user:role,...``, role ``editor`` or
``viewer``; in the environment or a ``.env`` file). The defaults are demo tokens: set
your own before exposing the server anywhere. The page sends its token as ``?token=``;
the hook checks it and passes the user and role on as ``X-User-ID`` and ``X-Role``
(deleting any the client sent), and ``read_only`` decides from ``X-Role``.
"""

from __future__ import annotations

from collections.abc import Mapping

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response
from partydeco.yjs import Document, YjsParty

DEMO_TOKENS = "alice-token:alice:editor,bob-token:bob:editor,viewer-token:guest:viewer"

app = App()
docs = YjsParty("docs", app)
docs.static("static")


def accounts(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Parse ``COLLAB_TOKENS`` (``token:user:role,...``) into ``{token: (user, role)}``."""
    found: dict[str, tuple[str, str]] = {}
    for item in env.get("COLLAB_TOKENS", DEMO_TOKENS).split(","):
        token, _, rest = item.strip().partition(":")
        user, _, role = rest.partition(":")
        if token and user:
            found[token] = (user, role or "editor")
    return found


@docs.before_connect
def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    """Accept ``?token=``; forward the user and role (never the client's own headers)."""
    request.headers.remove("X-User-ID")
    request.headers.remove("X-Role")
    account = accounts(lobby.env).get(request.args.get("token", ""))
    if account is None:
        return Response("Unauthorized", status=401)
    request.headers["X-User-ID"], request.headers["X-Role"] = account
    return request


@docs.read_only
def viewers(connection: Connection, ctx: ConnectContext) -> bool:
    return ctx.request.headers["X-Role"] != "editor"


@docs.on_document_change
def count_words(document: Document) -> None:
    """Server-side code changing the document: the word count every page shows."""
    words = len(str(document.get_text("text")).split())
    stats = document.get_map("stats")
    if stats.get("words") != words:
        stats["words"] = words


if __name__ == "__main__":
    app.run()
