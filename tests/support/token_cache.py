"""Test support for the verified-token cache: a hand-moved clock and keys that count their use."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import KeySet

from partydeco.auth import JWTVerifier, LocalKeys
from partydeco.auth.keys import import_jwks
from tests.support.auth_cases import POLICY, TRUSTED_JWKS

#: A fixed "now" for tests that move the clock by hand.
NOW = 1_800_000_000


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingKeys(LocalKeys):
    """The trusted local keys, counting how often a verification asks for them."""

    def __init__(self) -> None:
        super().__init__(import_jwks(TRUSTED_JWKS, allow_private=True))
        self.asked = 0

    async def keyset(self, kid: str | None) -> KeySet:
        self.asked += 1
        return await super().keyset(kid)


def counting_verifier(**options: Any) -> tuple[JWTVerifier, CountingKeys]:
    """A verifier with the test policy (and *options*) on keys that count their use."""
    keys = CountingKeys()
    return JWTVerifier(keys, **{**POLICY, **options}), keys
