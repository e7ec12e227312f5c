"""A view of this interpreter's site-packages without one package, for tests of what
happens when an optional package is not installed."""

from __future__ import annotations

import site
import sys
from pathlib import Path

__all__ = ["site_without"]


def site_without(package: str, folder: Path) -> Path:
    """A copy of site-packages under *folder*, made of symlinks to everything but
    *package* (and its metadata): run ``python -S`` with it on ``PYTHONPATH`` and the
    package is as absent as if it had never been installed."""
    (site_packages,) = [Path(p) for p in site.getsitepackages() if p.startswith(sys.prefix)]
    view = folder / "site-packages"
    view.mkdir()
    for entry in site_packages.iterdir():
        if entry.name.split("-")[0].lower() != package and entry.name != f"{package}.py":
            (view / entry.name).symlink_to(entry)
    return view
