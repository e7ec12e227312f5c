"""The documentation: the site builds strictly, and the README is a short, linked entry point."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.doc_snippets import ROOT, snippets

README = ROOT / "README.md"


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "reference" / "auth" / "index.html").read_text()
    assert 'id="partydeco.auth.JWTVerifier"' in reference  # the API reference is generated
    deployment = (tmp_path / "deployment" / "index.html").read_text()
    assert "websocket_ping_interval" in deployment  # the shipped hypercorn.toml is included


def test_readme_has_exactly_the_two_set_up_commands() -> None:
    shell = [s for s in snippets(README) if s.lang == "sh"]
    assert len(shell) == 2, [s.where for s in shell]
    quickstart, tests = (s.code.strip() for s in shell)
    # The quickstart installs partydeco with no extras, then runs the quickstart.
    assert re.search(r"pip install -e \.(\s|$)", quickstart), quickstart
    assert "[" not in quickstart
    assert quickstart.endswith("python examples/quickstart/app.py")
    assert "pip install -e '.[test]'" in tests
    assert tests.endswith("python -m pytest")


def test_readme_contents_lists_every_section() -> None:
    text = README.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings[0] == "Contents"
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    for heading in headings[1:]:
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        assert f"(#{anchor})" in contents, heading
    assert len(text.splitlines()) < 200


def test_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        assert (ROOT / link).exists(), link
