"""Packaging: types reach mypy from the editable install, and the wheel carries what it should."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def run_mypy(app_dir: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run the project's mypy on one app file, from a folder outside the repository."""
    (app_dir / "app.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "app.py"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )


def test_mypy_sees_partydeco_types_from_outside_the_repository(tmp_path: Path) -> None:
    assert ROOT not in tmp_path.parents
    wrong = tmp_path / "wrong"
    right = tmp_path / "right"
    wrong.mkdir()
    right.mkdir()

    rejected = run_mypy(wrong, WRONG_HANDLER)
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "import-not-found" not in rejected.stdout, rejected.stdout
    assert 'of "on_message"' in rejected.stdout, rejected.stdout

    accepted = run_mypy(right, RIGHT_HANDLER)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Success" in accepted.stdout


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

