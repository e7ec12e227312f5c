"""What a served app prints: one format for every line, with level and logger, and one
access line per request, Quart's routes included."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.support import start_process

APP = '''
from pathlib import Path

from quart import send_from_directory

from partydeco import party

HERE = Path(__file__).parent


@party.on_request
async def broken(request, room):
    raise RuntimeError("the handler failed")


@party.app.quart.route("/<path:name>")
async def asset(name):
    return await send_from_directory(HERE, name)


if __name__ == "__main__":
    party.run()
'''

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: "
)


def fetch_and_leave(port: int, path: str) -> bytes:
    """GET *path* and close the connection as soon as the body has arrived, as curl does."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        found = re.search(rb"content-length: (\d+)", head, re.I)
        assert found is not None
        length = int(found.group(1))
        while len(body) < length:
            body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_one_line_format_and_one_access_line_per_request(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "page.js").write_text("console.log('hello');\n" * 200)
    server = start_process([str(tmp_path / "app.py")], cwd=tmp_path, ready_path="/page.js")
    try:
        for _ in range(20):
            assert fetch_and_leave(server.port, "/page.js") == b"HTTP/1.1 200 "
        assert fetch_and_leave(server.port, "/parties/main/r") == b"HTTP/1.1 500 "
    finally:
        server.stop()
    lines = server.output().splitlines()
    logged = [line for line in lines if LINE.match(line)]
    traceback = ("Traceback", " ", "RuntimeError")  # of the handler's error
    assert [line for line in lines if not LINE.match(line) and not line.startswith(traceback)] == []
    access = [line for line in logged if " INFO partydeco.access: " in line]
    pages = [line for line in access if '"GET /page.js 1.1"' in line]
    assert len(pages) == 21  # the readiness check, and the 20 requests
    assert all('"GET /page.js 1.1" 200 4400 ' in line for line in pages), pages
    (error,) = [line for line in logged if " ERROR " in line]
    assert " ERROR partydeco: error answering GET /parties/main/r in <Room main/r>" in error
    assert any('"GET /parties/main/r 1.1" 500 21 ' in line for line in access)
