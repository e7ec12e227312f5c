"""Authentication for partydeco: JWT/JWKS verification, token introspection,
shared secrets, and ready-made ``before_connect``/``before_request`` hooks.

Example::

    from partydeco import auth

    verifier = auth.JWTVerifier.from_issuer("https://clerk.example.com")
    party.before_connect(auth.before_connect_hook(verifier))
"""

from .cache import TokenCache
from .errors import (
    BadSignature,
    BadSignatureError,
    ClaimError,
    DisallowedAlgorithm,
    DisallowedAlgorithmError,
    ExpiredToken,
    ExpiredTokenError,
    InactiveToken,
    InactiveTokenError,
    IntrospectionUnavailable,
    IntrospectionUnavailableError,
    InvalidToken,
    InvalidTokenError,
    JWKSUnavailable,
    JWKSUnavailableError,
    KeyNotFound,
    KeyNotFoundError,
    MalformedToken,
    MalformedTokenError,
    MissingClaim,
    MissingClaimError,
    TokenNotYetValid,
    TokenNotYetValidError,
    TokenTooLarge,
    TokenTooLargeError,
    VerifierUnavailable,
    VerifierUnavailableError,
    WrongAudience,
    WrongAudienceError,
    WrongAuthorizedParty,
    WrongAuthorizedPartyError,
    WrongIssuer,
    WrongIssuerError,
)
from .hooks import (
    DEFAULT_FORWARD,
    AuthHook,
    bearer_token,
    before_connect_hook,
    before_request_hook,
    challenge,
)
from .introspection import IntrospectionVerifier
from .jwks import RemoteJWKS
from .keys import KeySource, LocalKeys, RotatingKeySource
from .minting import issue_token
from .secret import require_shared_secret, secrets_match
from .verifier import JWTVerifier, TokenVerifier

__all__ = [
    "DEFAULT_FORWARD",
    "AuthHook",
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
    "IntrospectionVerifier",
    "InvalidToken",
    "InvalidTokenError",
    "JWKSUnavailable",
    "JWKSUnavailableError",
    "JWTVerifier",
    "KeyNotFound",
    "KeyNotFoundError",
    "KeySource",
    "LocalKeys",
    "MalformedToken",
    "MalformedTokenError",
    "MissingClaim",
    "MissingClaimError",
    "RemoteJWKS",
    "RotatingKeySource",
    "TokenCache",
    "TokenNotYetValid",
    "TokenNotYetValidError",
    "TokenTooLarge",
    "TokenTooLargeError",
    "TokenVerifier",
    "VerifierUnavailable",
    "VerifierUnavailableError",
    "WrongAudience",
    "WrongAudienceError",
    "WrongAuthorizedParty",
    "WrongAuthorizedPartyError",
    "WrongIssuer",
    "WrongIssuerError",
    "bearer_token",
    "before_connect_hook",
    "before_request_hook",
    "challenge",
    "issue_token",
    "require_shared_secret",
    "secrets_match",
]
