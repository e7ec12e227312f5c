"""What one ``await verifier.verify(token)`` costs: full verification against a cache hit.

For RS256 (a local JWKS, and a JWKS fetched over loopback HTTP as in production)
and HS256, measures in microseconds per call:

- ``off``: the cache turned off (``cache_ttl=0``), every call verifies in full;
- ``miss``: the cache on, full verification plus storing the result;
- ``hit``: the cache on and one token reused, as real clients do.

``off`` and ``miss`` verify a different token each call; ``hit`` one token again and again.

Also what handing out the cached claims costs: a copy (what partydeco does) against a
read-only ``MappingProxyType`` view. Each figure is the best of ``--repeat`` passes of
``--iterations`` calls (hits; full verifications get a fiftieth of that, at least 200),
timed with ``time.perf_counter`` (``--clock cpu``: ``time.process_time``, which leaves
out the time other processes take on a shared machine).

    python bench/verify_bench.py
    python bench/verify_bench.py --iterations 50000 --repeat 7 --clock cpu --json
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


Call = Callable[[str], Awaitable[object]]


async def per_call(
    variants: dict[str, tuple[Call, list[str]]], repeat: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Microseconds per call of each variant, best of *repeat* passes over its tokens.

    The variants take turns pass by pass, so a slow spell of a shared machine
    falls on all of them rather than on one.
    """
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for name, (call, tokens) in variants.items():
            started = clock()
            for token in tokens:
                await call(token)
            best[name] = min(best[name], (clock() - started) / len(tokens) * 1e6)
    return best


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


async def measure(
    iterations: int, repeat: int, clock: Callable[[], float]
) -> dict[str, dict[str, float]]:
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

            table[name] = await per_call(
                {
                    "off": (partial(each_once, verifier=off), [""] * slow),
                    "miss": (partial(each_once, verifier=cached), [""] * slow),
                    "hit": (cached.verify, [reused] * iterations),
                },
                repeat,
                clock,
            )
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
    costs = await per_call(
        {
            "nothing": (nothing, tokens),
            "copy, with a list claim": (copy_nested, tokens),
            "copy, flat claims": (copy_flat, tokens),
            "read-only proxy": (proxy, tokens),
        },
        repeat,
        clock,
    )
    base = costs.pop("nothing")
    table["claims hand-out (net)"] = {name: cost - base for name, cost in costs.items()}
    return table


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print them (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per hit pass")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best one counts")
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="wall: time.perf_counter; cpu: time.process_time (steadier on a busy machine)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    table = asyncio.run(measure(args.iterations, args.repeat, clock))
    if args.json:
        print(json.dumps(table))
        return
    print(
        f"us per call ({args.clock} clock), best of {args.repeat} passes, "
        f"Python {sys.version.split()[0]}"
    )
    for name, row in table.items():
        cells = ", ".join(f"{column} {value:.2f}" for column, value in row.items())
        print(f"  {name:24} {cells}")
    for name, row in table.items():
        if "hit" in row:
            print(f"  {name}: hit is {row['off'] / row['hit']:.0f}x cheaper than verifying")


if __name__ == "__main__":
    main(sys.argv[1:])
