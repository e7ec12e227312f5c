"""SQLite durability: a writer killed with SIGKILL loses no write it reported."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from partydeco.storage import RoomStorage, SqliteStorage
from tests.support import ROOT


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_kill_9_during_write_burst_loses_no_committed_write(
    tmp_path: Path, synchronous: str
) -> None:
    db = tmp_path / "burst.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "support" / "storage_burst.py"), str(db), synchronous,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )
    assert proc.stdout is not None
    reported: list[int] = []

    async def read_until(count: int) -> None:
        assert proc.stdout is not None
        while len(reported) < count:
            line = await proc.stdout.readline()
            assert line, "the writer exited early"
            reported.append(int(line))

    try:
        await asyncio.wait_for(read_until(400), timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
    # Everything the writer printed before it died was committed first.
    rest = await proc.stdout.read()
    reported.extend(int(line) for line in rest.split())
    assert await proc.wait() == -signal.SIGKILL

    async with SqliteStorage(db) as backend:
        stored = await RoomStorage(backend, "main", "burst").list()
    missing = [n for n in reported if f"a{n}" not in stored or f"b{n}" not in stored]
    assert missing == []
    # Each commit wrote a pair atomically: no half-written pair exists.
    a_keys = {k[1:] for k in stored if k.startswith("a")}
    b_keys = {k[1:] for k in stored if k.startswith("b")}
    assert a_keys == b_keys
    assert len(a_keys) >= len(reported)
