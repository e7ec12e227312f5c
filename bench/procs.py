"""Servers that are several processes: one process group, its CPU, stopping all of it.

``bench/run.py`` starts every server as the leader of its own process group
(``start_new_session``). Most are one Python process; the PartyKit dev server is
node, which starts workerd (the process serving the port) and esbuild. The
helpers here treat the group as the server: CPU is summed over its members, and
stopping it leaves none of them behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def members(pgid: int, *, zombies: bool = False) -> list[int]:
    """The processes of process group *pgid*: the live ones, or with *zombies* all of them."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) and fields[2] == str(pgid):
            if zombies or fields[0] != "Z":
                out.append(int(entry))
    return out


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of process group *pgid* so far.

    Each live member counts its own time and that of its children it has reaped
    (which are no longer members), so short-lived helpers are counted too.
    """
    ticks = 0
    for pid in members(pgid):
        if fields := _stat(str(pid)):
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / _TICK


def signal_group(pgid: int, signum: int) -> None:
    """Send *signum* to process group *pgid* (nothing when it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_group(
    process: subprocess.Popen[bytes], grace: float = 5.0, leftovers: float = 2.0
) -> None:
    """Stop *process* and everything in its process group.

    SIGTERM to the group; after *grace* seconds SIGKILL to the group if the
    leader still runs; then members that outlive the leader (workerd, esbuild)
    get *leftovers* seconds before a SIGKILL. Returns when none are left, after
    waiting up to 5 s for init to reap those that exited after their parent.
    """
    pgid = process.pid
    if process.poll() is None:
        signal_group(pgid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(pgid, signal.SIGKILL)
            process.wait()
    deadline, killed = time.monotonic() + leftovers, False
    while left := members(pgid):
        if time.monotonic() > deadline:
            if killed:
                raise RuntimeError(f"processes {left} of group {pgid} survive SIGKILL")
            signal_group(pgid, signal.SIGKILL)
            deadline, killed = time.monotonic() + 5, True
        time.sleep(0.05)
    deadline = time.monotonic() + 5
    while members(pgid, zombies=True) and time.monotonic() < deadline:
        time.sleep(0.05)


def answers_http(port: int) -> bool:
    """Whether something on loopback *port* answers an HTTP request (any status)."""
    request = (
        f"GET /parties/main/ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Authorization: Bearer bench-token\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), 1) as sock:
            sock.settimeout(5)
            sock.sendall(request)
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def pinned_to(pgid: int) -> set[frozenset[int]]:
    """The CPU sets the members of process group *pgid* may run on (one set when all agree)."""
    out = set()
    for pid in members(pgid):
        with contextlib.suppress(OSError):
            out.add(frozenset(os.sched_getaffinity(pid)))
    return out
