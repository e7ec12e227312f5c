"""Every code block of README.md and docs/ runs (the convention: tests/support/doc_snippets.py)."""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from partydeco import App
from partydeco.testing import TestClient
from tests.support.doc_snippets import (
    FIXTURES,
    NOT_RUN,
    PYTHON,
    ROOT,
    SHELL,
    Run,
    Snippet,
    chains,
    check_shell,
    markdown_files,
    snippets,
)

ALL_CHAINS = [chain for path in markdown_files() for chain in chains(path)]


@pytest.mark.parametrize("chain", ALL_CHAINS, ids=[chain[0].where for chain in ALL_CHAINS])
async def test_python_block_runs(
    chain: list[Snippet], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTYDECO_STORAGE", "memory://")
    monkeypatch.chdir(tmp_path)
    checks: list[Callable[[TestClient], Awaitable[None]]] = []
    with App() as app:
        namespace: dict[str, object] = {"__name__": "__snippet__"}
        for snippet in chain:
            name = snippet.directive or "program"
            assert name in FIXTURES, f"{snippet.where}: no snippet fixture named {name!r}"
            await FIXTURES[name](Run(snippet, app, namespace, tmp_path, monkeypatch, checks))
        # The app starts with the handlers the blocks registered; then the fixtures' checks.
        async with TestClient(app) as client:
            for check in checks:
                await check(client)


def test_every_block_has_a_known_language() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    for path in markdown_files():
        for snippet in snippets(path):
            assert snippet.lang, f"{snippet.where}: a code block needs a language"
            assert snippet.lang in PYTHON | SHELL | NOT_RUN, f"{snippet.where}: {snippet.lang}?"
            if snippet.lang in SHELL:
                check_shell(snippet, extras)


def test_the_docs_have_python_blocks() -> None:
    assert len(ALL_CHAINS) >= 20
    assert {chain[0].path.name for chain in ALL_CHAINS} >= {"README.md", "quickstart.md"}
