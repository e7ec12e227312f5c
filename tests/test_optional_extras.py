"""Optional packages: a missing one is named with the extra that installs it."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.support import ROOT


def run_without(module: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter whose site-packages lack *module*.

    The interpreter sees a copy of site-packages made of symlinks to everything but the
    package (and its metadata), and partydeco from the repository, so *module* is as
    absent as if it had never been installed.
    """
    (site_packages,) = [Path(p) for p in site.getsitepackages() if p.startswith(sys.prefix)]
    view = tmp_path / "site-packages"
    view.mkdir()
    for entry in site_packages.iterdir():
        if entry.name.split("-")[0].lower() != module and entry.name != f"{module}.py":
            (view / entry.name).symlink_to(entry)
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{ROOT}{os.pathsep}{view}", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_client_without_websockets_names_the_extra(tmp_path: Path) -> None:
    result = run_without("websockets", "from partydeco.client import PartySocket", tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: partydeco.client.PartySocket needs the websockets package")
    assert last.endswith("pip install 'partydeco[client]'")


@pytest.mark.parametrize("module", ["httpx2", "authlib"])
def test_introspection_without_its_packages_fails_at_construction(
    module: str, tmp_path: Path
) -> None:
    result = run_without(
        module,
        """
        from partydeco import SetupError, auth
        try:
            auth.IntrospectionVerifier("https://idp.example/i", client_id="a", client_secret="b")
        except SetupError as error:
            print(error)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"IntrospectionVerifier needs {module}, which partydeco installs only with the "
        "'introspection' extra: pip install 'partydeco[introspection]'"
    )


def test_readme_names_every_extra_users_install() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    readme = (ROOT / "README.md").read_text()
    for name in extras:
        assert f"partydeco[{name}]" in readme or f".[{name}]" in readme, name
