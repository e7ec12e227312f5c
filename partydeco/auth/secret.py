"""A shared secret for server-to-server requests (PartyKit guide's third method).

The secret lives in the environment (``lobby.env``, which includes ``.env``);
the caller sends it as ``Authorization: Bearer <secret>`` (or in a header of
your choice). When the secret is not configured every request is refused with
500 and a log line, never accepted; and a warning says so as the app starts.
"""

from __future__ import annotations

import hmac
import logging

from partydeco.diagnostics import requires_env
from partydeco.request import Request
from partydeco.response import Response
from partydeco.room import Lobby

from .errors import InvalidTokenError
from .hooks import AuthHook, bearer_token, challenge

__all__ = ["require_shared_secret", "secrets_match"]

logger = logging.getLogger("partydeco.auth")


def secrets_match(presented: str | None, expected: str) -> bool:
    """Compare in constant time (for equal lengths); ``None`` never matches."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def require_shared_secret(
    env_key: str = "PARTYDECO_SHARED_SECRET",
    *,
    header: str = "Authorization",
    realm: str = "partydeco",
) -> AuthHook:
    """A ``before_request`` (or ``before_connect``) hook that admits holders of a shared secret.

    Example::

        party.before_request(auth.require_shared_secret("ROOM_ADMIN_SECRET"))

    Args:
        env_key: the environment variable holding the secret.
        header: where the caller puts it: ``Authorization`` means
            ``Authorization: Bearer <secret>``; any other name is read verbatim.
        realm: the ``realm`` of the ``WWW-Authenticate`` challenge.
    """
    use_bearer = header.lower() == "authorization"

    @requires_env(env_key)  # a missing secret is a warning as the app starts
    async def hook(request: Request, lobby: Lobby) -> Request | Response:
        expected = lobby.env.get(env_key, "")
        if not expected:
            logger.error("shared secret %s is not configured; refusing the request", env_key)
            return Response("Server misconfigured: shared secret not configured", status=500)
        if use_bearer:
            presented = bearer_token(request)
        else:
            values = request.header_values(header)
            presented = values[0] if len(values) == 1 else None
        if presented is None:
            return challenge(realm=realm)
        if not secrets_match(presented, expected):
            return challenge(InvalidTokenError("wrong shared secret"), realm=realm)
        return request

    return hook
