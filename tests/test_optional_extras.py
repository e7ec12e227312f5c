"""Optional packages: a missing one is named with the extra that installs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib

import pytest

from tests.helpers import ROOT


def run_without(module: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter where *module* cannot be imported."""
    prelude = textwrap.dedent(
        f"""
        import sys

        class NotInstalled:  # finds {module!r} nowhere, as if it were not installed
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name.partition(".")[0] == {module!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_client_without_websockets_names_the_extra() -> None:
    result = run_without("websockets", "from partydeco.client import PartySocket")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: partydeco.client.PartySocket needs the websockets package")
    assert last.endswith("pip install 'partydeco[client]'")


@pytest.mark.parametrize("module", ["httpx2", "authlib"])
def test_introspection_without_its_packages_fails_at_construction(module: str) -> None:
    result = run_without(
        module,
        """
        from partydeco import SetupError, auth
        try:
            auth.IntrospectionVerifier("https://idp.example/i", client_id="a", client_secret="b")
        except SetupError as error:
            print(error)
        """,
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
