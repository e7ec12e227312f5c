"""Packaging: types reach mypy from the editable install, and the wheel carries what it should."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tests.support import ROOT

WRONG_HANDLER = """
    from partydeco import party


    @party.on_message
    async def relay(message):  # on_message is called with (message, sender)
        pass
"""

RIGHT_HANDLER = """
    from partydeco import Connection, party


    @party.on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(message, without=[sender.id])
"""


def test_mypy_sees_partydeco_types_from_outside_the_repository(tmp_path: Path) -> None:
    assert ROOT not in tmp_path.parents
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG_HANDLER))
    (tmp_path / "right.py").write_text(textwrap.dedent(RIGHT_HANDLER))
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", ".mypy", "wrong.py", "right.py"],
        cwd=tmp_path,  # the project's venv, an app folder outside the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = result.stdout + result.stderr
    assert "import-not-found" not in output, output
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors, output
    assert all(line.startswith("wrong.py:5:") for line in errors), output
    assert 'of "on_message"' in errors[0], output
    assert "Found 1 error in 1 file (checked 2 source files)" in result.stdout, output


def build_wheel(out: Path) -> Path:
    # The build backend itself, as pip would call it; -W error: a build that warns fails.
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return out / result.stdout.strip().splitlines()[-1]


def test_wheel_ships_licence_types_and_metadata(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
        licence = archive.read(f"{dist_info}/licenses/LICENSE").decode()
    assert licence == (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License")
    assert {"partydeco/py.typed", "partydeco/hypercorn.toml", "partydeco/__init__.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "docs/", "bench/"))]

    assert metadata["License-Expression"] == "MIT"
    assert metadata["License"] is None  # the deprecated free-text field
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "License :: OSI Approved :: MIT License" not in classifiers  # superseded by SPDX
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Repository", "Changelog"} <= set(urls)
    requires = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert any(r.lower().startswith("authlib") for r in requires), requires
    assert any(r.startswith("joserfc") for r in requires), requires

