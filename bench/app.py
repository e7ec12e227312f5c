"""partydeco's benchmark app: the protocol of the shared bench harness, with real auth.

Protocol: a WebSocket to ``/parties/<party>/<room>?_pk=<id>&token=<t>`` gets
``hello``; a text starting with ``echo:`` goes back to its sender; ``count:``
increments the room's counter in storage (a get, then a put) and answers
``count:<n>`` to the sender; anything else goes to every other connection of the
room. No ``token``: the upgrade is refused with
403 before it is accepted. ``GET /parties/<party>/<room>`` with
``Authorization: Bearer <t>`` answers ``{"room": ..., "connections": n}``,
without it (or with a bad token) 401.

Auth does the work a real deployment does: at start-up the app makes an RSA key
pair and serves the public key as a JWKS at ``/.well-known/jwks.json``; every
connect and every request verifies an RS256 JWT (signature, ``exp``, ``iss``,
``aud``, ``sub``) against the keys of that JWKS, fetched once and cached. The
load generators send an opaque token (``bench-token``), so the app maps each
``--token`` to a JWT it minted for it at start-up; a token that is already a
JWT is verified as it is. Every connect or request with the same token is
answered from the verifier's token cache after the first (``--token-cache off``
verifies each one in full); with ``--key-file`` (or ``BENCH_KEY_FILE``) the app
signs with a given RSA key, so a load generator holding that key can send a new
JWT every time (``bench/loadgen.mjs --freshkey``).

Usage::

    python bench/app.py --port 8000                    # Hypercorn (partydeco's run)
    python bench/app.py --port 8000 --server uvicorn   # party.run(server="uvicorn")
    python bench/app.py --port 8000 --metrics          # with Prometheus metrics on
    python bench/app.py --port 8000 --key-file key.pem --token-cache off
    python bench/app.py --port 8000 --history 100      # rooms keep their last 100 broadcasts
    cd bench && PORT=8000 uvicorn app:party --port 8000 --ws-per-message-deflate false
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room
from partydeco.auth import JWTVerifier, before_connect_hook, before_request_hook

ISSUER = "https://bench.partydeco.invalid"
AUDIENCE = "partydeco-bench"

# Benchmark clients send thousands of messages a second on one socket: the default
# per-connection rate limit (200/s, then close with 1008) would end every workload.
# Storage (the counter workload) in a SQLite file of its own, as a deployment has.
app = App(
    max_messages_per_second=None,
    storage=os.path.join(tempfile.mkdtemp(prefix="partydeco-bench-"), "rooms.db"),
)
party = app.party("main")

KEY_PARAMETERS: Any = {"kid": "bench-1", "use": "sig", "alg": "RS256"}
if os.environ.get("BENCH_KEY_FILE"):  # a given key (and no random key generation at import)
    _key = RSAKey.import_key(Path(os.environ["BENCH_KEY_FILE"]).read_bytes(), KEY_PARAMETERS)
else:
    _key = RSAKey.generate_key(2048, parameters=KEY_PARAMETERS)
#: The public half, served at /.well-known/jwks.json.
JWKS: dict[str, Any] = {"keys": [_key.as_dict(private=False)]}


def use_key(path: str) -> None:
    """Sign and verify with the RSA private key in the PEM file *path* instead of a new one."""
    global _key
    _key = RSAKey.import_key(Path(path).read_bytes(), KEY_PARAMETERS)
    JWKS["keys"] = [_key.as_dict(private=False)]


def mint(subject: str, lifetime: int = 86400) -> str:
    """An RS256 JWT for *subject*, signed with this process's key."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + lifetime}
    return jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims, _key)


class MappedVerifier:
    """Verifies JWTs, mapping the harness's opaque tokens to the JWTs minted for them."""

    def __init__(self, verifier: JWTVerifier, tokens: dict[str, str]) -> None:
        self.verifier = verifier
        self.tokens = tokens

    async def verify(self, token: str) -> dict[str, Any]:
        """Verify *token* (or the JWT it stands for); the claims, or ``InvalidTokenError``."""
        return await self.verifier.verify(self.tokens.get(token, token))


