"""TokenCache: what verifying a token produced, remembered by the token's SHA-256 digest.

Both verifiers keep one. The cache is a bounded LRU: at most ``max_entries``
tokens, each kept at most ``max_age`` seconds (less when the verifier says so,
e.g. until the token's ``exp``). Tokens themselves are never stored, only their
digests, so a memory dump of the cache does not hand out usable tokens.

What an entry holds is the verifier's business; the claims in it are kept as a
:class:`ClaimsSnapshot`, so no caller can change what the next caller gets.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["ClaimsSnapshot", "TokenCache", "token_digest"]

V = TypeVar("V")


_sha256 = hashlib.sha256


def token_digest(token: str) -> bytes:
    """The SHA-256 digest a token is cached under (never raises for a ``str``)."""
    return _sha256(token.encode("utf-8", "surrogatepass")).digest()


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists copied, scalars shared: they are immutable)."""
    if type(value) is dict:
        return {name: _copy_json(item) for name, item in value.items()}
    if type(value) is list:
        return [_copy_json(item) for item in value]
    return value


class ClaimsSnapshot:
    """Verified claims kept private; :meth:`copy` hands out a new, independent dict.

    The snapshot takes ``claims`` over: pass a dict nobody else holds (one just
    decoded) and hand out only copies. Claims come from JSON, so they hold only
    dicts, lists and immutable scalars. The snapshot remembers which claims are
    containers and copies just those on each :meth:`copy` (one level deep when
    they hold only scalars); flat claims cost one ``dict.copy()``.
    """

    __slots__ = ("_claims", "_nested", "_shallow")

    def __init__(self, claims: dict[str, Any]) -> None:
        self._claims = claims
        self._nested: tuple[str, ...] = ()
        self._shallow: tuple[str, ...] = ()
        for name, value in claims.items():
            kind = type(value)
            if kind is dict or kind is list:
                if _holds_containers(value):
                    self._nested += (name,)
                else:
                    self._shallow += (name,)

    def copy(self) -> dict[str, Any]:
        """A new dict equal to the snapshot, sharing nothing mutable with it."""
        claims = self._claims.copy()
        for name in self._shallow:
            claims[name] = claims[name].copy()
        for name in self._nested:
            claims[name] = _copy_json(claims[name])
        return claims

    def get(self, name: str) -> Any:
        """One claim, for reading only (a container is not copied); None when absent."""
        return self._claims.get(name)


def _holds_containers(value: dict[str, Any] | list[Any]) -> bool:
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is dict or kind is list:
            return True
    return False


class TokenCache(Generic[V]):
    """A bounded LRU map from token digests to verification results.

    Example::

        verifier = JWTVerifier.from_issuer(issuer)     # has a TokenCache as .cache
        verifier.cache.forget(token)                   # drop one token's result
        verifier.cache.clear()                         # or every result

    Args:
        max_entries: how many tokens are remembered; the least recently used goes first.
        max_age: seconds an entry is kept at most, from when it was stored.
        clock: monotonic seconds (replaceable in tests).

    Raises:
        ValueError: when ``max_entries`` or ``max_age`` is not positive.
    """

    __slots__ = ("_entries", "clock", "max_age", "max_entries")

    def __init__(
        self,
        max_entries: int = 10_000,
        max_age: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1 (turn the cache off instead)")
        if not max_age > 0:
            raise ValueError("max_age must be positive (turn the cache off instead)")
        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        # digest -> (monotonic deadline, value), least recently used first
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    def __repr__(self) -> str:
        return (
            f"TokenCache({len(self._entries)}/{self.max_entries} entries, max_age={self.max_age})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, digest: bytes) -> V | None:
        """The value stored under ``digest`` if it is still within its age, else None."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def store(self, digest: bytes, value: V, ttl: float | None = None) -> None:
        """Keep ``value`` for ``min(ttl, max_age)`` seconds; none if that is not positive."""
        lifetime = self.max_age if ttl is None else min(ttl, self.max_age)
        if not lifetime > 0:
            return
        entries = self._entries
        if digest in entries:
            entries.move_to_end(digest)
        entries[digest] = (self.clock() + lifetime, value)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        """Drop the entry stored under ``digest``, if any."""
        self._entries.pop(digest, None)

    def forget(self, token: str) -> None:
        """Drop what is remembered about ``token``; its next use is verified in full."""
        self.discard(token_digest(token))

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
