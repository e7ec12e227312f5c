"""Origin allow-list for WebSocket upgrades and HTTP, and CORS, on a real server."""

from __future__ import annotations

import httpx
import pytest

from partydeco import App, Party, Response
from partydeco.security.origins import OriginPolicy
from tests.support import serve
from tests.support.security_kit import Seen, echo_app, raw_handshake, refusal, ws_status

LOOK_ALIKES = [
    "https://example.com.evil.org",
    "https://evil-example.com",
    "https://evilexample.com",
    "https://example.com@evil.org",
    "https://evil.org#example.com",
    "https://evil.org/example.com",
    "https://evil.org?example.com",
    "http://example.com",  # scheme mismatch
    "https://example.com:8443",  # port mismatch
    "https://example.co",
    "https://xexample.com",
    "null",
    "",
    "example.com",
    "https://example.com.",
]


async def test_default_allows_localhost_same_host_and_no_origin() -> None:
    seen = Seen()
    async with serve(echo_app(seen)) as base:
        port = base.rsplit(":", 1)[1]
        assert await ws_status(base) == 101  # no Origin: a non-browser client
        assert await ws_status(base, origin=f"http://127.0.0.1:{port}") == 101
        assert await ws_status(base, origin="http://localhost:5173") == 101
        assert await ws_status(base, origin="https://localhost") == 101
        assert await ws_status(base, origin="http://[::1]:3000") == 101
        # same host: the page came from this server, whatever its name
        path = "/parties/main/r1"
        same = {"Host": "chat.example.com", "Origin": "https://chat.example.com"}
        assert await raw_handshake(base, path, same) == 101
        same_port = {"Host": "chat.example.com:8080", "Origin": "http://chat.example.com:8080"}
        assert await raw_handshake(base, path, same_port) == 101
        other = {"Host": "chat.example.com", "Origin": "https://chat.example.com.evil.org"}
        assert await raw_handshake(base, path, other) == 403
        wrong_port = {"Host": "chat.example.com", "Origin": "http://chat.example.com:8080"}
        assert await raw_handshake(base, path, wrong_port) == 403
        assert seen.hooks == 7  # only the seven accepted handshakes reached the hook


@pytest.mark.parametrize("origin", ["https://evil.org", "http://localhost.evil.org", "null"])
async def test_default_refuses_other_sites_before_any_hook(origin: str) -> None:
    seen = Seen()
    async with serve(echo_app(seen)) as base:
        status, _, body = await refusal(base, origin=origin)
    assert status == 403
    assert body == b"Origin not allowed"
    assert seen.hooks == 0


async def test_allow_list_is_exact() -> None:
    seen = Seen()
    app = echo_app(seen, allowed_origins=["https://example.com", "https://*.apps.example.com"])
    async with serve(app) as base:
        assert await ws_status(base, origin="https://example.com") == 101
        assert await ws_status(base, origin="HTTPS://EXAMPLE.COM:443") == 101
        assert await ws_status(base, origin="https://a.apps.example.com") == 101
        assert await ws_status(base, origin="https://b.c.apps.example.com") == 101
        for origin in [*LOOK_ALIKES, "https://apps.example.com", "https://a.apps.example.com.evil"]:
            assert await ws_status(base, origin=origin) == 403, origin
        # the development defaults are gone once a list is given
        assert await ws_status(base, origin="http://localhost:5173") == 403
        assert await ws_status(base) == 101  # still: no Origin
    assert seen.hooks == 5


async def test_require_origin_refuses_clients_without_one() -> None:
    seen = Seen()
    async with serve(echo_app(seen, require_origin=True)) as base:
        assert await ws_status(base) == 403
        assert await ws_status(base, origin="http://localhost:1") == 101
    assert seen.hooks == 1


async def test_repeated_origin_header_is_refused() -> None:
    seen = Seen()
    async with serve(echo_app(seen)) as base:
        status = await ws_status(
            base, origin="http://localhost:1", headers={"Origin": "https://evil.org"}
        )
    assert status == 403


async def test_http_with_a_foreign_origin_gets_403_before_hooks() -> None:
    seen = Seen()
    async with serve(echo_app(seen)) as base, httpx.AsyncClient() as http:
        url = f"http://{base}/parties/main/r1"
        refused = await http.post(url, headers={"Origin": "https://evil.org"})
        assert refused.status_code == 403
        assert seen.hooks == 0 and seen.requests == 0
        ok = await http.post(url, headers={"Origin": "http://localhost:3000"})
        assert ok.status_code == 200
        assert "access-control-allow-origin" not in ok.headers  # CORS is off by default
        assert (await http.get(url)).status_code == 200


async def test_cors_preflight_and_headers_per_party() -> None:
    app = App(storage="memory://")
    api = Party("api", app)
    api.configure(cors=True, allowed_origins=["https://app.example.com"], cors_max_age=120)
    hooks = 0

    @api.before_request
    async def deny_delete(request, lobby):  # type: ignore[no-untyped-def]
        nonlocal hooks
        hooks += 1
        if request.method == "DELETE":
            return Response("no", status=405)
        return None

    @api.on_request
    async def answer(request, room):  # type: ignore[no-untyped-def]
        return {"ok": True}

    plain = Party("main", app)

    @plain.on_request
    async def main_answer(request, room):  # type: ignore[no-untyped-def]
        return "main"

    site = "https://app.example.com"
    async with serve(app) as base, httpx.AsyncClient() as http:
        url = f"http://{base}/parties/api/r1"
        pre = await http.options(
            url,
            headers={
                "Origin": site,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == site
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-allow-headers"] == "authorization, content-type"
        assert pre.headers["access-control-max-age"] == "120"
        assert hooks == 0  # a preflight never reaches the hooks

        got = await http.post(url, headers={"Origin": site})
        assert got.status_code == 200
        assert got.headers["access-control-allow-origin"] == site
        assert got.headers["vary"] == "Origin"
        denied = await http.delete(url, headers={"Origin": site})  # a hook's response
        assert denied.status_code == 405
        assert denied.headers["access-control-allow-origin"] == site

        foreign = await http.options(
            url, headers={"Origin": "https://evil.org", "Access-Control-Request-Method": "POST"}
        )
        assert foreign.status_code == 403
        assert "access-control-allow-origin" not in foreign.headers
        assert hooks == 2

        # the other party keeps the app's defaults: no CORS, the development origins
        other = await http.get(f"http://{base}/parties/main/r1", headers={"Origin": site})
        assert other.status_code == 403
        local = await http.get(
            f"http://{base}/parties/main/r1", headers={"Origin": "http://localhost:8000"}
        )
        assert local.status_code == 200 and "access-control-allow-origin" not in local.headers


def test_policy_rejects_malformed_entries() -> None:
    for entry in ["example.com", "https://example.com/path", "https://*", "ftp//x", ""]:
        with pytest.raises(ValueError, match="not an origin"):
            App(allowed_origins=[entry])
    with pytest.raises(ValueError, match="list of strings"):
        App(allowed_origins="https://example.com")
    with pytest.raises(ValueError, match="per party"):
        Party("x", App()).configure(trusted_proxies=["10.0.0.1"])


@pytest.mark.parametrize("origin", LOOK_ALIKES)
def test_look_alikes_never_match(origin: str) -> None:
    policy = OriginPolicy(["https://example.com"])
    assert not policy.allows(origin, "example.com")
    assert policy.allows("https://example.com", "other.org")
    # same-host compares host and port with the Host header, never a prefix or suffix
    same = OriginPolicy(["same-host"])
    assert not same.allows(origin, "example.com:443")
