"""The ``partydeco`` command: ``serve`` an app, run it in ``dev`` mode with reload,
start a ``new`` project from a template, or list a running server's ``rooms``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from . import scaffold
from .app import App, default_app
from .errors import MissingExtraError
from .observability import admin_cli
from .party import Party
from .server.reload import RELOADER_ENV, supervise
from .server.run import SERVERS

__all__ = ["load_app", "main"]


def load_app(target: str) -> App:
    """Import the app named by *target*: ``module:attr``, ``module``, or ``path/to/app.py``.

    Without an attribute the module's ``party`` or ``app`` is used, else the
    default app its decorators registered on.

    Raises:
        SystemExit: the target cannot be imported or names no app.
    """
    module_name, _, attr = target.partition(":")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name).resolve()
            if not path.is_file():
                raise SystemExit(f"partydeco: no such file: {module_name}")
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"partydeco: cannot import {module_name!r}: {exc}") from None
    if attr:
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise SystemExit(f"partydeco: {module_name!r} has no attribute {attr!r}") from None
    else:
        obj = getattr(module, "party", None) or getattr(module, "app", None) or default_app()
    if isinstance(obj, Party):
        return obj.app
    if isinstance(obj, App):
        return obj
    raise SystemExit(f"partydeco: {target!r} is {type(obj).__name__}, not a partydeco app or party")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``partydeco`` console script."""
    parser = argparse.ArgumentParser(prog="partydeco", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "serve an app with Hypercorn, or Uvicorn (--server uvicorn)"),
        ("dev", "serve an app and restart it when one of its files changes"),
    ):
        cmd = commands.add_parser(name, help=help_text)
        cmd.add_argument("target", help="module:party, module, or path/to/app.py")
        cmd.add_argument("--host", help="address to bind ($HOST, else 127.0.0.1)")
        cmd.add_argument("--port", type=int, help="port to bind ($PORT, else 1999)")
        cmd.add_argument(
            "--redis", metavar="URL", help="Redis URL: run as one cluster ($PARTYDECO_REDIS_URL)"
        )
        if name == "serve":
            cmd.add_argument("--workers", type=int, default=1, help="worker processes (1)")
            cmd.add_argument("--reload", action="store_true", help="restart on code changes")
        cmd.add_argument(
            "--server", choices=SERVERS,
            help="hypercorn (default) or uvicorn, the fast lane ($PARTYDECO_SERVER)",
        )  # fmt: skip
    new = commands.add_parser("new", help="create a project from a template")
    new.add_argument("directory", nargs="?", help="the project's folder (no file is overwritten)")
    new.add_argument(
        "-t", "--template", default=scaffold.DEFAULT_TEMPLATE, metavar="NAME",
        help=f"the template ({scaffold.DEFAULT_TEMPLATE}); --list shows them",
    )  # fmt: skip
    new.add_argument("--list", action="store_true", help="list the templates and exit")
    admin_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "rooms":
        admin_cli.run(args)
        return
    if args.command == "new":
        if not args.list and args.directory is None:
            new.error("give the project's directory, or --list")
        _new(args.directory, args.template, args.list)
        return
    if args.redis:
        # Through the environment, so reloaded children and forked workers see it too.
        os.environ["PARTYDECO_REDIS_URL"] = args.redis
    if (args.command == "dev" or args.reload) and os.environ.get(RELOADER_ENV) != "1":
        # The supervisor never imports the app: a broken edit must not stop it.
        child = [sys.executable, "-m", "partydeco", "serve", args.target]
        if args.host:
            child += ["--host", args.host]
        if args.port:
            child += ["--port", str(args.port)]
        if args.server:
            child += ["--server", args.server]
        try:
            supervise(child, _watch_roots(args.target))
        except MissingExtraError as error:
            raise SystemExit(f"partydeco: {error}") from None
        return
    app = load_app(args.target)
    try:
        app.run(
            host=args.host, port=args.port, server=args.server,
            workers=getattr(args, "workers", 1),
        )  # fmt: skip
    except MissingExtraError as error:
        raise SystemExit(f"partydeco: {error}") from None


def _watch_roots(target: str) -> list[Path]:
    """The working directory, and the folder of a target file when it is elsewhere."""
    roots = [Path.cwd()]
    module = target.partition(":")[0]
    if module.endswith(".py") or os.sep in module:
        folder = Path(module).resolve().parent
        if not folder.is_relative_to(roots[0]):
            roots.append(folder)
    return roots


def _new(directory: str | None, template: str, list_only: bool) -> None:
    if list_only:
        print(scaffold.template_list())
        return
    assert directory is not None
    try:
        files = scaffold.create_project(directory, template)
    except (scaffold.ScaffoldError, OSError) as error:
        raise SystemExit(f"partydeco new: {error}") from None
    print(scaffold.next_steps(directory, template, files))


if __name__ == "__main__":  # pragma: no cover
    main()
