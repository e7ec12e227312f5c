"""Instructions per WebSocket connect and per HTTP request on a party URL, counted by Valgrind.

What the framework costs per connect and per request, without a server: the script
calls the ASGI entry of ``bench/app.py`` in process with scopes shaped like
Hypercorn's (the same headers the load generator sends), under ``valgrind
--tool=cachegrind``. A connect is the whole life of a socket in the ``connect``
workload: the hooks (``?token=``), the room join, ``on_connect``'s ``hello``, then the
client's close and ``on_close``. A request is ``GET /parties/main/<room>`` with
``Authorization: Bearer``. Each case runs with 0 and with ``--count`` operations and
the difference is divided by the count, so start-up does not count; hash
randomisation is fixed and the RSA key comes from a file, so a case gives the same
count run after run.

Cases: ``jwt`` (RS256 against the app's JWKS, one token reused: answered by the
token cache after the first), ``presence`` (``--auth presence``: any token
passes), ``asgi`` (``bench/refs.py``'s bare ASGI app, the floor) and
``starlette`` (the same protocol on Starlette), for connects and requests.

    python bench/path_instructions.py                 # needs valgrind; ~2 min
    python bench/path_instructions.py --count 300 --cases connect-jwt,http-jwt
    python bench/path_instructions.py --profile connect-jwt   # cProfile, no valgrind
    SORT=cumulative TOP=80 python bench/path_instructions.py --profile http-jwt
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import cachegrind

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = (
    "connect-jwt", "connect-presence", "connect-asgi", "connect-starlette",
    "http-jwt", "http-presence", "http-asgi", "http-starlette",
)  # fmt: skip
HOST = (b"host", b"127.0.0.1:8000")


def _ws_scope(i: int) -> dict[str, Any]:
    query = f"_pk={i:016x}&token=bench-token".encode()
    return {
        "type": "websocket", "asgi": {"spec_version": "2.3", "version": "3.0"},
        "scheme": "ws", "http_version": "1.1", "path": f"/parties/main/connect-x-{i % 10}",
        "raw_path": f"/parties/main/connect-x-{i % 10}".encode(), "query_string": query,
        "root_path": "", "headers": [
            HOST, (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"sec-websocket-version", b"13"),
        ],
        "client": ("127.0.0.1", 40000 + i % 20000), "server": ("127.0.0.1", 8000),
        "subprotocols": [], "extensions": {"websocket.http.response": {}}, "state": {},
    }  # fmt: skip


def _http_scope() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"spec_version": "2.3", "version": "3.0"},
        "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/parties/main/r", "raw_path": b"/parties/main/r", "query_string": b"",
        "root_path": "", "headers": [HOST, (b"authorization", b"Bearer bench-token")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "extensions": {}, "state": {},
    }  # fmt: skip


async def connect_once(entry: Any, i: int) -> None:
    """One socket: handshake, ``hello``, the client's close 1000."""
    hello = asyncio.Event()
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await hello.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send":
            hello.set()

    await entry(_ws_scope(i), receive, send)
    assert sent[0]["type"] == "websocket.accept" and sent[1].get("text") == "hello", sent


async def request_once(entry: Any) -> None:
    """One ``GET`` with a bearer token."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await entry(_http_scope(), receive, send)
    assert sent[0]["status"] == 200, sent


def run_case(case: str, count: int, profile: bool = False) -> None:
    """In the child: configure the bench app, start it, do *count* operations."""
    sys.path.insert(0, str(HERE))
    import app as bench

    from partydeco.testing import TestClient

    kind, auth = case.split("-")
    target: Any = bench.app
    if auth in ("asgi", "starlette"):
        import refs

        target = refs.make_asgi() if auth == "asgi" else refs.make_starlette()
    else:
        bench.configure(None, ["bench-token"], auth)

    async def main() -> None:
        async with TestClient(target) as client:
            entry = client.app
            # a first one of each warms the token cache, the rooms and the imports
            await connect_once(entry, 0)
            await request_once(entry)
            if profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
            for i in range(count):
                if kind == "connect":
                    await connect_once(entry, i + 1)
                else:
                    await request_once(entry)
            if profile:
                profiler.disable()
                stats = pstats.Stats(profiler).strip_dirs()
                stats.sort_stats(os.environ.get("SORT", "tottime"))
                stats.print_stats(int(os.environ.get("TOP", "45")))

    asyncio.run(main())


def instructions(args: list[str], env: dict[str, str]) -> int:
    """Run this script under cachegrind with *args*; the instructions it executed."""
    return cachegrind.instructions(__file__, args, env, ROOT)


def main() -> None:
    """Count every case and print the table (or profile one case)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--profile", choices=CASES, help="cProfile one case instead")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"))
    args = parser.parse_args()
    if args.child:
        run_case(args.child[0], int(args.child[1]))
        return
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        env = cachegrind.child_env(Path(tmp), ROOT)
        if args.profile:
            os.environ.update(env)
            run_case(args.profile, args.count, profile=True)
            return
        if not shutil.which("valgrind"):
            sys.exit("bench/path_instructions.py needs valgrind on PATH")
        print(f"instructions per operation, {args.count} operations (valgrind cachegrind)")
        for case in args.cases.split(","):
            base = instructions(["--child", case, "0"], env)
            total = instructions(["--child", case, str(args.count)], env)
            print(f"  {case:17} {(total - base) / args.count:12,.0f}", flush=True)


if __name__ == "__main__":
    main()
