"""The dev reloader: what it watches, and a real reload under awkward parent folders."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from partydeco.server.reload import is_ignored, watched_dirs
from tests.support import eventually, free_port, start_process

SOURCE = (
    "from partydeco import party\n"
    "@party.on_request\n"
    "def version(request, room):\n"
    "    return 'v1'\n"
    "if __name__ == '__main__':\n"
    "    party.run(reload=True)\n"
)


@pytest.mark.parametrize(
    ("parent", "command"),
    [
        ("plain", ["-m", "partydeco", "dev", "app.py"]),
        (".hidden", ["-m", "partydeco", "dev", "app.py"]),
        ("venv", ["app.py"]),
    ],
    ids=["partydeco dev", "partydeco dev under .hidden", "run(reload=True) under venv"],
)
async def test_a_reload_happens_under_a_parent_named(
    parent: str, command: list[str], tmp_path: Path
) -> None:
    project = tmp_path / parent / "project"
    project.mkdir(parents=True)
    app_file = project / "app.py"
    app_file.write_text(SOURCE)
    port = free_port()
    server = start_process(command, port=port, cwd=project)
    url = f"http://{server.base}/party/r"

    async def version() -> str | None:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).text
        except httpx.TransportError:
            return None

    try:
        assert await version() == "v1"
        app_file.write_text(SOURCE.replace("'v1'", "'v2'"))

        async def reloaded() -> bool:
            return await version() == "v2"

        await eventually(reloaded, timeout=15, interval=0.1, message="the change was not reloaded")
    finally:
        server.stop()
    assert "app.py changed, restarting" in server.output()


def test_virtual_environments_and_caches_are_left_out_by_name(tmp_path: Path) -> None:
    root = tmp_path / ".config" / "venv" / "project"  # ignored names above the root
    for folder in (
        "rooms/chat",
        ".venv/lib/python3.11/site-packages/quart",
        "venv/lib",
        "env-3.11/lib",  # a virtual environment of another name
        "node_modules/partysocket",
        "rooms/__pycache__",
        ".git/objects",
        "partydeco_app.egg-info",
    ):
        (root / folder).mkdir(parents=True)
    (root / "env-3.11" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert watched_dirs([root]) == [root, root / "rooms", root / "rooms" / "chat"]
    assert not is_ignored(root / "rooms")
    assert is_ignored(root / "env-3.11")
