"""Minting your own short-lived HS256 tokens (for apps that run their own login)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt

from .keys import hmac_key
from .verifier import HMAC_ALGORITHMS

__all__ = ["issue_token"]


def issue_token(
    secret: str | bytes,
    subject: str,
    *,
    expires_in: int = 300,
    issuer: str | None = None,
    audience: str | None = None,
    algorithm: str = "HS256",
    claims: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Sign a short-lived JWT with a shared secret; verify it with ``JWTVerifier.from_secret``.

    The token carries ``sub``, ``iat``, ``exp`` (``expires_in`` seconds from now),
    a random ``jti``, and ``iss``/``aud`` when given. Keep ``expires_in`` short:
    tokens sent in ``?token=`` end up in browser history and proxy logs.

    Example::

        token = auth.issue_token(env["JWT_SECRET"], user_id, issuer="my-app")

    Raises:
        ValueError: for an empty subject, a non-positive lifetime, a secret
            shorter than 32 bytes, or an algorithm other than HS256/384/512.
    """
    if not subject:
        raise ValueError("a token needs a subject")
    if expires_in <= 0:
        raise ValueError("expires_in must be positive")
    if algorithm not in HMAC_ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(HMAC_ALGORITHMS)}")
    now = int(clock())
    payload: dict[str, Any] = dict(claims or {})
    payload.update(sub=subject, iat=now, exp=now + expires_in, jti=secrets.token_urlsafe(12))
    if issuer is not None:
        payload["iss"] = issuer
    if audience is not None:
        payload["aud"] = audience
    return jwt.encode({"alg": algorithm}, payload, hmac_key(secret), algorithms=[algorithm])
