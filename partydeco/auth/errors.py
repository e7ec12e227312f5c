"""Errors raised when a token is refused.

Every message is a fixed, short sentence that names what was wrong. None of
them contains the token or any part of it, so they are safe to return to a
client and to log.
"""

from __future__ import annotations

from partydeco.errors import RefusedError

__all__ = [
    "BadSignature",
    "BadSignatureError",
    "ClaimError",
    "DisallowedAlgorithm",
    "DisallowedAlgorithmError",
    "ExpiredToken",
    "ExpiredTokenError",
    "InactiveToken",
    "InactiveTokenError",
    "IntrospectionUnavailable",
    "IntrospectionUnavailableError",
    "InvalidToken",
    "InvalidTokenError",
    "JWKSUnavailable",
    "JWKSUnavailableError",
    "KeyNotFound",
    "KeyNotFoundError",
    "MalformedToken",
    "MalformedTokenError",
    "MissingClaim",
    "MissingClaimError",
    "TokenNotYetValid",
    "TokenNotYetValidError",
    "TokenTooLarge",
    "TokenTooLargeError",
    "VerifierUnavailable",
    "VerifierUnavailableError",
    "WrongAudience",
    "WrongAudienceError",
    "WrongAuthorizedParty",
    "WrongAuthorizedPartyError",
    "WrongIssuer",
    "WrongIssuerError",
]


class InvalidTokenError(RefusedError):
    """A token was refused.

    A hook that lets it propagate answers with its status and reason (it is a
    :class:`partydeco.errors.RefusedError`).

    Attributes:
        reason: a short description that is safe to show a client.
        status: the HTTP status a hook answers with (401 unless a subclass says otherwise).
    """

    status: int = 401
    default_reason: str = "invalid token"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.default_reason
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"


class MalformedTokenError(InvalidTokenError):
    """The token is not a well-formed compact JWS with a JSON object payload."""

    default_reason = "malformed token"


class TokenTooLargeError(MalformedTokenError):
    """The token is longer than the verifier's size cap; nothing was parsed."""

    default_reason = "token too large"


class DisallowedAlgorithmError(InvalidTokenError):
    """The token's ``alg`` is missing, unknown, ``none`` or outside the allow-list."""

    default_reason = "token algorithm not allowed"


class KeyNotFoundError(InvalidTokenError):
    """No trusted key matches the token's ``kid`` and algorithm."""

    default_reason = "no key matches the token"


class BadSignatureError(InvalidTokenError):
    """The signature does not verify with the trusted key."""

    default_reason = "bad token signature"


class ClaimError(InvalidTokenError):
    """A claim is missing or has a value the policy refuses.

    Attributes:
        claim: the name of the claim, e.g. ``"aud"``.
    """

    def __init__(self, claim: str, reason: str | None = None) -> None:
        self.claim = claim
        super().__init__(reason or f"invalid claim {claim!r}")


class ExpiredTokenError(ClaimError):
    """The token's ``exp`` has passed (beyond the leeway)."""

    def __init__(self, claim: str = "exp", reason: str | None = None) -> None:
        super().__init__(claim, reason or "token expired")


class TokenNotYetValidError(ClaimError):
    """The token's ``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    def __init__(self, claim: str = "nbf", reason: str | None = None) -> None:
        super().__init__(claim, reason or "token not yet valid")


class MissingClaimError(ClaimError):
    """A required claim is absent (or empty)."""

    def __init__(self, claim: str, reason: str | None = None) -> None:
        super().__init__(claim, reason or f"missing claim {claim!r}")


class WrongIssuerError(ClaimError):
    """The ``iss`` claim is not the configured issuer."""

    def __init__(self, claim: str = "iss", reason: str | None = None) -> None:
        super().__init__(claim, reason or "wrong token issuer")


class WrongAudienceError(ClaimError):
    """The ``aud`` claim does not contain a configured audience."""

    def __init__(self, claim: str = "aud", reason: str | None = None) -> None:
        super().__init__(claim, reason or "wrong token audience")


class WrongAuthorizedPartyError(ClaimError):
    """The ``azp`` claim is absent or not one of the authorized parties."""

    def __init__(self, claim: str = "azp", reason: str | None = None) -> None:
        super().__init__(claim, reason or "token authorized party not allowed")


class InactiveTokenError(InvalidTokenError):
    """The introspection endpoint says the token is not active."""

    default_reason = "token not active"


class VerifierUnavailableError(InvalidTokenError):
    """The verifier could not reach what it needs (keys, an endpoint); status 503."""

    status = 503
    default_reason = "token verification unavailable"


class JWKSUnavailableError(VerifierUnavailableError):
    """The JWKS (or discovery document) could not be fetched and no usable keys are cached."""

    default_reason = "signing keys unavailable"


class IntrospectionUnavailableError(VerifierUnavailableError):
    """The introspection endpoint failed, timed out or answered something unusable."""

    default_reason = "token introspection unavailable"


# The names before 0.2.
BadSignature = BadSignatureError
DisallowedAlgorithm = DisallowedAlgorithmError
ExpiredToken = ExpiredTokenError
InactiveToken = InactiveTokenError
IntrospectionUnavailable = IntrospectionUnavailableError
InvalidToken = InvalidTokenError
JWKSUnavailable = JWKSUnavailableError
KeyNotFound = KeyNotFoundError
MalformedToken = MalformedTokenError
MissingClaim = MissingClaimError
TokenNotYetValid = TokenNotYetValidError
TokenTooLarge = TokenTooLargeError
VerifierUnavailable = VerifierUnavailableError
WrongAudience = WrongAudienceError
WrongAuthorizedParty = WrongAuthorizedPartyError
WrongIssuer = WrongIssuerError
