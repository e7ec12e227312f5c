"""Static assets: content types, HEAD, fallback order, and traversal attempts refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from partydeco import App, Request, Room, SetupError
from tests.support import serve


async def raw_request(base: str, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """Send the request line exactly as given (no client-side path normalisation)."""
    host, port = base.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"{method} {target} HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture
def site(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "app.js").write_text("console.log(1)")
    (public / "data.json").write_text("{}")
    (public / "sub" / "index.html").write_text("sub home")
    (public / "sub" / "notes.txt").write_text("notes")
    (public / "logo.png").write_bytes(b"\x89PNG" + b"\x00" * 200_000)
    (public / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", public / "link.txt")
    return public


def make_app(site: Path) -> App:
    app = App(storage="memory://")
    main = app.party()
    main.static(site)

    @main.on_request
    def room(request: Request, room: Room) -> str:
        return f"room {room.id}"

    @app.quart.route("/from-quart")
    async def from_quart() -> str:
        return "quart route"

    return app


async def test_serves_files_with_content_types(site: Path) -> None:
    async with serve(make_app(site)) as base, httpx.AsyncClient() as client:
        r = await client.get(f"http://{base}/")
        assert (r.status_code, r.text) == (200, "<h1>home</h1>")
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        r = await client.get(f"http://{base}/app.js")
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert (await client.get(f"http://{base}/data.json")).headers["content-type"] == (
            "application/json; charset=utf-8"
        )
        r = await client.get(f"http://{base}/logo.png")
        assert r.headers["content-type"] == "image/png"
        assert r.content == (site / "logo.png").read_bytes()  # several chunks
        assert (await client.get(f"http://{base}/sub/")).text == "sub home"
        assert (await client.get(f"http://{base}/sub")).text == "sub home"
        assert (await client.get(f"http://{base}/sub/notes.txt")).text == "notes"


async def test_head_and_methods(site: Path) -> None:
    async with serve(make_app(site)) as base, httpx.AsyncClient() as client:
        r = await client.head(f"http://{base}/app.js")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len("console.log(1)"))
        assert r.content == b""
        # Only GET and HEAD are served; anything else falls through to 404/405.
        r = await client.post(f"http://{base}/app.js")
        assert r.status_code in (404, 405)


async def test_party_urls_first_then_assets_then_routes_then_404(site: Path) -> None:
    (site / "parties" / "main").mkdir(parents=True)
    (site / "parties" / "main" / "r1").write_text("shadow")
    async with serve(make_app(site)) as base, httpx.AsyncClient() as client:
        assert (await client.get(f"http://{base}/parties/main/r1")).text == "room r1"
        assert (await client.get(f"http://{base}/from-quart")).text == "quart route"
        r = await client.get(f"http://{base}/missing.js")
        assert r.status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/.env",
        "/%2eenv",
        "/link.txt",
        "/app.js%00.png",
        "//etc/passwd",
        "/C:/Windows/win.ini",
        "/%ff%fe",
    ],
)
async def test_traversal_attempts_are_refused(site: Path, target: str) -> None:
    async with serve(make_app(site)) as base:
        status, _, body = await raw_request(base, "GET", target)
    assert status in (400, 404)
    assert b"top secret" not in body
    assert b"SECRET" not in body


def test_missing_folder_is_a_setup_error(tmp_path: Path) -> None:
    app = App()
    with pytest.raises(SetupError, match="does not exist"):
        app.party().static(tmp_path / "nope")


def test_relative_folder_is_relative_to_the_calling_file() -> None:
    app = App()
    app.party().static("..")  # relative to this file: tests/
    assert app.static_files[0].directory.resolve() == Path(__file__).resolve().parent.parent
