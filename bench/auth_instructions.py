"""Instructions per authenticated request, counted by Valgrind: numbers a busy machine cannot move.

On a shared machine the CPU time of one request varies by more than the token cache
changes it. Instruction counts do not: this script sends HTTP requests through
``bench/app.py``'s hooks (RS256 against its JWKS) in process, with
``partydeco.testing.TestClient``, under ``valgrind --tool=cachegrind``, and reports
instructions per request for four cases: the token cache on or off, and one token
reused or a new token every request. Each case runs twice, with 0 and with
``--requests`` requests, and the difference is divided by the requests, so start-up
does not count. Hash randomisation is fixed and the RSA key comes from a file, so a
case gives the same count run after run (to within 0.1 %).

Valgrind runs OpenSSL without the CPU's SHA instructions, so the SHA-256 of each new
token counts about 17k instructions here against about 3k natively.

    python bench/auth_instructions.py              # needs valgrind; ~5 min
    python bench/auth_instructions.py --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cachegrind

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_case(cache: str, tokens_file: str, reuse: bool, requests: int) -> None:
    """In the child: configure the bench app, then send *requests* GETs with bearer tokens."""
    sys.path.insert(0, str(HERE))
    import app as bench

    from partydeco.testing import TestClient

    tokens = json.loads(Path(tokens_file).read_text())[:requests]
    if reuse:
        tokens = [tokens[0]] * requests if tokens else []
    bench.configure(None, ["bench-token"], "jwt", token_cache=cache == "on")

    async def send() -> None:
        async with TestClient(bench.app) as client:
            headers = {"Authorization": "Bearer bench-token"}
            assert (await client.get("/parties/main/r", headers=headers)).status == 200
            for token in tokens:
                headers = {"Authorization": f"Bearer {token}"}
                response = await client.get("/parties/main/r", headers=headers)
                assert response.status == 200, response.status

    asyncio.run(send())


def instructions(args: list[str], env: dict[str, str]) -> int:
    """Run this script under cachegrind with *args*; the instructions it executed."""
    return cachegrind.instructions(__file__, args, env, ROOT)


def main() -> None:
    """Mint the tokens, count every case, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--child", nargs=4, metavar=("CACHE", "TOKENS", "REUSE", "N"))
    args = parser.parse_args()
    if args.child:
        cache, tokens_file, reuse, count = args.child
        run_case(cache, tokens_file, reuse == "reuse", int(count))
        return
    if not shutil.which("valgrind"):
        sys.exit("bench/auth_instructions.py needs valgrind on PATH")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        env = cachegrind.child_env(Path(tmp), ROOT)
        os.environ["BENCH_KEY_FILE"] = env["BENCH_KEY_FILE"]
        import app as bench
        from joserfc import jwt

        now = int(time.time())
        header = {"alg": "RS256", "kid": "bench-1"}
        claims = {"iss": bench.ISSUER, "aud": bench.AUDIENCE, "iat": now, "exp": now + 86400}
        minted = [
            jwt.encode(header, {**claims, "sub": f"user-{i}"}, bench._key)
            for i in range(args.requests)
        ]
        tokens = Path(tmp) / "tokens.json"
        tokens.write_text(json.dumps(minted))
        print(f"instructions per request, {args.requests} requests (valgrind cachegrind)")
        table: dict[tuple[str, str], float] = {}
        for cache in ("off", "on"):
            base = instructions(["--child", cache, str(tokens), "fresh", "0"], env)
            for reuse in ("reuse", "fresh"):
                child = ["--child", cache, str(tokens), reuse, str(args.requests)]
                table[cache, reuse] = (instructions(child, env) - base) / args.requests
                print(f"  cache {cache:3}, {reuse:5} tokens: {table[cache, reuse]:12,.0f}")
        for reuse in ("reuse", "fresh"):
            change = table["on", reuse] / table["off", reuse] - 1
            print(f"  the cache changes a request with {reuse} tokens by {change:+.1%}")


if __name__ == "__main__":
    main()
