"""What one ``await verifier.verify(token)`` costs: full verification against a cache hit.

For RS256 (a local JWKS, and a JWKS fetched over loopback HTTP as in production)
and HS256, measures in microseconds per call:

- ``off``: the cache turned off (``cache_ttl=0``), every call verifies in full;
- ``miss``: the cache on, full verification plus storing the result;
- ``hit``: the cache on and one token reused, as real clients do.

``off`` and ``miss`` verify a different token each call; ``hit`` one token again and again.

Also what handing out the cached claims costs: a copy (what partydeco does) against a
read-only ``MappingProxyType`` view. Each figure is the best of ``--repeat`` runs of
``--iterations`` calls, timed with ``time.perf_counter``.

    python bench/verify_bench.py
    python bench/verify_bench.py --iterations 50000 --repeat 7 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from types import MappingProxyType
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from partydeco.auth import JWTVerifier, RemoteJWKS
from partydeco.auth.cache import ClaimsSnapshot

ISSUER = "https://bench.partydeco.invalid"
AUDIENCE = "partydeco-bench"
SECRET = "bench-secret-0123456789abcdef-0123456789abcdef"
POLICY: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}


def claims(subject: str) -> dict[str, Any]:
    """Claims shaped like an identity provider's session token."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "azp": "https://app.example",
        "sid": "sess_2bWq8ZlN4xYkQ",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
        "org_permissions": ["rooms:read", "rooms:write"],
    }


async def per_call(
    call: Callable[[str], Awaitable[object]], tokens: list[str], repeat: int
) -> float:
    """Microseconds per call, best of *repeat* passes over *tokens*."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for token in tokens:
            await call(token)
        best = min(best, time.perf_counter() - started)
    return best / len(tokens) * 1e6


async def serve_jwks(document: dict[str, Any]) -> asyncio.Server:
    """A loopback HTTP server answering every request with *document*."""
    body = json.dumps(document).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def measure(iterations: int, repeat: int) -> dict[str, dict[str, float]]:
    """Every figure of the table, keyed by row then column."""
    rsa = RSAKey.generate_key(2048, {"kid": "bench-1", "alg": "RS256"}, private=True)
    hmac = OctKey.import_key(SECRET)
    server = await serve_jwks(KeySet([rsa]).as_dict(private=False))
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/jwks.json"
    # full verifications are ~100x slower than hits: fewer of them keep the run short
    slow = max(200, iterations // 50)
    rows: dict[str, tuple[Callable[..., JWTVerifier], Callable[[str], str]]] = {
        "RS256, local JWKS": (
            lambda **o: JWTVerifier.from_jwks(KeySet([rsa]).as_dict(private=False), **o),
            lambda sub: jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims(sub), rsa),
        ),
        "RS256, JWKS over HTTP": (
            lambda **o: JWTVerifier(RemoteJWKS(url), **o),
            lambda sub: jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims(sub), rsa),
        ),
        "HS256, shared secret": (
            lambda **o: JWTVerifier.from_secret(SECRET, **o),
            lambda sub: jwt.encode({"alg": "HS256"}, claims(sub), hmac),
        ),
    }
    table: dict[str, dict[str, float]] = {}
    try:
        for name, (make, mint) in rows.items():
            fresh = [mint(f"user-{i}") for i in range(2 * slow * repeat)]
            reused = mint("user-reused")
            off = make(**POLICY, cache_ttl=0)
            cached = make(**POLICY, max_cache_entries=len(fresh) + 1)
            await off.verify(reused)  # fetch the JWKS before timing
            await cached.verify(reused)

            async def each_once(_: str, verifier: JWTVerifier, fresh: list[str] = fresh) -> object:
                return await verifier.verify(fresh.pop())

            table[name] = {
                "off": await per_call(partial(each_once, verifier=off), [""] * slow, repeat),
                "miss": await per_call(partial(each_once, verifier=cached), [""] * slow, repeat),
                "hit": await per_call(cached.verify, [reused] * iterations, repeat),
            }
    finally:
        server.close()
        await server.wait_closed()
    snapshot = ClaimsSnapshot(claims("user-1"))
    flat = ClaimsSnapshot({k: v for k, v in claims("user-1").items() if k != "org_permissions"})
    plain = claims("user-1")

    async def copy_nested(_: str) -> object:
        return snapshot.copy()

    async def copy_flat(_: str) -> object:
        return flat.copy()

    async def proxy(_: str) -> object:
        return MappingProxyType(plain)

    async def nothing(_: str) -> object:
        return plain

    tokens = [""] * iterations
    base = await per_call(nothing, tokens, repeat)
    table["claims hand-out (net)"] = {
        "copy, with a list claim": await per_call(copy_nested, tokens, repeat) - base,
        "copy, flat claims": await per_call(copy_flat, tokens, repeat) - base,
        "read-only proxy": await per_call(proxy, tokens, repeat) - base,
    }
    return table


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print them (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per hit pass")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best one counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    table = asyncio.run(measure(args.iterations, args.repeat))
    if args.json:
        print(json.dumps(table))
        return
    print(f"us per call, best of {args.repeat} passes ({sys.version.split()[0]})")
    for name, row in table.items():
        cells = ", ".join(f"{column} {value:.2f}" for column, value in row.items())
        print(f"  {name:24} {cells}")
    for name, row in table.items():
        if "hit" in row:
            print(f"  {name}: hit is {row['off'] / row['hit']:.0f}x cheaper than verifying")


if __name__ == "__main__":
    main(sys.argv[1:])
