"""Optional packages: a missing one is named with the extra that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from partydeco.extras import EXTRAS
from tests.support import ROOT
from tests.support.sites import site_without


def run_without(module: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter whose site-packages lack *module*.

    The interpreter sees a copy of site-packages made of symlinks to everything but the
    package (and its metadata), and partydeco from the repository, so *module* is as
    absent as if it had never been installed.
    """
    view = site_without(module, tmp_path)
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{ROOT}{os.pathsep}{view}", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def missing_extra(feature: str, package: str, extra: str) -> str:
    return (
        f"{feature} needs the {package} package, which partydeco installs only with the "
        f"{extra!r} extra: pip install 'partydeco[{extra}]'"
    )


@pytest.mark.parametrize(
    ("module", "code", "feature", "extra"),
    [
        (
            "websockets",
            "from partydeco.client import PartySocket",
            "partydeco.client.PartySocket",
            "client",
        ),
        ("pycrdt", "from partydeco import yjs", "partydeco.yjs", "yjs"),
        (
            "redis",
            "from partydeco.storage.redis import RedisStorage",
            "Redis storage (partydeco.storage.redis)",
            "redis",
        ),
        (
            "redis",
            "import partydeco.backplane.redis",
            "the Redis backplane (partydeco.backplane.redis)",
            "redis",
        ),
    ],
)
def test_importing_a_part_without_its_extra_names_the_extra(
    module: str, code: str, feature: str, extra: str, tmp_path: Path
) -> None:
    result = run_without(module, code, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"partydeco.errors.MissingExtraError: {missing_extra(feature, module, extra)}"


@pytest.mark.parametrize(
    ("module", "extra", "setup"),
    [
        ("redis", "redis", "App(redis_url='redis://127.0.0.1:1/0')"),
        ("redis", "redis", "App(storage='redis://127.0.0.1:1/0')"),
        ("prometheus_client", "metrics", "App(metrics=True)"),
        ("opentelemetry", "otel", "App(tracing=True)"),
    ],
)
def test_configuring_a_part_without_its_extra_fails_at_start(
    module: str, extra: str, setup: str, tmp_path: Path
) -> None:
    result = run_without(
        module,
        f"""
        from partydeco import App, SetupError
        from partydeco.server.runtime import Runtime

        try:
            Runtime({setup})  # what a server builds as it starts
        except SetupError as error:
            print(type(error).__name__, error)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("MissingExtraError ")
    assert result.stdout.strip().endswith(
        f"needs the {module} package, which partydeco installs only with the {extra!r} "
        f"extra: pip install 'partydeco[{extra}]'"
    )


def test_partydeco_dev_without_watchfiles_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from partydeco import party\n")
    result = run_without(
        "watchfiles", "from partydeco.cli import main; main(['dev', 'app.py'])", tmp_path
    )
    assert result.returncode == 1
    assert result.stderr == "partydeco: " + missing_extra(
        "reloading (partydeco dev, run(reload=True))", "watchfiles", "dev"
    ) + "\n"


def test_every_optional_package_is_mapped_to_its_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    imported_as = {"prometheus-client": "prometheus_client", "opentelemetry-api": "opentelemetry"}
    declared: dict[str, set[str]] = {}  # package -> the extras that install it
    for extra, requirements in extras.items():
        if extra in ("test", "docs", "bench"):
            continue
        for requirement in requirements:
            name = requirement.split(">")[0].split("<")[0].split("[")[0].strip()
            declared.setdefault(imported_as.get(name, name), set()).add(extra)
    mapped = {package: extra for package, extra in EXTRAS.items() if package != "authlib"}
    assert set(mapped) == set(declared)
    for package, extra in mapped.items():
        assert extra in declared[package], (package, extra, declared[package])


def test_serving_with_uvicorn_without_it_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from partydeco import party\n")
    result = run_without(
        "uvicorn",
        "from partydeco.cli import main; main(['serve', 'app.py', '--server', 'uvicorn'])",
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr == "partydeco: " + missing_extra(
        "serving with Uvicorn", "uvicorn", "uvicorn"
    ) + "\n"
