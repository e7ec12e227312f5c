"""Party handles: the decorators users write, bound to a party name.

``partydeco.party`` is the ``main`` party; ``Party("chat")`` is the party
served at ``/parties/chat/<room>``. A handle made without an app registers on
the current default app (see :class:`~partydeco.App`), so a test can swap the
app with ``with App() as app:``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .appstack import default_app
from .cron import Schedule
from .routing import MAIN, PARTY_NAME
from .types import (
    AlarmHandlerT,
    BeforeHookT,
    CloseHandlerT,
    ConnectHandlerT,
    CronHandlerT,
    ErrorHandlerT,
    MessageHandlerT,
    PresenceHandlerT,
    RequestHandlerT,
    StartHandlerT,
    TagsHandlerT,
)

if TYPE_CHECKING:
    from .app import App
    from .types import Receive, Scope, Send

__all__ = ["Party", "party"]


class Party:
    """The handle of one named party, carrying its decorators.

    Each decorator registers the function and returns it unchanged, after checking
    that partydeco can call it (:class:`~partydeco.HandlerSignatureError` otherwise).
    Handlers may be ``async def`` or plain ``def``; plain ones run on the event loop,
    so keep them quick (dev mode names a handler that blocks it).

    Example::

        chat = Party("chat")

        @chat.on_message
        async def relay(message, sender):
            sender.room.broadcast(message, without=[sender.id])

    Args:
        name: the party's name, matching ``[a-z0-9_-]+``.
        app: the app to register on; by default the current default app.
    """

    __slots__ = ("_app", "name")

    def __init__(self, name: str = MAIN, app: App | None = None) -> None:
        if not PARTY_NAME.match(name):
            raise ValueError(f"party name {name!r} must be lowercase letters, digits, '-' or '_'")
        self.name = name
        self._app = app

    @property
    def app(self) -> App:
        """The app this handle registers on."""
        if self._app is not None:
            return self._app
        return default_app()

    def configure(self, **options: Any) -> None:
        """Set options for this party only, over the app's.

        The per-party options are ``allowed_origins``, ``require_origin``,
        ``cors``, ``cors_max_age``, ``token_refresh``, ``token_leeway``,
        ``max_connections_per_room``, ``max_messages_per_second``,
        ``message_burst``, ``message_rate_action``, ``max_bytes_per_second``,
        ``byte_burst``, and the presence and history options ``presence``,
        ``presence_grace``, ``presence_snapshot``, ``history``, ``history_ttl`` and
        ``history_bytes`` (see :class:`~partydeco.Config`). Limits per client address,
        per process and ``trusted_proxies`` are process-wide: pass them to ``App()``.

        Example::

            api = Party("api")
            api.configure(cors=True, allowed_origins=["https://app.example.com"])
            chat = Party("chat")
            chat.configure(presence=True, history=100)

        Raises:
            ValueError: an option is unknown, process-wide, or has a bad value.
        """
        self.app.configure_party(self.name, **options)

    def before_connect(self, f: BeforeHookT) -> BeforeHookT:
        """Register ``f(request, lobby)``, run before a WebSocket reaches the room.

        Return the request (maybe with changed headers) to let the connection
        through, ``None`` to forward the original, or a
        :class:`~partydeco.Response` to refuse: the client then gets that status,
        headers and body as the handshake's answer and no socket opens. An
        exception refuses too: :class:`~partydeco.RefusedError` with its status and
        message, an ``HTTPException`` with its own, a backend that is down
        (``OSError``, ``ConnectionError``, ``TimeoutError``) with 503, anything else
        with a bare 401; the exception is logged, credentials redacted. Hooks run in
        registration order; the first ``Response`` wins.

        Example::

            @party.before_connect
            async def authenticate(request, lobby):
                if request.args.get("token") != lobby.env.get("TOKEN"):
                    return Response("Unauthorized", status=401)
                request.headers["X-User-ID"] = "alice"
                return request
        """
        self.app.add_handler(self.name, "before_connect", f)
        return f

    def before_request(self, f: BeforeHookT) -> BeforeHookT:
        """Register ``f(request, lobby)``, run before an HTTP request reaches the room.

        The same contract as :meth:`before_connect`, for HTTP requests.
        """
        self.app.add_handler(self.name, "before_request", f)
        return f

    def on_start(self, f: StartHandlerT) -> StartHandlerT:
        """Register ``f(room)``, awaited once per room before its first connection or request.

        If it raises, the arrival that started the room fails and the next one
        retries it.
        """
        self.app.add_handler(self.name, "on_start", f)
        return f

    def on_connect(self, f: ConnectHandlerT) -> ConnectHandlerT:
        """Register ``f(connection, ctx)``, run when a WebSocket joins a room.

        ``ctx.request`` is the upgrade request as the ``before_connect`` hooks
        forwarded it. An exception closes that socket with 1011.

        Example::

            @party.on_connect
            async def hello(connection, ctx):
                connection.send(f"Hello {ctx.request.headers['X-User-ID']}!")
        """
        self.app.add_handler(self.name, "on_connect", f)
        return f

    def on_message(self, f: MessageHandlerT) -> MessageHandlerT:
        """Register ``f(message, sender)``, run for each frame a client sends.

        ``message`` is ``str`` for a text frame and ``bytes`` for a binary one.
        Annotate it with a ``msgspec.Struct`` (or a tagged union of them) and
        each frame is decoded from JSON into that type first; a frame that does
        not validate does not reach the handler: the sender gets
        ``{"error": "invalid_message", "detail": ...}`` and ``on_error`` runs.
        An exception goes to ``on_error`` and the connection stays open.
        """
        self.app.add_handler(self.name, "on_message", f)
        return f

    def on_close(self, f: CloseHandlerT) -> CloseHandlerT:
        """Register ``f(connection, code, reason)``, run once when a socket closes.

        It runs however the socket ended, including a client that vanished
        without a close frame (code 1006).
        """
        self.app.add_handler(self.name, "on_close", f)
        return f

    def on_error(self, f: ErrorHandlerT) -> ErrorHandlerT:
        """Register ``f(connection, error)``, told of errors raised by ``on_message``."""
        self.app.add_handler(self.name, "on_error", f)
        return f

    def on_request(self, f: RequestHandlerT) -> RequestHandlerT:
        """Register ``f(request, room)``, answering HTTP requests to the party's rooms.

        Return a :class:`~partydeco.Response`, ``str``, ``bytes``, anything msgspec
        encodes as JSON (dict, list, Struct), a Quart or Werkzeug response
        (``quart.jsonify(...)``), or a tuple ``(body, status)``, ``(body, headers)`` or
        ``(body, status, headers)``. ``None`` leaves the request to the next handler,
        and to 404 after the last. Handlers run in Quart's app context. A
        ``werkzeug.exceptions.HTTPException`` (``quart.abort(403)``) answers with
        its status; any other exception answers 500 without details.
        """
        self.app.add_handler(self.name, "on_request", f)
        return f

    def connection_tags(self, f: TagsHandlerT) -> TagsHandlerT:
        """Register ``f(connection, ctx) -> list[str]``, tagging a connection as it joins.

        ``room.get_connections(tag)`` then lists the connections with that tag.
        A connection has at most 9 tags besides its id, each a non-empty string
        of at most 256 characters.
        """
        self.app.add_handler(self.name, "connection_tags", f)
        return f

    def on_alarm(self, f: AlarmHandlerT) -> AlarmHandlerT:
        """Register ``f(room)``, run when the alarm set with ``room.storage.set_alarm()`` is due.

        It runs even when the room has no connections and after a server restart:
        the room is loaded, ``on_start`` runs, then ``on_alarm``. ``room.id`` and
        ``room.storage`` work as anywhere else. Delivery is at least once: if the
        handler raises it is retried with exponential backoff (``alarm_retry_delay``,
        ``alarm_max_retries``). Setting a new alarm inside the handler schedules the
        next run.

        Example::

            @party.on_alarm
            async def cleanup(room):
                await room.storage.delete_all()
        """
        self.app.add_handler(self.name, "on_alarm", f)
        return f

    def on_cron(
        self, schedule: str, *, name: str | None = None
    ) -> Callable[[CronHandlerT], CronHandlerT]:
        """Register ``f(cron, lobby)``, run at every tick of the cron expression *schedule*.

        PartyKit's ``crons`` and ``onCron``: the schedule is standard cron syntax in
        UTC, parsed by croniter (a sixth field is seconds: ``"* * * * * */10"``), and
        checked here, so a bad expression raises at once. A cron belongs to the party,
        not to a room: ``cron`` says which tick (``cron.scheduled_time``) and
        ``lobby.parties`` reaches any room. Each tick runs once across every worker
        and host on Redis; a handler that raises is retried like an alarm
        (``alarm_retry_delay``, ``alarm_max_retries``); runs of one cron never overlap.
        If no process ran at a tick, the latest missed tick runs once when one starts.

        Example::

            @party.on_cron("*/5 * * * *")
            async def tidy(cron, lobby):
                await lobby.parties["main"].get("lobby").fetch("/tidy", method="POST")

        Args:
            schedule: the cron expression.
            name: the cron's name, unique in the party (by default the function's
                name); it keys the cron's next tick in storage, so keep it stable.

        Raises:
            SetupError: the expression is invalid or never fires; the name is taken,
                or not 1-100 letters, digits, ``_``, ``.``, ``:`` or ``-``.
        """
        parsed = Schedule(schedule)

        def register(f: CronHandlerT) -> CronHandlerT:
            self.app.add_cron(self.name, parsed, f, name=name)
            return f

        return register
    def on_join(self, f: PresenceHandlerT) -> PresenceHandlerT:
        """Register ``f(user, room)``, run when a user's first connection joins a room.

        *user* is the connection's principal (who the hooks authenticated it as); a
        second tab of a user who is present, or a reconnect within
        ``presence_grace``, is not a join. It runs before the connection's
        ``on_connect``. See the presence guide.

        Example::

            @party.on_join
            async def welcome(user, room):
                room.broadcast({"type": "system", "text": f"{user} is here"})
        """
        self.app.add_handler(self.name, "on_join", f)
        return f

    def on_leave(self, f: PresenceHandlerT) -> PresenceHandlerT:
        """Register ``f(user, room)``, run when a user's last connection left a room.

        It runs ``presence_grace`` seconds after that connection's ``on_close``
        (at once when the grace is ``0``), unless a connection of the same user
        joined meanwhile.
        """
        self.app.add_handler(self.name, "on_leave", f)
        return f

    def static(self, directory: str | os.PathLike[str]) -> None:
        """Serve the files under *directory* at the app's non-party URLs.

        ``GET``/``HEAD`` ``/app.js`` answers with ``<directory>/app.js`` and a content
        type from its name; ``/`` and other directory URLs answer with their
        ``index.html``. Party URLs are matched first, then assets, then the app's
        other routes, then 404. Paths that leave the directory, and hidden files,
        are refused. A relative *directory* is relative to the file that calls
        ``static`` (like Flask's ``static_folder``), not to the working directory.

        Example::

            party.static("public")
        """
        path = Path(directory)
        if not path.is_absolute():
            caller = sys._getframe(1).f_globals.get("__file__")
            if caller:
                path = Path(caller).resolve().parent / path
        self.app.add_static(path)

    def run(self, **options: Any) -> None:
        """Serve the app; see :meth:`App.run`."""
        self.app.run(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI interface, so ``hypercorn app:party`` serves the app."""
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return f"<Party {self.name!r}>"


#: The ``main`` party of the current default app.
party = Party(MAIN)
