"""bench/run.py's servers: process groups (CPU, pinning, stopping), the Uvicorn and PartyKit ones.

The PartyKit test needs a runnable copy of the shared anchors: set
``PARTYDECO_BENCH_PARTYKIT`` to its ``anchors/partykit`` folder (with ``node_modules``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.procs import group_cpu_seconds, members, pinned_to, stop_group
from bench.run import loadgen, partykit, start
from tests.support import ROOT

# A child that burns 0.3 s of CPU, says so, then ignores SIGTERM, as a worker that
# outlives its parent would; its parent only waits for it.
CHILD = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print("burnt", flush=True)
signal.pause()
"""
LEADER = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], stdout=subprocess.PIPE)
print(child.stdout.readline().decode().strip(), flush=True)
child.wait()
"""


def own_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset")
def test_a_server_is_its_process_group_for_cpu_pinning_and_stopping() -> None:
    command = ["taskset", "-c", "0", sys.executable, "-c", LEADER]
    leader = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert leader.stdout is not None and leader.stdout.readline() == b"burnt\n"
        assert len(members(leader.pid)) == 2
        assert pinned_to(leader.pid) == {frozenset({0})}  # the child inherited the pin
        # the child's CPU counts, not only the leader's
        assert group_cpu_seconds(leader.pid) - own_cpu_seconds(leader.pid) >= 0.25
    finally:
        stop_group(leader, grace=5, leftovers=0.5)
        assert leader.stdout is not None
        leader.stdout.close()
    assert members(leader.pid) == []  # the child that ignored SIGTERM was killed


def test_partykit_wants_a_runnable_copy(tmp_path: Path) -> None:
    def run(*args: str) -> str:
        command = [sys.executable, "bench/run.py", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 1
        return done.stderr

    assert "needs --partykit DIR" in run("--servers", "partykit")
    assert "no run-fg.sh there" in run("--partykit", str(tmp_path))
    (tmp_path / "run-fg.sh").write_text("#!/bin/sh\n")
    assert "run `npm ci` in it" in run("--partykit", str(tmp_path))


def test_the_bare_asgi_app_runs_on_uvicorn(tmp_path: Path) -> None:
    server = start("asgi-uvicorn", tmp_path, None)
    try:
        assert loadgen(["check"], server.port, None)["errors"] == 0
        echo = loadgen(["echo", "--clients", "2", "--roundtrips", "20"], server.port, None)
        assert (echo["errors"], echo["count"]) == (0, 40), echo
    finally:
        server.stop()


@pytest.mark.skipif(
    not os.environ.get("PARTYDECO_BENCH_PARTYKIT"), reason="PARTYDECO_BENCH_PARTYKIT not set"
)
def test_the_partykit_dev_server_runs_pinned_and_stops_whole(tmp_path: Path) -> None:
    name = partykit(Path(os.environ["PARTYDECO_BENCH_PARTYKIT"]))
    pin = "0" if (os.cpu_count() or 1) > 1 and shutil.which("taskset") else None
    server = start(name, tmp_path, pin)
    pgid = server.process.pid
    try:
        assert loadgen(["check"], server.port, None)["errors"] == 0
        commands = [Path(f"/proc/{pid}/comm").read_text().strip() for pid in members(pgid)]
        assert {"node", "workerd"} <= set(commands)
        if pin:
            assert pinned_to(pgid) == {frozenset({0})}
        cpu = group_cpu_seconds(pgid)
        http = loadgen(["http", "--requests", "200", "--concurrency", "4"], server.port, None)
        assert (http["errors"], http["count"]) == (0, 200), http
        assert group_cpu_seconds(pgid) > cpu
    finally:
        server.stop()
    assert members(pgid) == []
