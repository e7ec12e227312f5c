"""Start-up says what is misconfigured: missing variables, an unreachable JWKS, a busy port."""

from __future__ import annotations

import logging
import os
import runpy
import socket
import subprocess
import sys

import pytest

from partydeco import App, auth, party, requires_env
from partydeco.auth import JWKSUnavailableError, RemoteJWKS
from partydeco.testing import TestClient
from tests.support import ROOT, free_port

QUICKSTART = ROOT / "examples" / "quickstart" / "app.py"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_missing_variable_a_hook_declared_is_a_warning_as_the_app_starts(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # which has no .env
    monkeypatch.delenv("TOKEN", raising=False)
    monkeypatch.delenv("ADMIN_SECRET", raising=False)
    with App() as app:
        runpy.run_path(str(QUICKSTART))
        party.before_request(auth.require_shared_secret("ADMIN_SECRET"))
        with caplog.at_level(logging.WARNING, logger="partydeco"):
            async with TestClient(app):
                pass
    # a function's line is that of its first decorator
    lines = QUICKSTART.read_text().splitlines()
    line = next(i for i, text in enumerate(lines) if text.startswith("@party.before_connect")) + 1
    hook = auth.require_shared_secret("X")
    assert warnings_of(caplog) == [  # one warning for the hook of both paths
        "TOKEN is not set (environment or .env): before_connect and before_request handler "
        f"authenticate (examples/quickstart/app.py:{line}) of party 'main' needs it",
        "ADMIN_SECRET is not set (environment or .env): before_request handler "
        "require_shared_secret.<locals>.hook "
        f"(partydeco/auth/secret.py:{hook.__code__.co_firstlineno}) of party 'main' needs it",  # type: ignore[attr-defined]
    ]


async def test_no_warning_when_the_variables_are_set(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "secret")
    with App() as app:

        @party.on_request
        @requires_env("TOKEN", "TOKEN")
        async def info(request: object, room: object) -> str:
            return "ok"

        with caplog.at_level(logging.WARNING, logger="partydeco"):
            async with TestClient(app) as client:
                assert (await client.get("/parties/main/r")).text == "ok"
    assert warnings_of(caplog) == []
    with pytest.raises(ValueError, match="names of environment variables"):
        requires_env()


async def test_an_unreachable_jwks_is_logged_with_its_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    issuer = f"http://127.0.0.1:{free_port()}/tenant"
    with caplog.at_level(logging.WARNING, logger="partydeco.auth"):
        with pytest.raises(JWKSUnavailableError):
            await RemoteJWKS(url, timeout=2).keyset(None)
        with pytest.raises(JWKSUnavailableError):
            await RemoteJWKS.from_issuer(issuer, timeout=2).keyset(None)
    assert warnings_of(caplog) == [
        f"JWKS fetch from {url} failed: request failed (ConnectError)",
        f"OpenID discovery from {issuer}/.well-known/openid-configuration failed: "
        "request failed (ConnectError)",
    ]


@pytest.mark.parametrize("how", ["serve", "serve-uvicorn", "run"])
def test_a_busy_port_is_one_line(how: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = (
            ["-m", "partydeco", "serve", str(QUICKSTART), "--port", str(port)]
            if how.startswith("serve")
            else [str(QUICKSTART)]
        )
        if how == "serve-uvicorn":
            command += ["--server", "uvicorn"]
        result = subprocess.run(
            [sys.executable, *command],
            env={**os.environ, "TOKEN": "secret", "PORT": str(port), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"partydeco: address already in use: 127.0.0.1:{port} (set PORT or --port)\n"
    )
