"""Test support for partydeco.auth: keys, token minting and forging, a loopback HTTP stub.

Nothing here is mocked: the stub is a real HTTP/1.1 server on 127.0.0.1 that the
code under test reaches over TCP, and it counts every request it receives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

ISSUER = "https://issuer.example"
AUDIENCE = "partydeco-tests"
AZP = "https://app.example"
SECRET = "s3cret-for-tests-0123456789abcdef-0123456789"

Key = RSAKey | ECKey | OKPKey


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    """base64url of compact JSON."""
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims a correctly configured test verifier accepts; a value of ``...`` removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "azp": AZP,
        "iat": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def rsa(kid: str, bits: int = 2048) -> RSAKey:
    """A fresh RSA private key with this kid (sizes below 2048 bits are for refusal tests)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return RSAKey.generate_key(bits, {"kid": kid}, private=True)


def ec(kid: str, crv: str = "P-256") -> ECKey:
    """A fresh EC private key with this kid."""
    return ECKey.generate_key(crv, {"kid": kid}, private=True)


def ed(kid: str) -> OKPKey:
    """A fresh Ed25519 private key with this kid."""
    return OKPKey.generate_key("Ed25519", {"kid": kid}, private=True)


def jwks(*keys: Key) -> dict[str, Any]:
    """The public JWKS of these keys."""
    return {"keys": [key.as_dict(private=False) for key in keys]}


def mint(key: Any, payload: dict[str, Any] | None = None, alg: str = "RS256", **header: Any) -> str:
    """Sign a JWT properly; ``kid`` defaults to the key's kid (pass ``kid=None`` to omit it)."""
    head: dict[str, Any] = {"alg": alg}
    kid = header.pop("kid", getattr(key, "kid", None))
    if kid is not None:
        head["kid"] = kid
    head.update(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(
            head, claims() if payload is None else payload, key, algorithms=[alg],
            registry=jws.JWSRegistry(algorithms=[alg], strict_check_header=False),
        )  # fmt: skip


def sign_raw(key: Any, header: dict[str, Any], payload: bytes, alg: str = "RS256") -> str:
    """Sign arbitrary payload bytes (e.g. a JSON array) as a compact JWS."""
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact({"alg": alg, **header}, payload, key, registry=registry)


def sign_manual(
    key: Any, header: dict[str, Any], payload: dict[str, Any], alg: str = "RS256"
) -> str:
    """Sign with the raw algorithm, bypassing joserfc's header checks (for crit/zip/b64)."""
    signing_input = f"{b64json({'alg': alg, **header})}.{b64json(payload)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        signature = jws.JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def forge(header: dict[str, Any], payload: dict[str, Any] | bytes, signature: bytes) -> str:
    """Assemble a compact token from parts without signing."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64json(header)}.{b64(body)}.{b64(signature)}"


def hmac_forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token MACed with ``secret`` (used to key the MAC with public key material)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def keyset(*keys: Key) -> KeySet:
    """A KeySet of these keys (private halves included, for signing)."""
    return KeySet(list(keys))


# -- clients ---------------------------------------------------------------------------


@dataclass
class Answer:
    """What a client got: the status, headers and body of the refusal, or the room's reply."""

    status: int
    headers: dict[str, str]
    body: str


async def ask(
    base: str,
    transport: str,
    token: str | None,
    headers: dict[str, str] | None = None,
    path: str = "/parties/main/room1",
) -> Answer:
    """Connect (websocket: token in the query) or GET (http: token as a bearer header).

    A WebSocket that opens answers 101 with the first message as the body.
    """
    headers = dict(headers or {})
    if transport == "websocket":
        url = f"ws://{base}{path}"
        if token is not None:
            url += "?token=" + quote(token, safe="")
        try:
            async with connect(url, additional_headers=headers, open_timeout=5) as ws:
                return Answer(101, {}, str(await ws.recv()))
        except InvalidStatus as refused:
            response = refused.response
            return Answer(
                response.status_code,
                {k.lower(): v for k, v in response.headers.raw_items()},
                response.body.decode("utf-8", "replace") if response.body else "",
            )
    if token:  # an empty bearer value is not a legal header; it is "no token" anyway
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://{base}{path}", headers=headers)
    return Answer(
        response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.text
    )


# -- loopback HTTP stub -----------------------------------------------------------------


@dataclass
class StubRequest:
    """What the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubResponse:
    """What the stub answers. ``delay`` waits before answering; ``hang`` never answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    #: send the body with chunked transfer encoding (no Content-Length)
    chunked: bool = False
    #: claim this Content-Length, send the body, then hang (a lying server)
    declared_length: int | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, delay: float = 0.0) -> StubResponse:
        """A JSON response."""
        body = json.dumps(obj).encode()
        return cls(status, body, {"Content-Type": "application/json"}, delay)


Handler = Callable[[StubRequest], StubResponse]


class StubServer:
    """A tiny HTTP/1.1 server on a free loopback port, one response per connection.

    ``routes`` maps a path (without query) to a handler; unknown paths get 404.
    ``requests`` lists every request received, in order.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[StubRequest] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def route(self, path: str, response: StubResponse | Handler) -> None:
        """Answer ``path`` with a fixed response or a handler."""
        if isinstance(response, StubResponse):
            fixed = response
            self.routes[path] = lambda _request: fixed
        else:
            self.routes[path] = response

    def url(self, path: str) -> str:
        """The http URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        """How many requests arrived for ``path``."""
        return sum(1 for request in self.requests if request.path == path)

    async def __aenter__(self) -> StubServer:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        request = StubRequest(method, target.split("?", 1)[0], headers, body)
        self.requests.append(request)
        handler = self.routes.get(request.path)
        response = handler(request) if handler else StubResponse(404, b"not found")
        if response.hang:
            await asyncio.Event().wait()
        if response.delay:
            await asyncio.sleep(response.delay)
        reason = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}
        out = [f"HTTP/1.1 {response.status} {reason.get(response.status, 'X')}"]
        out += [f"{name}: {value}" for name, value in response.headers.items()]
        if response.chunked:
            out += ["Transfer-Encoding: chunked", "Connection: close", "", ""]
            writer.write("\r\n".join(out).encode("latin-1"))
            for start in range(0, len(response.body), 4096):
                chunk = response.body[start : start + 4096]
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        length = response.declared_length or len(response.body)
        out += [f"Content-Length: {length}", "Connection: close", "", ""]
        writer.write("\r\n".join(out).encode("latin-1") + response.body)
        await writer.drain()
        if response.declared_length is not None:
            await asyncio.Event().wait()