def jwks_source(port: int | None, token_cache: bool = True) -> JWTVerifier:
    """The verifier: over HTTP from this server's JWKS when the port is known."""
    policy: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["RS256"]}
    if not token_cache:
        policy["cache_ttl"] = 0
    if port:
        return JWTVerifier.from_jwks_url(f"http://127.0.0.1:{port}/.well-known/jwks.json", **policy)
    return JWTVerifier.from_jwks(JWKS, **policy)


def configure(
    port: int | None, tokens: list[str], auth: str = "jwt", token_cache: bool = True
) -> None:
    """Register the hooks, verifying with the JWKS of the server on *port*.

    With *auth* ``"presence"`` any non-empty token passes, as in the reference
    servers: what the framework costs without the cost of verification.
    """
    party.before_connect(require_token)
    if auth == "presence":
        party.before_request(require_bearer)
        return
    tokens_to_jwts = {t: mint(f"user-{t}") for t in tokens}
    verifier = MappedVerifier(jwks_source(port, token_cache), tokens_to_jwts)
    party.before_connect(before_connect_hook(verifier))
    party.before_request(before_request_hook(verifier))


async def require_bearer(request: Request, lobby: Lobby) -> Response | None:
    """Any ``Authorization: Bearer`` passes (``--auth presence`` only)."""
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return Response("Unauthorized", 401)
    return None


async def require_token(request: Request, lobby: Lobby) -> Response | None:
    """No ``token`` at all: 403, as the harness expects (a bad one gets 401)."""
    if not request.args.get("token"):
        return Response("token required", 403)
    return None


@party.on_connect
async def greet(connection: Connection, ctx: ConnectContext) -> None:
    """Say hello."""
    connection.send("hello")


@party.on_message
async def relay(message: str | bytes, sender: Connection) -> None:
    """``echo:`` back to the sender; anything else to everyone else in the room."""
    if type(message) is str and message.startswith("echo:"):
        sender.send(message)
    elif message == "count:":
        storage = sender.room.storage
        n = (await storage.get("n") or 0) + 1
        await storage.put("n", n)
        sender.send(f"count:{n}")
    else:
        sender.room.broadcast(message, without=(sender.id,))


@party.on_request
async def info(request: Request, room: Room) -> dict[str, Any]:
    """The room's id and its number of connections."""
    return {"room": room.id, "connections": sum(1 for _ in room.get_connections())}


@app.quart.get("/.well-known/jwks.json")
async def jwks() -> dict[str, Any]:
    """The public keys tokens are verified with."""
    return JWKS


def main(argv: list[str] | None = None) -> None:
    """Serve the bench app (see the module docs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--server", choices=["hypercorn", "uvicorn"], default="hypercorn")
    parser.add_argument(
        "--token", action="append", help="an opaque token to accept (default: bench-token)"
    )
    parser.add_argument(
        "--auth", choices=["jwt", "presence"], default="jwt",
        help="jwt: RS256 verification (default); presence: any token, like the references",
    )  # fmt: skip
    parser.add_argument(
        "--token-cache", choices=["on", "off"], default="on",
        help="off: verify every token in full, even one seen before",
    )  # fmt: skip
    parser.add_argument("--key-file", help="sign and verify with this RSA private key (PEM)")
    parser.add_argument(
        "--access-log", action="store_true", help="log each request (off, like the references)"
    )
    parser.add_argument(
        "--metrics", action="store_true", help="Prometheus metrics on (PARTYDECO_METRICS=1)"
    )
    parser.add_argument(
        "--history", type=int, default=0,
        help="broadcasts each room keeps (history=N, stored in SQLite); 0: none",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.metrics:
        os.environ["PARTYDECO_METRICS"] = "1"  # read when the server starts
    if args.key_file:
        use_key(args.key_file)
    configure(args.port, args.token or ["bench-token"], args.auth, args.token_cache == "on")
    if args.history:
        party.configure(history=args.history)
    if args.server == "uvicorn":
        party.run(
            host=args.host, port=args.port, server="uvicorn", ws_per_message_deflate=False,
            log_level="info" if args.access_log else "warning", access_log=args.access_log,
        )  # fmt: skip
    else:
        options: dict[str, Any] = {} if args.access_log else {"accesslog": None}
        party.run(host=args.host, port=args.port, **options)


if __name__ == "__main__":
    main(sys.argv[1:])
elif os.environ.get("PORT"):  # ``uvicorn app:party``: configure from the environment
    configure(int(os.environ["PORT"]), os.environ.get("BENCH_TOKENS", "bench-token").split(","))
