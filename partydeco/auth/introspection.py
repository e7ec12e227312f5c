"""Opaque session tokens: ask the identity provider (RFC 7662 token introspection)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from partydeco.errors import MissingExtraError
from partydeco.extras import EXTRAS

from .cache import ClaimsSnapshot, TokenCache, token_digest
from .errors import (
    InactiveTokenError,
    IntrospectionUnavailableError,
    MalformedTokenError,
    MissingClaimError,
    TokenTooLargeError,
)

__all__ = ["IntrospectionVerifier"]

logger = logging.getLogger("partydeco.auth")

#: The packages the request needs: Authlib's async OAuth 2 client, which runs on httpx2.
_REQUIRED_PACKAGES = ("authlib", "httpx2")

#: RFC 6750's b64token: the characters a bearer token may contain.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class IntrospectionVerifier:
    """Verify opaque tokens with an OAuth 2.0 introspection endpoint (RFC 7662).

    The request is made with Authlib's async httpx OAuth 2 client, which
    authenticates this resource server to the endpoint (``client_secret_basic``
    by default). An active answer is cached (a :class:`TokenCache`, as in
    :class:`JWTVerifier`) for ``cache_ttl`` seconds, never beyond the token's
    ``exp``, which is checked again on every use; ``active: false``, any error,
    a non-200 status and a timeout all refuse the token and are not cached.
    Concurrent checks of one token share one request.

    Example::

        verifier = IntrospectionVerifier(
            "https://idp.example/oauth2/introspect", client_id="rooms", client_secret=secret
        )
        claims = await verifier.verify(token)

    Args:
        endpoint: the introspection URL.
        client_id: this server's client id at the identity provider.
        client_secret: its secret.
        auth_method: how the client authenticates (Authlib's names:
            ``client_secret_basic``, ``client_secret_post``, ...).
        token_type_hint: sent as ``token_type_hint`` (None to omit).
        cache_ttl: seconds an active answer is reused (0 turns the cache off): how
            long a token revoked at the identity provider may still be accepted.
        max_cache_entries: how many answers are remembered (least recently used
            go first); 0 turns the cache off.
        timeout: seconds allowed for one introspection request.
        required_claims: members the answer must contain besides ``active``.
        max_token_size: the longest token sent to the endpoint.
        max_bytes: the largest introspection answer accepted.
        clock: returns the current time in seconds (for tests).

    Attributes:
        cache: the :class:`TokenCache` of active answers, or None when it is off.

    Raises:
        MissingExtraError: the ``introspection`` extra is not installed (a
            :class:`~partydeco.SetupError`).
        ValueError: the endpoint is not an http(s) URL.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        auth_method: str = "client_secret_basic",
        token_type_hint: str | None = "access_token",
        cache_ttl: float = 30.0,
        max_cache_entries: int = 10_000,
        timeout: float = 5.0,
        required_claims: Iterable[str] = ("sub",),
        max_token_size: int = 8192,
        max_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError("the introspection endpoint must be an http(s) URL")
        _check_installed()
        self.endpoint = endpoint
        self.client_id = client_id
        self._client_secret = client_secret
        self.auth_method = auth_method
        self.token_type_hint = token_type_hint
        self.cache_ttl = cache_ttl
        self.max_cache_entries = max_cache_entries
        self.timeout = timeout
        self.required_claims = tuple(required_claims)
        self.max_token_size = max_token_size
        self.max_bytes = max_bytes
        self.clock = clock
        self.cache: TokenCache[_Active] | None = None
        if cache_ttl > 0 and max_cache_entries > 0:
            self.cache = TokenCache(max_cache_entries, cache_ttl)
        # one request per token at a time, keyed like the cache (tokens are not kept)
        self._inflight: dict[bytes, asyncio.Task[ClaimsSnapshot]] = {}

    def __repr__(self) -> str:
        return f"IntrospectionVerifier({self.endpoint!r}, client_id={self.client_id!r})"

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the introspection answer for an active token.

        Raises:
            InactiveTokenError: the endpoint says the token is not active (or it expired).
            IntrospectionUnavailableError: the endpoint failed or timed out (status 503).
            InvalidTokenError: the token is malformed or the answer lacks a required claim.
        """
        if not isinstance(token, str) or not token:
            raise MalformedTokenError()
        if len(token) > self.max_token_size:
            raise TokenTooLargeError()
        if not _BEARER_TOKEN.fullmatch(token):
            raise MalformedTokenError()
        key = token_digest(token)
        if self.cache is not None:
            active = self.cache.lookup(key)
            if active is not None:
                if active.exp is None or active.exp > self.clock():
                    return active.claims.copy()
                self.cache.discard(key)  # asked again: the endpoint has the last word
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.get_running_loop().create_task(self._introspect(token, key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return (await asyncio.shield(task)).copy()

    def _forget(self, key: bytes, task: asyncio.Task[ClaimsSnapshot]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: its waiters may all have gone

    async def _introspect(self, token: str, key: bytes) -> ClaimsSnapshot:
        answer = await self._request(token)
        if answer.get("active") is not True:
            raise InactiveTokenError()
        now = self.clock()
        exp = answer.get("exp")
        ttl = self.cache_ttl
        if exp is not None:
            if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
                raise IntrospectionUnavailableError("token introspection answer is invalid")
            if exp <= now:
                raise InactiveTokenError("token expired")
            ttl = min(ttl, exp - now)
        for name in self.required_claims:
            if answer.get(name) in (None, "", [], {}):
                raise MissingClaimError(name)
        snapshot = ClaimsSnapshot(answer)
        if self.cache is not None:
            self.cache.store(key, _Active(snapshot, exp), ttl)
        return snapshot

    async def _request(self, token: str) -> dict[str, Any]:
        # imported here: httpx2, which this client runs on, comes with the introspection extra
        from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
            AsyncOAuth2Client,
        )

        try:
            async with asyncio.timeout(self.timeout):
                async with AsyncOAuth2Client(
                    client_id=self.client_id,
                    client_secret=self._client_secret,
                    token_endpoint_auth_method=self.auth_method,
                    timeout=self.timeout,
                    follow_redirects=False,
                ) as client:
                    response = await client.introspect_token(
                        self.endpoint, token=token, token_type_hint=self.token_type_hint
                    )
        except TimeoutError as error:
            logger.warning("token introspection timed out after %s s", self.timeout)
            raise IntrospectionUnavailableError() from error
        except Exception as error:  # any transport or client failure refuses the token
            logger.warning("token introspection failed: %s", type(error).__name__)
            raise IntrospectionUnavailableError() from error
        if response.status_code != 200:
            logger.warning("token introspection answered status %s", response.status_code)
            raise IntrospectionUnavailableError()
        if len(response.content) > self.max_bytes:
            raise IntrospectionUnavailableError()
        try:
            answer = response.json()
        except (ValueError, RecursionError) as error:
            raise IntrospectionUnavailableError() from error
        if not isinstance(answer, dict):
            raise IntrospectionUnavailableError()
        return answer


def _check_installed() -> None:
    for name in _REQUIRED_PACKAGES:
        if importlib.util.find_spec(name) is None:
            raise MissingExtraError("IntrospectionVerifier", name, EXTRAS[name])


class _Active:
    """A cache entry: an active answer and its ``exp`` (None when it has none)."""

    __slots__ = ("claims", "exp")

    def __init__(self, claims: ClaimsSnapshot, exp: float | None) -> None:
        self.claims = claims
        self.exp = exp
