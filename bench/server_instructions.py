"""Instructions a real server spends per connect or request, counted by Valgrind.

``bench/path_instructions.py`` counts the app's own path in process; this counts
everything the server process does, Hypercorn and the event loop included: the
server runs under ``valgrind --tool=cachegrind`` while ``bench/loadgen.mjs`` sends
it a workload (``connect`` or ``http``, as in ``bench/run.py``) over loopback, once
with ``--warmup`` operations and once with ``--warmup`` + ``--count``; the
difference of the two totals, divided by ``--count``, is what one operation costs
(start-up, the warm-up and shutdown cancel out). Counts move by a few percent from
run to run (how reads batch depends on timing), far less than timings do on a busy
machine. They leave out the kernel's time and the cost of cache misses: a larger
process (partydeco's imports, its heap) spends more time per instruction, so
compare like with like (``asgi-uvloop`` with ``partydeco``, which serves on uvloop).

    python bench/server_instructions.py          # partydeco and asgi-uvloop, connect and http
    python bench/server_instructions.py --servers partydeco --workloads connect --count 1000
    python bench/server_instructions.py --against ../base  # each partydeco server from there too
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cachegrind

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

SERVERS = {
    "partydeco": [PY, "bench/app.py", "--key-file", "{keyfile}", "--port", "{port}"],
    "partydeco-noauth": [PY, "bench/app.py", "--auth", "presence", "--port", "{port}"],
    "asgi": [PY, "bench/refs.py", "asgi", "--port", "{port}"],
    # partydeco serves on uvloop when it is installed: this is the like-for-like floor
    "asgi-uvloop": [PY, "bench/refs.py", "asgi", "--uvloop", "--port", "{port}"],
    "quart": [PY, "bench/refs.py", "quart", "--port", "{port}"],
    "partydeco-uvicorn": [
        PY, "bench/app.py", "--server", "uvicorn", "--key-file", "{keyfile}", "--port", "{port}",
    ],
    "starlette-uvicorn": [
        PY, "bench/refs.py", "starlette", "--server", "uvicorn", "--port", "{port}",
    ],
    "asgi-uvicorn": [PY, "bench/refs.py", "asgi", "--server", "uvicorn", "--port", "{port}"],
}
WORKLOADS = {
    "connect": ["connect", "--concurrency", "16", "--connections"],
    "http": ["http", "--concurrency", "16", "--requests"],
}


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count(command: list[str], root: Path, workload: str, n: int, keyfile: Path) -> int:
    """Serve with *command* under cachegrind, run *n* operations of *workload*, stop;
    the instructions the server executed."""
    port = free_port()
    argv = [arg.replace("{port}", str(port)).replace("{keyfile}", str(keyfile)) for arg in command]
    # with the key from a file, the bench app generates none: RSA key generation takes
    # a random number of instructions
    env = {
        **os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0",
        "BENCH_KEY_FILE": str(keyfile),
    }  # fmt: skip
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*cachegrind.VALGRIND, *argv], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                if server.poll() is not None:
                    break
                time.sleep(0.5)
            if n:
                load = ["node", str(HERE / "loadgen.mjs"), *WORKLOADS[workload], str(n)]
                subprocess.run([*load, "--port", str(port)], capture_output=True, timeout=900)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.seek(0)
        text = log.read().decode(errors="replace")
    found = re.findall(r"I\s+refs:\s+([\d,]+)", text)
    if not found:
        sys.exit(f"no instruction count from {' '.join(argv)}:\n{text[-2000:]}")
    return int(found[-1].replace(",", ""))


def main() -> None:
    """Count every server and workload; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="partydeco,asgi-uvloop")
    parser.add_argument("--workloads", default="connect,http")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--against", metavar="DIR", action="append", default=[])
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from run import write_key

    servers = [(name, SERVERS[name], ROOT) for name in args.servers.split(",")]
    for other in args.against:  # each partydeco server again, from that checkout
        directory = Path(other).resolve()
        for name in [n for n, _, _ in servers if n.startswith("partydeco") and "@" not in n]:
            servers.append((f"{name}@{directory.name}", SERVERS[name], directory))
    with tempfile.TemporaryDirectory() as tmp:
        keyfile = Path(tmp) / "key.pem"
        write_key(keyfile)
        print(f"server instructions per operation, {args.count} operations (valgrind cachegrind)")
        for workload in args.workloads.split(","):
            for name, command, root in servers:
                base = count(command, root, workload, args.warmup, keyfile)
                total = count(command, root, workload, args.warmup + args.count, keyfile)
                per = (total - base) / args.count
                print(f"  {workload:8} {name:20} {per:12,.0f}", flush=True)


if __name__ == "__main__":
    main()
