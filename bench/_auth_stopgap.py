"""Temporary stand-in for partydeco.auth until it lands on main (same calls, joserfc)."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from partydeco import Lobby, Request, Response


class InvalidToken(Exception):
    pass


class JWTVerifier:
    def __init__(self, keys: Any, issuer: str, audience: str, algorithms: list[str]) -> None:
        self._keys = keys
        self._url: str | None = None
        self.issuer, self.audience, self.algorithms = issuer, audience, algorithms

    @classmethod
    def from_jwks_url(cls, url: str, **policy: Any) -> JWTVerifier:
        verifier = cls(None, **policy)
        verifier._url = url
        return verifier

    @classmethod
    def from_jwks(cls, jwks: dict[str, Any], **policy: Any) -> JWTVerifier:
        return cls(KeySet.import_key_set(jwks), **policy)  # type: ignore[arg-type]

    async def verify(self, token: str) -> dict[str, Any]:
        if self._keys is None:
            assert self._url is not None
            import httpx

            async with httpx.AsyncClient() as client:
                document = (await client.get(self._url)).json()
            self._keys = KeySet.import_key_set(document)
        try:
            claims = jwt.decode(token, self._keys, algorithms=self.algorithms).claims
            jwt.JWTClaimsRegistry(
                exp={"essential": True}, iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience}, sub={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        return claims


def _hook(verifier: Any, read: Any) -> Any:
    async def hook(request: Request, lobby: Lobby) -> Request | Response:
        token = read(request)
        if not token:
            return Response("Unauthorized", 401)
        try:
            claims = await verifier.verify(token)
        except InvalidToken:
            return Response("Unauthorized", 401)
        request.headers["X-User-ID"] = claims["sub"]
        return request

    return hook


def _bearer(request: Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def before_connect_hook(verifier: Any) -> Any:
    return _hook(verifier, lambda r: r.args.get("token") or _bearer(r))


def before_request_hook(verifier: Any) -> Any:
    return _hook(verifier, _bearer)
