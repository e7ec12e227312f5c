"""A remote JWKS cache: fetch an identity provider's signing keys and keep them.

Behaviour (after panva/jose's ``createRemoteJWKSet``):

- one fetch serves every verification waiting on a cold cache (single flight);
- keys are kept for ``max_age`` seconds, then refetched on the next use;
- a token with an unknown ``kid`` triggers a refetch only when the last fetch
  attempt is at least ``cooldown`` seconds old, so a flood of random ``kid``
  values costs at most one fetch per cooldown;
- a fetch follows no redirect, accepts only ``http``/``https`` URLs and status
  200, gives up after ``timeout`` seconds and reads at most ``max_bytes``;
- a failed refetch keeps the keys already cached; only when no keys are cached
  does verification fail, with :class:`JWKSUnavailableError` (status 503);
- keys with private members or of unsupported types are ignored;
- a refetch that returns a key unchanged keeps the same key object, and
  ``generation`` changes only when a key was added, removed or replaced, so a
  verifier's token cache can tell whether the key behind an entry is still
  published (see :class:`partydeco.auth.keys.RotatingKeySource`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import KeySet

from ..errors import PartydecoError
from .errors import JWKSUnavailableError
from .keys import Key, import_jwks

__all__ = ["RemoteJWKS", "fetch_json"]

logger = logging.getLogger("partydeco.auth")

#: Without cached keys a failed fetch is retried at most this often (seconds),
#: so a dead endpoint is not hammered at the request rate.
COLD_RETRY_INTERVAL = 1.0


class FetchError(PartydecoError):
    """A fetch failed; the message is safe to log (no response body)."""


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"only http(s) URLs are allowed, got {url!r}")


async def fetch_json(url: str, *, timeout: float, max_bytes: int) -> Any:  # noqa: ASYNC109
    """GET ``url`` and parse its JSON body, refusing anything but a plain 200.

    No redirects are followed; the whole exchange is bounded by ``timeout``
    seconds and the body by ``max_bytes``.

    Raises:
        FetchError: on any failure.
    """
    _check_url(url)
    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client:
                headers = {"Accept": "application/json, application/jwk-set+json"}
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        raise FetchError(f"expected status 200, got {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(f"body larger than {max_bytes} bytes")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError(f"body larger than {max_bytes} bytes")
    except TimeoutError as error:
        raise FetchError(f"no complete answer within {timeout} s") from error
    except httpx.HTTPError as error:
        raise FetchError(f"request failed ({type(error).__name__})") from error
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise FetchError("body is not JSON") from error


def _fingerprint(key: Key) -> str:
    """All a verification depends on: the public JWK with its ``kid``, ``alg`` and ``use``."""
    return json.dumps(key.as_dict(private=False), sort_keys=True)


class RemoteJWKS:
    """Signing keys fetched from a JWKS URL (or found by OpenID discovery) and cached.

    Example::

        keys = RemoteJWKS("https://idp.example/.well-known/jwks.json")
        keys = RemoteJWKS.from_issuer("https://idp.example")

    Args:
        url: the JWKS URL (``http`` or ``https``).
        cooldown: minimum seconds between two fetches triggered by an unknown ``kid``.
        max_age: seconds a fetched key set is used before it is refetched.
        timeout: seconds allowed for a whole fetch.
        max_bytes: the largest JWKS body accepted.

    Attributes:
        generation: a number that changes whenever a refetch adds, removes or
            replaces a key (see :class:`partydeco.auth.RotatingKeySource`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        cooldown: float = 30.0,
        max_age: float = 600.0,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
    ) -> None:
        if url is not None:
            _check_url(url)
        self.url = url
        self.cooldown = cooldown
        self.max_age = max_age
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._issuer: str | None = None  # set by from_issuer: discover the JWKS URL first
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self.generation = 0
        self._fetched_at = float("-inf")  # monotonic time of the last successful fetch
        self._attempted_at = float("-inf")  # monotonic time the last fetch started
        self._inflight: asyncio.Task[None] | None = None

    @classmethod
    def from_issuer(cls, issuer: str, **options: Any) -> RemoteJWKS:
        """Find the JWKS URL in ``<issuer>/.well-known/openid-configuration``.

        The discovery document must name exactly this ``issuer`` (OpenID
        Connect Discovery section 4.3) and a ``jwks_uri``; it is fetched with the
        same rules as the JWKS, on first use.
        """
        _check_url(issuer)
        jwks = cls(None, **options)
        jwks._issuer = issuer
        return jwks

    @property
    def symmetric(self) -> bool:
        """Always False: a remote JWKS never provides HMAC secrets."""
        return False

    @property
    def fresh_until(self) -> float:
        """The ``time.monotonic()`` instant from which :meth:`keyset` may fetch the keys again.

        That is ``max_age`` after the last fetch, or ``cooldown`` after the last
        attempt when that is later (a failing endpoint is not asked more often).
        """
        return max(self._fetched_at + self.max_age, self._attempted_at + self.cooldown)

    def holds(self, key: Key) -> bool:
        """True while ``key``, as returned by an earlier :meth:`keyset`, is still published."""
        keys = self._keys
        return keys is not None and any(current is key for current in keys.keys)

    async def keyset(self, kid: str | None) -> KeySet:
        """Return cached keys, fetching first when needed (see the module docs).

        Raises:
            JWKSUnavailableError: when no keys are cached and a fetch fails.
        """
        now = time.monotonic()
        since_attempt = now - self._attempted_at
        if self._keys is None:
            if self._inflight is None and since_attempt < min(self.cooldown, COLD_RETRY_INTERVAL):
                raise JWKSUnavailableError()
            await self._refresh()
        elif now - self._fetched_at >= self.max_age or (kid is not None and kid not in self._kids):
            if self._inflight is not None or since_attempt >= self.cooldown:
                try:
                    await self._refresh()
                except JWKSUnavailableError:
                    pass  # keep serving the keys we had
        if self._keys is None:
            raise JWKSUnavailableError()
        return self._keys

    async def _refresh(self) -> None:
        task = self._inflight
        loop = asyncio.get_running_loop()
        if task is None or task.get_loop() is not loop:
            self._attempted_at = time.monotonic()
            task = loop.create_task(self._fetch())
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        await asyncio.shield(task)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: waiters may all have been cancelled

    async def _fetch(self) -> None:
        url = self.url
        try:
            if url is None:
                url = self._discovery_url()
                url = await self._discover()
            document = await fetch_json(url, timeout=self.timeout, max_bytes=self.max_bytes)
            if not isinstance(document, dict):
                raise FetchError("JWKS is not a JSON object")
            try:
                keys = import_jwks(document)
            except ValueError as error:
                raise FetchError(str(error)) from error
        except (FetchError, ValueError) as error:
            what = "OpenID discovery" if url == self._discovery_url() else "JWKS fetch"
            logger.warning("%s from %s failed: %s", what, url, error)
            raise JWKSUnavailableError() from error
        self._install(keys)
        self._fetched_at = time.monotonic()

    def _install(self, fetched: KeySet) -> None:
        """Use ``fetched``, keeping the objects of keys that did not change."""
        previous = self._keys
        if previous is not None:
            kept = {_fingerprint(key): key for key in previous.keys}
            keys = [kept.get(_fingerprint(key), key) for key in fetched.keys]
            if len(keys) == len(previous.keys) and all(
                new is old for new, old in zip(keys, previous.keys, strict=True)
            ):
                return  # the same keys, in the same order
            fetched = KeySet(keys)
        self._keys = fetched
        self._kids = frozenset(key.kid for key in fetched.keys if key.kid is not None)
        self.generation += 1

    def _discovery_url(self) -> str | None:
        if self._issuer is None:
            return None
        return self._issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def _discover(self) -> str:
        url = self._discovery_url()
        assert url is not None
        document = await fetch_json(url, timeout=self.timeout, max_bytes=self.max_bytes)
        if not isinstance(document, dict):
            raise FetchError("discovery document is not a JSON object")
        if document.get("issuer") != self._issuer:
            raise FetchError("discovery document names a different issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchError("discovery document has no jwks_uri")
        _check_url(jwks_uri)
        self.url = jwks_uri
        return jwks_uri
