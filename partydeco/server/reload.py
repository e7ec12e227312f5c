"""The dev reloader: run the app in a child process, restart it when its files change.

The supervisor never imports the app, so an edit that breaks it does not stop the
reloader: the child fails, and the next change starts it again. Changes are
watched with watchfiles (the ``dev`` extra), through the operating system's
notifications (inotify, FSEvents, ...): while nothing changes, the supervisor
costs next to nothing. What is watched is the app's own files: every ``.py`` file
and ``.env`` under the project's folders, leaving out virtual environments,
``node_modules``, caches and hidden folders. Those are recognised by their name
below the watched folder, never by the folders above it, so a project under
``~/.hidden/`` or ``~/venv/`` reloads like any other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ..blocking import DEV_ENV_VAR
from ..extras import require

__all__ = ["IGNORED_NAMES", "RELOADER_ENV", "is_ignored", "supervise", "watched_dirs"]

#: Set (to ``1``) in the environment of the child the reloader runs.
RELOADER_ENV = "PARTYDECO_RELOADER_CHILD"

#: Folders never watched, by name (besides every folder whose name starts with ``.``
#: and every virtual environment, recognised by its ``pyvenv.cfg``).
IGNORED_NAMES = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})

#: Files whose change restarts the app, besides ``*.py``.
WATCHED_NAMES = frozenset({".env"})


def is_ignored(directory: Path) -> bool:
    """Whether *directory* (a folder below a watched root) is left out, by its name alone
    or because it is a virtual environment."""
    name = directory.name
    return (
        name.startswith(".")
        or name in IGNORED_NAMES
        or name.endswith(".egg-info")
        or (directory / "pyvenv.cfg").is_file()
    )


def watched_dirs(roots: Iterable[Path]) -> list[Path]:
    """Every folder to watch: the *roots* and the folders below them that are not
    :func:`is_ignored` (nor below one). The roots themselves are always watched."""
    found: dict[Path, None] = {}
    for root in roots:
        for current, subdirs, _files in os.walk(root):
            here = Path(current)
            subdirs[:] = sorted(d for d in subdirs if not is_ignored(here / d))
            found[here] = None
    return list(found)


def supervise(argv: Sequence[str], roots: Iterable[Path] | None = None) -> None:
    """Run *argv* as a child and restart it whenever the app's files under *roots* change.

    The child runs with ``PARTYDECO_RELOADER_CHILD=1`` and ``PARTYDECO_DEV=1`` (dev
    mode: handlers that block the event loop are reported). A child that exits by
    itself (a syntax error, a port in use) is started again after the next change.
    SIGINT or SIGTERM stops the child (gracefully), then the supervisor; a second one
    is passed on, so the child exits at once. The child has its own process group: a
    terminal's Ctrl+C reaches it through the supervisor only, once.

    Args:
        argv: the child's command line.
        roots: the folders to watch; the working directory by default.

    Raises:
        MissingExtraError: watchfiles is not installed (the ``dev`` extra).
    """
    watchfiles = _watchfiles()
    folders = [Path(root).resolve() for root in roots or [Path.cwd()]]
    env = {**os.environ, RELOADER_ENV: "1", DEV_ENV_VAR: "1"}
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def on_signal(_signum: int, _frame: Any) -> None:
        if stop.is_set() and child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # a second signal: the child exits at once
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.is_set():
        child = subprocess.Popen(list(argv), env=env, process_group=0)
        dirs = watched_dirs(folders)
        changed = _wait(watchfiles, dirs, _ChildOrStop(child, stop))
        if child.poll() is None:
            _stop(child)
        elif not changed and not stop.is_set():
            print(
                f"partydeco: the app exited with code {child.returncode}; "
                "waiting for a change to restart it",
                file=sys.stderr,
            )
            changed = _wait(watchfiles, dirs, stop)
        if changed and not stop.is_set():
            print(f"partydeco: {changed} changed, restarting", file=sys.stderr)


class _ChildOrStop:
    """Set when the supervisor is told to stop or the child has exited (watchfiles polls
    it between waits)."""

    def __init__(self, child: subprocess.Popen[bytes], stop: threading.Event) -> None:
        self.child = child
        self.stop = stop

    def is_set(self) -> bool:
        return self.stop.is_set() or self.child.poll() is not None


def _wait(watchfiles: ModuleType, dirs: Sequence[Path], until: Any) -> str | None:
    """Block until an app file in *dirs* changes (its path, relative if it can be) or
    *until* is set (``None``)."""

    def relevant(_change: Any, path: str) -> bool:
        target = Path(path)
        if target.suffix == ".py" or target.name in WATCHED_NAMES:
            return True
        # a new package folder: restarting watches it too
        return target.parent in watching and target.is_dir() and not is_ignored(target)

    watching = frozenset(dirs)
    for changes in watchfiles.watch(
        *dirs, watch_filter=relevant, recursive=False, stop_event=until, raise_interrupt=False
    ):
        path: str = sorted(path for _change, path in changes)[0]
        try:
            return os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return path
    return None


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _watchfiles() -> ModuleType:
    return require("watchfiles", "reloading (partydeco dev, run(reload=True))")
