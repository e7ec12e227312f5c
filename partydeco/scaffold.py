"""``partydeco new``: write a small, complete project from one of the shipped templates.

Templates are package data under ``partydeco/templates/``: a folder per template, and
``_project/`` with the files every project shares (``pyproject.toml``, ``Dockerfile``, ignore
files); a file of the template wins over a shared one of the same name. Every project also
gets ``hypercorn.toml``, a copy of the ``partydeco/hypercorn.toml`` partydeco ships.
Files ending in ``.tmpl`` are rendered with :class:`string.Template` and lose the suffix; a
leading ``dot-`` in a name becomes ``.`` (``dot-env.example`` is written as ``.env.example``);
everything else is copied byte for byte, so the templates' Python files are plain modules
that ruff and mypy check where they lie.

Example::

    from partydeco import scaffold

    created = scaffold.create_project("my-rooms", template="counter")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import string
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Final

from .errors import ProjectExistsError, ScaffoldError, UnknownTemplateError

__all__ = [
    "DEFAULT_TEMPLATE",
    "TEMPLATES",
    "ProjectExistsError",
    "ScaffoldError",
    "UnknownTemplateError",
    "create_project",
    "next_steps",
    "project_name",
    "render",
    "template_list",
]

#: Every template, by name, with the line ``partydeco new --list`` shows for it.
TEMPLATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "minimal": "the quickstart: a token checked on connect and request, a greeting, relay",
        "chat": "chat rooms with presence and a browser page using partysocket",
        "jwks": "sign-in with an identity provider's JWTs, checked against its JWKS",
        "counter": "a counter per room in room storage, reset by an alarm when idle",
    }
)

#: The template used when none is named.
DEFAULT_TEMPLATE: Final = "minimal"

_SHARED = "_project"
_SKIPPED = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def project_name(directory: str | os.PathLike[str]) -> str:
    """The distribution name for a project in *directory*: its folder name, normalized
    (lower case, runs of other characters as ``-``), or ``partydeco-app`` if nothing is left."""
    folder = Path(os.path.abspath(directory)).name
    name = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")
    return name or "partydeco-app"


def render(template: str, project: str) -> dict[PurePosixPath, bytes]:
    """The files of *template* for a project called *project*, by relative path.

    Raises:
        UnknownTemplateError: *template* is not one of :data:`TEMPLATES`.
    """
    if template not in TEMPLATES:
        raise UnknownTemplateError(template, sorted(TEMPLATES))
    root = resources.files("partydeco").joinpath("templates")
    values = _values(template, project)
    files: dict[PurePosixPath, bytes] = {}
    for source in (_SHARED, template):
        for relative, entry in _walk(root.joinpath(source), PurePosixPath()):
            data = entry.read_bytes()
            if relative.suffix == ".tmpl":
                relative = relative.with_suffix("")
                data = string.Template(data.decode("utf-8")).substitute(values).encode("utf-8")
            files[relative] = data
    files[PurePosixPath("hypercorn.toml")] = resources.files("partydeco").joinpath(
        "hypercorn.toml"
    ).read_bytes()
    return dict(sorted(files.items()))


def create_project(
    directory: str | os.PathLike[str], template: str = DEFAULT_TEMPLATE
) -> list[Path]:
    """Write the project of *template* into *directory* and return the files written.

    *directory* may exist already, as long as none of the project's files does: existing
    files are never overwritten. If writing fails half-way, what was written is removed.

    Raises:
        UnknownTemplateError: *template* is not one of :data:`TEMPLATES`.
        ProjectExistsError: some of the files (or a file where a folder goes) exist.
        ScaffoldError: *directory* is a file.
        OSError: the files could not be written (nothing is left behind).
    """
    root = Path(directory)
    files = render(template, project_name(root))
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} exists and is not a directory")
    clashes = sorted({p for rel in files for p in _occupied(root, rel)})
    if clashes:
        raise ProjectExistsError(root, clashes)
    made_dirs: list[Path] = []
    written: list[Path] = []
    relative = PurePosixPath()
    try:
        for relative, data in files.items():
            target = root.joinpath(*relative.parts)
            for folder in reversed(target.parents):
                if not folder.exists():
                    folder.mkdir()
                    made_dirs.append(folder)
            with open(target, "xb") as out:  # never replaces a file that appeared meanwhile
                written.append(target)
                out.write(data)
    except BaseException as error:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(made_dirs):
            with contextlib.suppress(OSError):  # something else put a file there meanwhile
                folder.rmdir()
        if isinstance(error, FileExistsError):
            raise ProjectExistsError(root, [relative]) from None
        raise
    return written


def template_list() -> str:
    """The text of ``partydeco new --list``: each template and what it is for."""
    width = max(map(len, TEMPLATES))
    lines = []
    for name, description in TEMPLATES.items():
        default = " (default)" if name == DEFAULT_TEMPLATE else ""
        lines.append(f"{name:<{width}}  {description}{default}")
    return "\n".join(lines)


def next_steps(directory: str | os.PathLike[str], template: str, files: list[Path]) -> str:
    """What ``partydeco new`` prints after creating a project: the files, then how to
    install, run and test it."""
    root = Path(directory)
    checkout = _partydeco_checkout()
    # Not a release from the index: the project installs this partydeco beside it.
    source = f" -e {shlex.quote(str(checkout))}" if checkout else ""
    listed = "\n".join(f"  {path.relative_to(root).as_posix()}" for path in files)
    return (
        f"Created {root} from the {template!r} template:\n{listed}\n\n"
        "Next:\n"
        f"  cd {shlex.quote(str(root))}\n"
        f"  python3 -m venv .venv && .venv/bin/pip install{source} -e '.[test]'\n"
        "  .venv/bin/python -m pytest    # test it\n"
        "  cp .env.example .env          # then set your own values in .env\n"
        "  .venv/bin/python app.py       # run it on http://127.0.0.1:1999\n"
        "README.md says more, deployment included."
    )


def _partydeco_checkout() -> Path | None:
    """The source checkout this partydeco runs from (an editable install), if it does."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _walk(
    folder: Traversable, prefix: PurePosixPath
) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIPPED or entry.name.endswith(".pyc"):
            continue
        name = "." + entry.name[len("dot-") :] if entry.name.startswith("dot-") else entry.name
        if entry.is_dir():
            yield from _walk(entry, prefix / name)
        else:
            yield prefix / name, entry


def _occupied(root: Path, relative: PurePosixPath) -> Iterator[PurePosixPath]:
    """Paths in the way of writing *relative*: the file itself, or a non-folder parent."""
    target = root.joinpath(*relative.parts)
    if target.exists() or target.is_symlink():
        yield relative
    for parent in relative.parents:
        path = root.joinpath(*parent.parts)
        if parent.parts and path.exists() and not path.is_dir():
            yield parent


def _values(template: str, project: str) -> dict[str, str]:
    """What ``.tmpl`` files may use: ``$project``, ``$template``, ``$description`` (a TOML
    string) and ``$partydeco_requirement``."""
    from . import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    below = f"{major}.{minor + 1}" if major == 0 else str(major + 1)  # the next breaking release
    description = TEMPLATES[template][:1].upper() + TEMPLATES[template][1:]
    return {
        "project": project,
        "template": template,
        "description": json.dumps(description),  # a JSON string is a valid TOML string
        "partydeco_requirement": f"partydeco>={__version__},<{below}",
    }
