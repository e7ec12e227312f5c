"""``partydeco new``: the command, refusing to overwrite, and what the templates ship.

The generated projects themselves (installed, tested, served) are checked in
``test_scaffold_projects.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from partydeco.cli import main
from partydeco.scaffold import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
    ProjectExistsError,
    ScaffoldError,
    UnknownTemplateError,
    create_project,
    project_name,
    render,
)
from tests.support import ROOT
from tests.support.js_driver import JS_DIR, ensure_node_modules

TEMPLATE_DIR = ROOT / "partydeco" / "templates"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under *directory* and its contents."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_list_shows_every_template_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    main(["new", "--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(TEMPLATES)
    for line, (name, description) in zip(lines, TEMPLATES.items(), strict=True):
        assert description in line
        assert line.endswith("(default)") == (name == DEFAULT_TEMPLATE)
    assert DEFAULT_TEMPLATE == "minimal" and "collab" not in TEMPLATES


def test_every_template_folder_is_listed() -> None:
    folders = {p.name for p in TEMPLATE_DIR.iterdir() if p.is_dir() and p.name[0] not in "_."}
    assert folders == set(TEMPLATES)


def test_new_writes_the_default_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["new", str(tmp_path / "My Rooms")])
    project = tmp_path / "My Rooms"
    assert set(snapshot(project)) == {
        ".dockerignore", ".env.example", ".gitignore", "Dockerfile", "README.md", "app.py",
        "hypercorn.toml", "pyproject.toml", "tests/conftest.py", "tests/test_app.py",
    }  # fmt: skip
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "my-rooms"
    assert pyproject["project"]["dependencies"] == ["partydeco>=0.1.0,<0.2"]
    assert pyproject["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    readme = (project / "README.md").read_text()
    assert readme.startswith("# my-rooms\n")
    assert ".venv/bin/python app.py" in readme and ".venv/bin/python -m pytest" in readme
    assert (project / "app.py").read_bytes() == (TEMPLATE_DIR / "minimal/app.py").read_bytes()
    out = capsys.readouterr().out
    assert "from the 'minimal' template" in out and "cd '" in out  # the path is quoted
    # From a checkout, the next steps install this partydeco beside the project.
    assert f"pip install -e {ROOT} -e '.[test]'" in out


def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "rooms"
    create_project(project, "counter")
    (project / "app.py").write_text("# mine\n")
    (project / "tests" / "test_app.py").unlink()
    before = snapshot(project)
    with pytest.raises(SystemExit) as refused:
        main(["new", str(project), "--template", "chat"])
    message = str(refused.value.code)
    assert message.startswith("partydeco new: ")
    assert "app.py" in message and "README.md" in message and "nothing was written" in message
    assert snapshot(project) == before  # not even the missing test file, nor static/


def test_one_clashing_file_stops_everything(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my notes\n")
    with pytest.raises(ProjectExistsError) as refused:
        create_project(tmp_path, "minimal")
    assert [str(p) for p in refused.value.paths] == ["README.md"]
    assert isinstance(refused.value, FileExistsError)
    assert snapshot(tmp_path) == {"README.md": b"my notes\n"}


def test_a_file_where_a_folder_goes_is_a_clash(tmp_path: Path) -> None:
    (tmp_path / "tests").write_text("not a folder\n")
    with pytest.raises(ProjectExistsError) as refused:
        create_project(tmp_path, "jwks")
    assert [str(p) for p in refused.value.paths] == ["tests"]
    assert snapshot(tmp_path) == {"tests": b"not a folder\n"}


def test_an_existing_folder_without_clashes_is_fine(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    written = create_project(tmp_path, "minimal")
    assert (tmp_path / "app.py") in written
    assert (tmp_path / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


def test_a_file_as_the_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ScaffoldError, match="exists and is not a directory"):
        create_project(target)
    assert target.read_text() == "x"


def test_an_unknown_template_names_the_choices(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "partydeco", "new", str(tmp_path / "p"), "-t", "collab"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "partydeco new: unknown template 'collab'; choose one of: chat, counter, jwks, minimal"
    )
    assert not (tmp_path / "p").exists()
    with pytest.raises(UnknownTemplateError) as unknown:
        render("nope", "x")
    assert isinstance(unknown.value, ValueError)
    assert unknown.value.choices == ("chat", "counter", "jwks", "minimal")


def test_new_needs_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["new"])
    assert usage.value.code == 2
    assert "give the project's directory, or --list" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("folder", "name"),
    [("My Rooms!", "my-rooms"), ("rooms_v2", "rooms-v2"), ("___", "partydeco-app")],
)
def test_project_name_is_a_valid_distribution_name(folder: str, name: str) -> None:
    assert project_name(Path("/somewhere") / folder) == name


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_hypercorn_toml_is_the_one_partydeco_ships(template: str) -> None:
    # tests/server/test_deploy_config.py checks that file against partydeco's own settings.
    shipped = (ROOT / "partydeco" / "hypercorn.toml").read_bytes()
    assert render(template, "p")[PurePosixPath("hypercorn.toml")] == shipped


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_the_dockerfile_runs_the_documented_command(template: str) -> None:
    files = {str(k): v.decode() for k, v in render(template, "p").items()}
    dockerfile = files["Dockerfile"].splitlines()
    command = 'CMD ["hypercorn", "-c", "hypercorn.toml", "--bind", "0.0.0.0:8000", "app:party"]'
    assert command in dockerfile
    assert "EXPOSE 8000" in dockerfile
    assert "hypercorn -c hypercorn.toml app:party" in files["README.md"]
    assert ".env" in files[".dockerignore"].splitlines()  # secrets stay out of the image
    copied = [line.split()[1] for line in dockerfile if line.startswith("COPY ")]
    assert copied == ["pyproject.toml", "."]


def test_the_vendored_partysocket_is_the_npm_build() -> None:
    vendored = TEMPLATE_DIR / "chat" / "static" / "vendor" / "partysocket"
    example = ROOT / "examples" / "chat" / "static" / "vendor" / "partysocket"
    ensure_node_modules()
    dist = JS_DIR / "node_modules" / "partysocket"
    for name in ("index.js", "ws.js"):
        assert (vendored / name).read_bytes() == (dist / "dist" / name).read_bytes()
        assert (vendored / name).read_bytes() == (example / name).read_bytes()
    assert (vendored / "LICENSE.txt").read_bytes() == (example / "LICENSE.txt").read_bytes()


def test_the_wheel_ships_every_template_file(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-c",
         "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = tmp_path / built.stdout.strip().splitlines()[-1]
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if "/templates/" in n}
    tracked = subprocess.run(
        ["git", "ls-files", "partydeco/templates"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert shipped == set(tracked) - {"partydeco/templates/ruff.toml"}  # not its lint settings
    assert "partydeco/templates/minimal/app.py" in shipped
