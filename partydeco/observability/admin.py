"""The admin API: the rooms a server (or a whole cluster) runs, and their connections.

Off unless an admin secret is set (``admin_token`` / ``PARTYDECO_ADMIN_TOKEN``).
Every request carries ``Authorization: Bearer <token>``:

- the secret itself sees every party;
- a party token, ``party_token(secret, "chat")`` (``partydeco rooms --mint chat``),
  sees party ``chat`` only: asking for another party's rooms answers 403, and a
  listing without a party shows its own party alone.

``GET /_partydeco/rooms[?party=P][&limit=N]`` lists rooms (the busiest ``N``, 100
by default, at most 1000) with totals per party; ``GET /_partydeco/rooms/P/ROOM``
shows one room's connections (ids, tags, principal). With Redis every process of
the cluster answers for the rooms it owns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import msgspec

from ..errors import BackplaneUnavailableError
from ..response import Response
from ..routing import PARTY_NAME
from ..security.limits import header
from .inspection import MAX_LIMIT, Listing, RoomDetail, local_listing, local_room
from .settings import ADMIN_PATH

if TYPE_CHECKING:
    from ..server.runtime import Runtime
    from ..types import Scope

__all__ = ["ALL_PARTIES", "DEFAULT_LIMIT", "AdminAPI", "party_token"]

#: The access of the admin secret: every party.
ALL_PARTIES = "*"
#: Rooms (or connections) in an answer unless ``limit`` says otherwise.
DEFAULT_LIMIT = 100


def party_token(secret: str, party: str) -> str:
    """The admin token that sees party *party* only: ``<party>.<signature>``, an HMAC
    of the party's name under the admin *secret* (rotate the secret to revoke it).

    Raises:
        ValueError: *party* is not a party name.
    """
    if not PARTY_NAME.match(party):
        raise ValueError(f"{party!r} is not a party name (lower case, digits, - and _)")
    return f"{party}.{_signature(secret, party)}"


def _signature(secret: str, party: str) -> str:
    digest = hmac.new(secret.encode(), b"partydeco-admin-party:" + party.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


class AdminAPI:
    """Answers the admin URLs (see the module).

    Args:
        runtime: the server's runtime (its backplane).
        secret: the admin secret.
    """

    def __init__(self, runtime: Runtime, secret: str) -> None:
        self._runtime = runtime
        self._secret = secret

    def __repr__(self) -> str:
        return "<AdminAPI>"  # never the secret

    def access(self, scope: Scope) -> str | None:
        """What the request's bearer token may see: :data:`ALL_PARTIES`, one party's
        name, or ``None`` (no valid token)."""
        value = header(scope, b"authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            return None
        if hmac.compare_digest(token.encode(), self._secret.encode()):
            return ALL_PARTIES
        party, _, signature = token.partition(".")
        if not PARTY_NAME.match(party) or not signature:
            return None
        expected = _signature(self._secret, party)
        return party if hmac.compare_digest(signature.encode(), expected.encode()) else None

    async def answer(self, scope: Scope) -> Response:
        """The answer to a ``GET`` under ``/_partydeco/``."""
        access = self.access(scope)
        if access is None:
            return Response(
                "Unauthorized: an admin token is required",
                401,
                headers={"WWW-Authenticate": 'Bearer realm="partydeco-admin"'},
            )
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        parts = path[len(ADMIN_PATH) + 1 :].split("/")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        limit = _limit(query.get("limit", [str(DEFAULT_LIMIT)])[-1])
        if limit is None:
            return Response(f"limit must be a number from 0 to {MAX_LIMIT}", 400)
        try:
            if parts == ["rooms"]:
                party = query.get("party", [None])[-1] or None
                if access != ALL_PARTIES:
                    if party not in (None, access):
                        return Response("Forbidden: this token sees another party", 403)
                    party = access
                return _json(await self._listing(party, limit))
            if len(parts) == 3 and parts[0] == "rooms" and parts[1] and parts[2]:
                party, room = parts[1], parts[2]
                if access not in (ALL_PARTIES, party):
                    return Response("Forbidden: this token sees another party", 403)
                detail = await self._room(party, room, limit)
                if detail is None:
                    return Response("No such room is loaded", 404)
                return _json(detail)
        except BackplaneUnavailableError:
            return Response("Service Unavailable: the cluster cannot be reached", 503)
        return Response("Not Found", 404)

    async def _listing(self, party: str | None, limit: int) -> Listing:
        runtime = self._runtime
        if runtime.redis_url:
            from ..backplane.redis import RedisBackplane
            from ..backplane.redis.inspect import cluster_listing

            if isinstance(runtime.backplane, RedisBackplane):
                return await cluster_listing(runtime.backplane, party, limit)
        return local_listing(runtime.backplane, party, limit)

    async def _room(self, party: str, room: str, limit: int) -> RoomDetail | None:
        runtime = self._runtime
        if runtime.redis_url:
            from ..backplane.redis import RedisBackplane
            from ..backplane.redis.inspect import cluster_room

            if isinstance(runtime.backplane, RedisBackplane):
                return await cluster_room(runtime.backplane, party, room, limit)
        return local_room(runtime.backplane, party, room, limit)


def _limit(text: str) -> int | None:
    if not text.isdigit() or len(text) > 6:
        return None
    value = int(text)
    return value if value <= MAX_LIMIT else None


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), 200, content_type="application/json")
