"""The ready-made hooks called directly: which claim values may become header values,
and the expiry they read from ``exp``."""

from __future__ import annotations

from typing import Any

import pytest

from partydeco import Lobby, Request, Response, auth


class Fixed:
    """A verifier accepting any token, with the given claims."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    async def verify(self, token: str) -> dict[str, Any]:
        return dict(self.claims)


async def forwarded(claims: dict[str, Any]) -> Request | Response:
    hook = auth.before_request_hook(Fixed(claims), forward={"X-User-ID": "sub", "X-Info": "info"})
    request = Request("GET", "/", headers=[(b"authorization", b"Bearer t")])
    lobby: Lobby = None  # type: ignore[assignment] - the hook does not read it
    return await hook(request, lobby)


@pytest.mark.parametrize("value", ["a\r\nX-Admin: 1", "a\tb", "a\x7f", "é\x00", "東京\x1f"])
async def test_claims_with_control_characters_are_refused(value: str) -> None:
    answer = await forwarded({"sub": "u", "info": value})
    assert isinstance(answer, Response) and answer.status == 401


@pytest.mark.parametrize(
    ("value", "header"),
    [("plain ascii ~", "plain ascii ~"), ("東京", "東京"), ({"a": [1, "b"]}, '{"a":[1,"b"]}')],
)
async def test_other_claims_are_forwarded(value: Any, header: str) -> None:
    request = await forwarded({"sub": "u", "info": value})
    assert isinstance(request, Request) and request.principal == "u"
    assert request.headers["X-Info"] == header


@pytest.mark.parametrize(
    ("exp", "expires_at"),
    [(1700000000, 1700000000.0), (1700000000.5, 1700000000.5), (True, None), ("1", None),
     (float("inf"), None), (None, None)],
)  # fmt: skip
async def test_expires_at_is_a_numeric_exp(exp: Any, expires_at: float | None) -> None:
    request = await forwarded({"sub": "u", "exp": exp})
    assert isinstance(request, Request) and request.expires_at == expires_at
