"""JWTVerifier: check a compact JWS/JWT against trusted keys and a claims policy."""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from joserfc import errors as jose
from joserfc import jwt
from joserfc.jwk import GuestProtocol, guess_key
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64decode

from .cache import ClaimsSnapshot, TokenCache, token_digest
from .errors import (
    BadSignatureError,
    ClaimError,
    DisallowedAlgorithmError,
    ExpiredTokenError,
    InvalidTokenError,
    KeyNotFoundError,
    MalformedTokenError,
    MissingClaimError,
    TokenNotYetValidError,
    TokenTooLargeError,
    WrongAudienceError,
    WrongAuthorizedPartyError,
    WrongIssuerError,
)
from .jwks import RemoteJWKS
from .keys import Key, KeySource, LocalKeys, RotatingKeySource

__all__ = ["ASYMMETRIC_ALGORITHMS", "HMAC_ALGORITHMS", "JWTVerifier", "TokenVerifier"]

#: Algorithms a key source of public keys may allow.
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448",
    }
)  # fmt: skip
#: Algorithms an HMAC secret may allow.
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
#: Default allow-lists.
DEFAULT_ASYMMETRIC = ("RS256", "ES256", "EdDSA", "Ed25519")
DEFAULT_HMAC = ("HS256",)
#: Header parameters this verifier refuses outright: ``crit`` names extensions we
#: do not implement, ``b64`` (RFC 7797) changes what is signed, ``zip`` is JWE-only.
REFUSED_HEADERS = frozenset({"crit", "b64", "zip"})
MAX_KID_LENGTH = 256
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenVerifier(Protocol):
    """Anything the ready-made hooks can use: ``await verify(token) -> claims``."""

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the token's claims, or raise :class:`InvalidTokenError`."""
        ...


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


