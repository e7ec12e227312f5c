"""The CPU cost of one HTTP request through partydeco's ASGI entry, without a network:
``python bench/asgi_http.py``.

Calls the app's ASGI callable directly with a ``GET /parties/main/<room>`` scope whose
``on_request`` handler answers a small dict, the shape of ``bench/run.py``'s ``http``
workload without Hypercorn, the client and the kernel. On a shared, noisy machine this
shows what a change to the request path costs where end-to-end rates cannot.
``--against DIR`` runs the same in a subprocess on the checkout in *DIR*; the runs
alternate, and the best of each is kept.

    python bench/asgi_http.py --against ../main --repeats 7
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def measure(requests: int) -> float:
    """Microseconds of CPU per request, over *requests* requests."""
    from partydeco import App

    with App() as app:
        main = app.party()

        @main.on_request
        async def info(request: Any, room: Any) -> dict[str, Any]:
            return {"room": room.id, "connections": 0}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    def scope(n: int) -> dict[str, Any]:
        path = f"/parties/main/room{n % 100}"
        return {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 1999),
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer x")],
        }  # fmt: skip

    for n in range(500):  # warm up: rooms exist, caches are filled
        await app(scope(n), receive, send)
    start = time.process_time()
    for n in range(requests):
        await app(scope(n), receive, send)
    used = time.process_time() - start
    assert sent.count(200) == requests + 500, "every request must succeed"
    return used / requests * 1e6


def run(checkout: Path, requests: int) -> float:
    """One measurement in a fresh interpreter with partydeco from *checkout*."""
    out = subprocess.run(
        [sys.executable, "-P", str(Path(__file__).resolve()), "--one", str(requests)],
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(asyncio.run(measure(args.one)))
        return
    checkouts = [ROOT, *(d.resolve() for d in args.against)]
    best = {checkout: float("inf") for checkout in checkouts}
    for _ in range(args.repeats):
        for checkout in checkouts:
            best[checkout] = min(best[checkout], run(checkout, args.requests))
    for checkout in checkouts:
        ratio = best[checkout] / best[ROOT]
        print(f"{checkout}: {best[checkout]:.1f} µs of CPU per request ({ratio:.2f}x this one)")


if __name__ == "__main__":
    main()
