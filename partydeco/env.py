"""The environment a room sees: the process environment merged with a ``.env`` file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["load_env", "parse_dotenv"]


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse the text of a ``.env`` file.

    Understands ``KEY=value``, an optional leading ``export``, blank lines, ``#``
    comments, and single- or double-quoted values (double quotes honour ``\\n``).
    Lines that are not assignments are ignored.
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_env(directory: str | os.PathLike[str] | None = None) -> Mapping[str, str]:
    """Return the process environment merged over the ``.env`` file in *directory*.

    Variables set in the real environment win over the file, as with most
    dotenv loaders, so a deployment can override what a checkout ships.
    """
    path = Path(directory or os.getcwd()) / ".env"
    merged: dict[str, str] = {}
    try:
        merged.update(parse_dotenv(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        pass
    merged.update(os.environ)
    return merged