class _StrictJSONDecoder(json.JSONDecoder):
    """``json`` without the NaN/Infinity extensions."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["parse_constant"] = _reject_constant
        super().__init__(**kwargs)


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class JWTVerifier:
    """Verify signed JWTs and return their claims.

    Build one per key source, at import time, and share it: it is safe for
    concurrent use and a remote key set is fetched once for all callers.

    Example::

        verifier = JWTVerifier.from_issuer("https://clerk.example.com", audience="my-app")
        claims = await verifier.verify(token)   # or raises InvalidTokenError

    Args:
        keys: the key source (see the ``from_*`` constructors).
        algorithms: the accepted ``alg`` values. Defaults to RS256, ES256 and
            Ed25519/EdDSA for public keys and HS256 for a secret. ``none`` is never
            accepted, and HS* only with an HMAC secret.
        issuer: the exact ``iss`` required, if set.
        audience: one or several accepted audiences; ``aud`` must contain one.
        authorized_parties: accepted ``azp`` values; once set, ``azp`` is required
            (Clerk's ``authorizedParties``).
        required_claims: claims that must be present and non-empty; ``sub`` must
            also be a string.
        require_exp: refuse tokens without ``exp`` (default True).
        leeway: seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        max_token_size: the longest token accepted, checked before any parsing.
        cache_ttl: seconds a verified token's claims are reused without verifying
            it again (never past ``exp``; time-based claims are checked on every
            use, and a cached token is dropped as soon as its key leaves a
            rotating key source). 0 turns the cache off.
        max_cache_entries: how many verified tokens are remembered (least
            recently used go first); 0 turns the cache off.
        clock: returns the current time in seconds (for tests).

    Attributes:
        cache: the :class:`TokenCache` of verified tokens, or None when it is off.
            Set the policy at construction: changing an attribute afterwards does
            not touch tokens already cached (call ``cache.clear()``).
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        algorithms: Collection[str] | None = None,
        issuer: str | None = None,
        audience: str | Iterable[str] | None = None,
        authorized_parties: str | Iterable[str] | None = None,
        required_claims: Iterable[str] = ("sub",),
        require_exp: bool = True,
        leeway: int = 5,
        max_token_size: int = 8192,
        cache_ttl: float = 300.0,
        max_cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithms is None:
            algorithms = DEFAULT_HMAC if keys.symmetric else DEFAULT_ASYMMETRIC
        allowed = tuple(dict.fromkeys(algorithms))
        if not allowed:
            raise ValueError("give at least one algorithm")
        permitted = HMAC_ALGORITHMS if keys.symmetric else ASYMMETRIC_ALGORITHMS
        refused = [alg for alg in allowed if alg not in permitted]
        if refused:
            kind = "an HMAC secret" if keys.symmetric else "public keys"
            raise ValueError(f"algorithms {refused} cannot be used with {kind}")
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        self.keys = keys
        self.algorithms = allowed
        self.issuer = issuer
        self.audience = _as_tuple(audience)
        self.authorized_parties = _as_tuple(authorized_parties)
        self.required_claims = tuple(required_claims)
        self.require_exp = require_exp
        self.leeway = leeway
        self.max_token_size = max_token_size
        self.clock = clock
        self._registry = JWSRegistry(algorithms=allowed, strict_check_header=False)
        self.cache: TokenCache[_Verified] | None = None
        if cache_ttl > 0 and max_cache_entries > 0:
            self.cache = TokenCache(max_cache_entries, cache_ttl)
        self._rotating = keys if isinstance(keys, RotatingKeySource) else None

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def from_jwks_url(
        cls, url: str, *, cooldown: float = 30.0, max_age: float = 600.0,
        timeout: float = 5.0, **policy: Any,
    ) -> JWTVerifier:  # fmt: skip
        """Verify with keys fetched from a JWKS URL (cached, see :class:`RemoteJWKS`)."""
        keys = RemoteJWKS(url, cooldown=cooldown, max_age=max_age, timeout=timeout)
        return cls(keys, **policy)

    @classmethod
    def from_issuer(
        cls, issuer: str, *, cooldown: float = 30.0, max_age: float = 600.0,
        timeout: float = 5.0, **policy: Any,
    ) -> JWTVerifier:  # fmt: skip
        """Verify with keys found by OpenID discovery; ``iss`` must equal ``issuer``."""
        keys = RemoteJWKS.from_issuer(issuer, cooldown=cooldown, max_age=max_age, timeout=timeout)
        policy.setdefault("issuer", issuer)
        return cls(keys, **policy)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], **policy: Any) -> JWTVerifier:
        """Verify with the public keys of a local JWKS dict (no network)."""
        return cls(LocalKeys.from_jwks(jwks), **policy)

    @classmethod
    def from_pem(cls, pem: str | bytes, **policy: Any) -> JWTVerifier:
        """Verify with one PEM public key (no network), like Clerk's ``jwtKey``."""
        return cls(LocalKeys.from_pem(pem), **policy)

    @classmethod
    def from_secret(cls, secret: str | bytes, **policy: Any) -> JWTVerifier:
        """Verify HS256 (or HS384/HS512 if allowed) tokens made with a shared secret."""
        return cls(LocalKeys.from_secret(secret), **policy)

    # -- verification -----------------------------------------------------------------

    async def verify(self, token: str) -> dict[str, Any]:
        """Verify ``token`` and return its claims.

        The signature is checked before any claim, so claim errors are never an
        oracle for forged tokens. A token verified before is answered from the
        cache after its ``exp``, ``nbf`` and ``iat`` are checked again; the
        claims returned are a new dict on every call.

        Raises:
            InvalidTokenError: a subclass naming what was wrong; the message never
                contains the token.
        """
        cache = self.cache
        if cache is None or type(token) is not str or len(token) > self.max_token_size:
            return await self._verify(token, None)
        digest = token_digest(token)
        entry = cache.lookup(digest)
        if entry is None:
            return await self._verify(token, digest)
        # joserfc's time checks with the same integer "now": a hit refuses what a full
        # verification would, and the full verification below says exactly why
        now = int(self.clock())
        leeway = self.leeway
        if (entry.exp is None or entry.exp > now - leeway) and (
            entry.not_before is None or entry.not_before <= now + leeway
        ):
            keys = self._rotating
            if keys is None or entry.generation == keys.generation or self._key_kept(entry, keys):
                return entry.claims.copy()
        cache.discard(digest)
        return await self._verify(token, digest)

    @staticmethod
    def _key_kept(entry: _Verified, keys: RotatingKeySource) -> bool:
        """After the key set changed: is the key that verified ``entry`` still in it?"""
        if not keys.holds(entry.key):
            return False  # the key was rotated out
        entry.generation = keys.generation
        return True

    async def _verify(self, token: str, digest: bytes | None) -> dict[str, Any]:
        header = self._check_shape(token)
        kid = header.get("kid")
        keyset = await self.keys.keyset(kid)
        generation = self._rotating.generation if self._rotating is not None else 0
        used: list[Key] = []

        def resolve(obj: GuestProtocol) -> Key:
            key = guess_key(keyset, obj, use="sig")
            used.append(key)
            return key

        try:
            with warnings.catch_warnings():
                # joserfc marks "EdDSA" deprecated (RFC 9864); allowing it is the caller's call.
                warnings.simplefilter("ignore", jose.SecurityWarning)
                decoded = jwt.decode(
                    token, resolve, algorithms=self.algorithms, registry=self._registry,
                    decoder_cls=_StrictJSONDecoder,
                )  # fmt: skip
        except jose.BadSignatureError as error:
            raise BadSignatureError() from error
        except (jose.InvalidKeyIdError, jose.InvalidKeyTypeError, jose.KeyParameterError) as error:
            raise KeyNotFoundError() from error
        except (jose.UnsupportedAlgorithmError, jose.MissingAlgorithmError) as error:
            raise DisallowedAlgorithmError() from error
        except jose.ExceededSizeError as error:
            raise TokenTooLargeError() from error
        except (jose.InvalidPayloadError, jose.DecodeError, jose.JoseError) as error:
            raise MalformedTokenError() from error
        except (ValueError, TypeError, RecursionError) as error:
            raise MalformedTokenError() from error
        claims = decoded.claims
        self._check_claims(claims)
        if digest is None or self.cache is None or not used:
            return claims
        snapshot = ClaimsSnapshot(claims)
        self._remember(self.cache, digest, snapshot, used[-1], generation)
        return snapshot.copy()

    def _remember(
        self,
        cache: TokenCache[_Verified],
        digest: bytes,
        snapshot: ClaimsSnapshot,
        key: Key,
        generation: int,
    ) -> None:
        """Cache a token that passed every check.

        It is kept until ``exp`` (with leeway) at the latest, and for a rotating
        key source no longer than the source's keys are current: past that, a
        full verification lets the source fetch its keys again.
        """
        exp, nbf, iat = snapshot.get("exp"), snapshot.get("nbf"), snapshot.get("iat")
        not_before = iat if nbf is None or (iat is not None and iat > nbf) else nbf
        ttl = cache.max_age
        if exp is not None:
            left = _seconds_until(exp + self.leeway, self.clock())
            if left < ttl:
                ttl = left
        if self._rotating is not None:
            left = self._rotating.fresh_until - time.monotonic()
            if left < ttl:
                ttl = left
        cache.store(digest, _Verified(snapshot, exp, not_before, key, generation), ttl)

    def _check_shape(self, token: str) -> dict[str, Any]:
        """Cheap checks before any key lookup; returns the (unverified) header."""
        if not isinstance(token, str) or not token:
            raise MalformedTokenError()
        if len(token) > self.max_token_size:
            raise TokenTooLargeError()
        if not _COMPACT_JWS.fullmatch(token):
            raise MalformedTokenError()
        try:
            header = json_b64decode(token.split(".", 1)[0].encode("ascii"))
        except (ValueError, TypeError, RecursionError) as error:
            raise MalformedTokenError() from error
        if not isinstance(header, dict):
            raise MalformedTokenError()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise DisallowedAlgorithmError()
        if REFUSED_HEADERS.intersection(header):
            raise MalformedTokenError("unsupported token header")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH):
            raise KeyNotFoundError()
        return header

    def _check_claims(self, claims: dict[str, Any]) -> None:
        options: dict[str, jwt.ClaimsOption] = {}
        if self.require_exp:
            options["exp"] = {"essential": True}
        if self.issuer is not None:
            options["iss"] = {"essential": True, "value": self.issuer}
        if self.audience:
            options["aud"] = {"essential": True, "values": list(self.audience)}
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()), leeway=self.leeway, **options
        )
        try:
            registry.validate(claims)
        except jose.ExpiredTokenError as error:
            raise ExpiredTokenError() from error
        except jose.MissingClaimError as error:
            raise self._claim_error(error.claim, None, missing=True) from error
        except jose.InvalidClaimError as error:
            raise self._claim_error(error.claim, claims.get(error.claim), missing=False) from error
        if self.authorized_parties and claims.get("azp") not in self.authorized_parties:
            raise WrongAuthorizedPartyError()
        for name in self.required_claims:
            value = claims.get(name)
            if value is None or value == "" or value == [] or value == {}:
                raise MissingClaimError(name)
            if name == "sub" and not isinstance(value, str):
                raise MissingClaimError(name, "claim 'sub' must be a string")

    @staticmethod
    def _claim_error(claim: str, value: Any, *, missing: bool) -> InvalidTokenError:
        if missing:
            return MissingClaimError(claim)
        if claim == "iss":
            return WrongIssuerError()
        if claim == "aud":
            return WrongAudienceError()
        if claim in ("nbf", "iat") and _is_numeric_date(value):
            return TokenNotYetValidError(claim)
        return ClaimError(claim)


class _Verified:
    """A cache entry: the claims, the times they are valid between, and the key that verified them.

    ``exp`` and ``not_before`` (the later of ``nbf`` and ``iat``) are the raw
    claim values, compared as joserfc compares them; None when absent.
    """

    __slots__ = ("claims", "exp", "generation", "key", "not_before")

    def __init__(
        self,
        claims: ClaimsSnapshot,
        exp: float | None,
        not_before: float | None,
        key: Key,
        generation: int,
    ) -> None:
        self.claims = claims
        self.exp = exp
        self.not_before = not_before
        self.key = key
        self.generation = generation  # the key source's generation when ``key`` was last in it


def _seconds_until(deadline: float, now: float) -> float:
    """``deadline - now``; infinity for a deadline too far away to be a float."""
    try:
        return deadline - now
    except OverflowError:
        return math.inf


def _is_numeric_date(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
