"""Finding and running the code blocks of README.md and docs/ (see tests/docs/test_doc_snippets.py).

The convention, also described in docs/contributing.md:

- Every fenced ``python`` block is a program the suite runs: in a fresh ``App`` (so ``party``
  and ``Party(...)`` register on it, as in a test), with top-level ``await`` allowed and
  ``__name__`` not ``"__main__"`` (so ``party.run()`` under that guard does not start a
  server). After the last block of a chain the app is started and stopped once, which
  runs ``on_start`` checks, builds its dispatch tables and so validates the handlers.
- ``<!-- snippet: continue -->`` on the line before a block: it continues the previous
  ``python`` block of the same page (same names, same app), for text that shows a program
  in steps.
- ``<!-- snippet: NAME -->``: the block needs the setup ``NAME`` from :data:`FIXTURES`
  (names a snippet uses but does not define, a running server, a file to import) and is
  checked by it afterwards.
- Shell blocks (``sh``) are not run: each one starts a server, installs packages or runs
  a long job, so each carries ``<!-- snippet: exempt: <why> -->``. Their ``pip install``
  extras and the repository paths they name are checked to exist.
- Other languages (``ts``, ``js``, ``json``, ``toml``, ``nginx``, ...) are not Python code
  for this suite; configuration partydeco ships is included from the real file.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from partydeco import App
from partydeco.testing import TestClient
from tests.support.servers import ROOT

PYTHON = {"python", "py"}
SHELL = {"sh", "bash", "shell", "console"}
NOT_RUN = {"ts", "js", "json", "toml", "nginx", "ini", "text", "caddy", "dockerfile", "yaml"}

_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- snippet: (.+?) -->$")
_REPO_PATH = re.compile(r"(?<![\w/.])((?:examples|bench|partydeco|tests|docs)/[\w./-]+)")


@dataclass
class Snippet:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # of the first code line
    lang: str
    code: str
    directive: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def markdown_files() -> list[Path]:
    """README.md and every page of the docs site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snippets(path: Path) -> list[Snippet]:
    """Every fenced block of *path* (fences at the start of a line)."""
    found: list[Snippet] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{path}:{index + 1}: unclosed code block")
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        directive = _DIRECTIVE.match(previous.strip())
        found.append(
            Snippet(
                path=path,
                line=start + 1,
                lang=fence.group(1).lower(),
                code="\n".join(lines[start:end]) + "\n",
                directive=directive.group(1).strip() if directive else None,
            )
        )
        index = end + 1
    return found


def chains(path: Path) -> list[list[Snippet]]:
    """The page's Python blocks, grouped: a ``continue`` block joins the previous chain."""
    grouped: list[list[Snippet]] = []
    for snippet in snippets(path):
        if snippet.lang not in PYTHON:
            continue
        if snippet.directive == "continue":
            if not grouped:
                raise AssertionError(f"{snippet.where}: 'continue' with no block before it")
            grouped[-1].append(snippet)
        else:
            grouped.append([snippet])
    return grouped


async def execute(code: str, namespace: dict[str, Any], where: str) -> None:
    """Run *code* in *namespace* as a module body that may use top-level ``await``."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if asyncio.iscoroutine(result):
        await asyncio.wait_for(result, 20)


@dataclass
class Run:
    """What a fixture gets: the snippet, and the app and names it runs with."""

    snippet: Snippet
    app: App
    namespace: dict[str, Any]
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    #: checks run after the chain's last block (a later block may still register handlers)
    checks: list[Callable[[TestClient], Awaitable[None]]] = field(default_factory=list)

    async def execute(self, code: str | None = None) -> None:
        source = self.snippet.code if code is None else code
        await execute(source, self.namespace, self.snippet.where)


Fixture = Callable[[Run], Awaitable[None]]
FIXTURES: dict[str, Fixture] = {}


def fixture(name: str) -> Callable[[Fixture], Fixture]:
    def register(function: Fixture) -> Fixture:
        FIXTURES[name] = function
        return function

    return register


async def program(run: Run) -> None:
    """The default: the block is a complete program."""
    await run.execute()


FIXTURES["program"] = program
FIXTURES["continue"] = program


def example_code(relative: str) -> str:
    """An example's code without its module docstring (what the docs show of it)."""
    source = (ROOT / relative).read_text(encoding="utf-8")
    tree = ast.parse(source)
    first = tree.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        source = "\n".join(source.splitlines()[first.end_lineno :])
    return source.strip() + "\n"


