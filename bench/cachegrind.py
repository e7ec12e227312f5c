"""Counting instructions with Valgrind's cachegrind, for the ``*_instructions.py`` scripts.

Counts are repeatable where timings are not: a busy machine slows a run but does not
change how many instructions it executes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

#: The command prefix: count instructions only, no cache simulation, no output file.
VALGRIND = [
    "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
]  # fmt: skip


def child_env(directory: Path, root: Path) -> dict[str, str]:
    """The environment of a counted child: the bench app signs with an RSA key written
    to *directory* (generating one takes a random number of instructions), hash
    randomisation is fixed, and partydeco is imported from the checkout *root*."""
    from run import write_key

    key = directory / "key.pem"
    write_key(key)
    return {
        **os.environ, "BENCH_KEY_FILE": str(key), "PYTHONHASHSEED": "0",
        "PYTHONPATH": str(root),
    }  # fmt: skip


def total(report: str) -> int | None:
    """The instructions a cachegrind run executed, from its report (``I refs: 1,234``)."""
    found = re.search(r"I\s+refs:\s+([\d,]+)", report)
    return int(found.group(1).replace(",", "")) if found else None


def instructions(script: str, args: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run ``python *script* *args*`` under cachegrind; the instructions it executed.

    Exits with Valgrind's report when the run fails.
    """
    done = subprocess.run(
        [*VALGRIND, sys.executable, script, *args],
        capture_output=True, text=True, env=env, cwd=cwd,
    )  # fmt: skip
    counted = total(done.stderr)
    if done.returncode != 0 or counted is None:
        sys.exit(f"valgrind run failed:\n{done.stderr[-2000:]}")
    return counted
