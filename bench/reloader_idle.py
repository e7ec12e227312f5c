"""CPU the dev reloader costs while nothing changes: ``python bench/reloader_idle.py``.

Runs ``partydeco dev examples/quickstart/app.py`` from the repository root (where
``.venv`` and ``tests/js/node_modules`` hold thousands of files the reloader must
leave alone), waits until the app answers, then reads the supervisor's CPU time
(user + system, from ``/proc``) over an idle window. ``--against DIR`` runs the
partydeco of another checkout the same way, from the same folder, in the same run.

    python bench/reloader_idle.py                      # 10 s idle, this checkout
    python bench/reloader_idle.py --against ../main    # and another checkout
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(checkout: Path, seconds: float) -> float:
    """The supervisor's CPU seconds over *seconds* of idle, for partydeco from *checkout*."""
    port = free_port()
    # -P: partydeco comes from PYTHONPATH (the checkout), not from the working directory
    env = {**os.environ, "PYTHONPATH": str(checkout), "TOKEN": "secret"}
    supervisor = subprocess.Popen(
        [PY, "-P", "-m", "partydeco", "dev", "examples/quickstart/app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/parties/main/lobby", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or supervisor.poll() is not None:
                    raise SystemExit(f"{checkout}: the app did not start") from None
                time.sleep(0.1)
        time.sleep(2)  # past start-up
        before = cpu_seconds(supervisor.pid)
        time.sleep(seconds)
        return cpu_seconds(supervisor.pid) - before
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=20)
        except subprocess.TimeoutExpired:
            supervisor.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="idle window (10)")
    parser.add_argument("--against", type=Path, action="append", default=[], metavar="DIR")
    args = parser.parse_args()
    for checkout in [ROOT, *args.against]:
        used = measure(checkout.resolve(), args.seconds)
        print(f"{checkout}: {used:.2f} s of CPU in {args.seconds:.0f} s idle")


if __name__ == "__main__":
    main()