def normalise(code: str) -> str:
    """Code with comments, blank lines and trailing spaces removed."""
    kept = []
    for line in code.splitlines():
        stripped = re.sub(r"\s+#.*$", "", line).rstrip()
        if stripped and not stripped.lstrip().startswith("#"):
            kept.append(stripped)
    return "\n".join(kept)


@fixture("quickstart")
async def quickstart(run: Run) -> None:
    """The quickstart app, as shown: it must be examples/quickstart/app.py, and it greets."""
    assert normalise(run.snippet.code) == normalise(example_code("examples/quickstart/app.py"))
    run.monkeypatch.setenv("TOKEN", "secret")
    await run.execute()

    async def check(client: TestClient) -> None:
        async with client.connect("lobby", query={"token": "secret"}) as alice:
            assert await alice.receive() == "Hello alice from party!"
        assert (await client.fetch("lobby")).status == 401  # HTTP is protected too
        response = await client.fetch("lobby", query={"token": "secret"})
        assert response.json() == {"room": "lobby", "connections": 0}

    run.checks.append(check)


@fixture("test-file")
async def test_file(run: Run) -> None:
    """A user's test module: run by pytest beside the quickstart saved as ``app.py``."""
    (run.tmp_path / "app.py").write_text((ROOT / "examples/quickstart/app.py").read_text())
    (run.tmp_path / "test_app.py").write_text(run.snippet.code)
    (run.tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=run.tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b[1-9]\d* passed", result.stdout), result.stdout


@fixture("serve-quickstart")
async def serve_quickstart(run: Run) -> None:
    """A real server with the quickstart app; ``localhost:1999`` in the block points at it."""
    from tests.support import serve

    run.monkeypatch.setenv("TOKEN", "secret")
    server_app = App(storage="memory://")
    with server_app:
        await execute(example_code("examples/quickstart/app.py"), {"__name__": "app"}, "app")

    async def fetch_fresh_token() -> str:
        return "secret"

    run.namespace.update(fetch_fresh_token=fetch_fresh_token, token="secret")
    async with serve(server_app) as base:
        await run.execute(run.snippet.code.replace("localhost:1999", base))


@fixture("own-jwt")
async def own_jwt(run: Run) -> None:
    """The own-JWT snippet: needs JWT_SECRET and a password check; then signs users in."""
    run.monkeypatch.setenv("JWT_SECRET", "s" * 32)

    class User:
        id = "ada"

    async def check_password(body: dict[str, str]) -> User:
        assert body == {"username": "ada", "password": "pw"}
        return User()

    run.namespace["check_password"] = check_password
    await run.execute()

    async def check(client: TestClient) -> None:
        credentials = {"username": "ada", "password": "pw"}
        answer = await client.post("/parties/login/default", json=credentials)
        assert answer.status == 200, answer.text
        token = answer.json()["token"]
        claims = await run.namespace["verifier"].verify(token)
        assert claims["sub"] == "ada"

    run.checks.append(check)


@fixture("alarms")
async def alarms(run: Run) -> None:
    """The alarms snippet: the HTTP call sets an alarm, and a socket to the room stays open."""
    await run.execute()

    async def check(client: TestClient) -> None:
        response = await client.fetch("lobby", method="POST")
        assert response.status == 200, response.text
        assert response.json()["alarm"] > 0
        async with client.connect("lobby") as socket:
            assert await socket.receive() == "connected to lobby"

    run.checks.append(check)


@fixture("other-rooms")
async def other_rooms(run: Run) -> None:
    """Room-to-room calls: the answer the snippet builds reaches the HTTP client."""
    await run.execute()

    async def check(client: TestClient) -> None:
        response = await client.fetch("lobby")
        assert response.status == 200, response.text
        assert response.json() == {
            "status": 200,
            "inbox": {"to": "alice", "from": "lobby", "page": "1", "text": "hi"},
            "reply": "inbox of alice: hello",
        }

    run.checks.append(check)


@fixture("typed-messages")
async def typed_messages(run: Run) -> None:
    """Typed messages: a valid frame is broadcast back as JSON, an invalid one is refused."""
    await run.execute()

    async def check(client: TestClient) -> None:
        async with client.connect("lobby") as alice:
            await alice.send(json.dumps({"type": "move", "x": 1, "y": 2}))
            assert await alice.receive_json() == {"type": "move", "x": 1, "y": 2}
            await alice.send(json.dumps({"type": "move", "x": "1", "y": 2}))
            assert (await alice.receive_json())["error"] == "invalid_message"

    run.checks.append(check)


@fixture("storage-counter")
async def storage_counter(run: Run) -> None:
    """The counter: each request adds one."""
    await run.execute()

    async def check(client: TestClient) -> None:
        assert (await client.fetch("lobby")).json() == {"count": 1}
        assert (await client.fetch("lobby")).json() == {"count": 2}

    run.checks.append(check)


@fixture("verifier")
async def verifier(run: Run) -> None:
    """Blocks that use a ``verifier`` built elsewhere on the page: an HS256 one."""
    from partydeco import auth

    run.namespace["verifier"] = auth.JWTVerifier.from_secret("s" * 32)
    await run.execute()


@fixture("app-test")
async def app_test(run: Run) -> None:
    """A block that defines ``test_*`` functions: they are called."""
    await run.execute()
    tests = [v for k, v in run.namespace.items() if k.startswith("test_") and callable(v)]
    assert tests
    for test in tests:
        result = test()
        if asyncio.iscoroutine(result):
            await result


def check_shell(snippet: Snippet, extras: set[str]) -> None:
    """A shell block is exempt from running, but what it names must exist."""
    if snippet.directive is None or not snippet.directive.startswith("exempt:"):
        raise AssertionError(f"{snippet.where}: shell block not marked 'snippet: exempt: ...'")
    for name in re.findall(r"partydeco\[([\w,-]+)\]|\.\[([\w,-]+)\]", snippet.code):
        for extra in ",".join(name).split(","):
            if extra:
                assert extra in extras, f"{snippet.where}: no extra named {extra!r}"
    for path in _REPO_PATH.findall(snippet.code):
        assert (ROOT / path).exists(), f"{snippet.where}: {path} does not exist"



@fixture("jwt-secret")
async def jwt_secret(run: Run) -> None:
    """A block that reads ``JWT_SECRET`` from the environment."""
    run.monkeypatch.setenv("JWT_SECRET", "s" * 32)
    await run.execute()


@fixture("session-service")
async def session_service(run: Run) -> None:
    """The introspection verifier: needs its client secret in the environment."""
    run.monkeypatch.setenv("SESSION_CLIENT_SECRET", "rooms-secret")
    await run.execute()

    async def check(client: TestClient) -> None:
        refused = await client.fetch("lobby")
        assert refused.status == 401
        assert refused.header("WWW-Authenticate") is not None

    run.checks.append(check)


@fixture("shared-secret")
async def shared_secret(run: Run) -> None:
    """The shared secret: refused without it, answered with it."""
    run.monkeypatch.setenv("ROOM_ADMIN_SECRET", "admin-secret")
    await run.execute()

    async def check(client: TestClient) -> None:
        assert (await client.fetch("lobby", method="POST", body=b"hi")).status == 401
        answer = await client.fetch(
            "lobby",
            method="POST",
            body=b"hi",
            headers={"Authorization": "Bearer admin-secret"},
        )
        assert answer.status == 200, answer.text
        assert answer.json() == {"delivered_to": 0}

    run.checks.append(check)


@fixture("storage-tutorial")
async def storage_tutorial(run: Run) -> None:
    """The tutorial's counter: +1 from one client reaches both, and a new client sees it."""
    await run.execute()

    async def check(client: TestClient) -> None:
        async with client.connect("lobby") as alice, client.connect("lobby") as bob:
            assert await alice.receive() == "count: 0"
            assert await bob.receive() == "count: 0"
            await alice.send("+1")
            assert await bob.receive() == "count: 1"
        async with client.connect("lobby") as carol:
            assert await carol.receive() == "count: 1"

    run.checks.append(check)
