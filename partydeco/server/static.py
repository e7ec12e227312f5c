"""Static assets: files of a folder served at the app's non-party URLs.

Only ``GET`` and ``HEAD`` are served. A URL path is percent-decoded, split into
segments and looked up under the folder; anything that could leave the folder
(``..``, backslashes, NUL, absolute or drive paths, symlinks pointing outside) is
refused, and so are hidden names (``.env``, ``.git``; ``.well-known`` is
allowed). A refusal looks like a missing file: the request falls through to the app's
other routes and then 404.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import MutableMapping
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from ..types import Send

__all__ = ["StaticFiles"]


CHUNK = 64 * 1024

# Types mimetypes may not know everywhere, or gets wrong on some systems.
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".map": "application/json",
    ".txt": "text/plain",
}


def content_type(path: Path) -> str:
    """The ``Content-Type`` for a file name; text types carry ``charset=utf-8``."""
    kind = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if kind is None:
        return "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
        return f"{kind}; charset=utf-8"
    return kind


class StaticFiles:
    """One folder of assets.

    Args:
        directory: the folder; it must exist when the app starts serving.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"StaticFiles({str(self.directory)!r})"

    def resolve(self, url_path: str) -> Path | None:
        """The file a raw (percent-encoded) URL path names, or ``None``.

        ``None`` when the file is missing, hidden (a segment starting with ``.``,
        except ``.well-known``) or outside the folder.
        """
        root = self.directory.resolve()
        decoded = unquote(url_path, errors="strict") if "%" in url_path else url_path
        if "\x00" in decoded or "\\" in decoded:
            return None
        parts = [p for p in decoded.split("/") if p]
        for part in parts:
            if part.startswith(".") and part != ".well-known":  # "..", ".env", ".git"
                return None
            if len(part) > 1 and part[1] == ":":  # a Windows drive
                return None
        candidate = root.joinpath(*parts)
        if decoded.endswith("/") or not parts:
            candidate = candidate / "index.html"
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if resolved.is_dir():
            resolved = resolved / "index.html"
            if not resolved.is_file():
                return None
        if not resolved.is_relative_to(root) or not resolved.is_file():
            return None
        return resolved

    async def serve(self, scope: MutableMapping[str, Any], send: Send) -> bool:
        """Answer a ``GET``/``HEAD`` for an existing asset; ``False`` if there is none."""
        if scope.get("method") not in ("GET", "HEAD"):
            return False
        raw = scope.get("raw_path")
        url_path = raw.decode("latin-1") if raw else quote(scope["path"])
        try:
            path = self.resolve(url_path)
        except UnicodeDecodeError:
            return False
        if path is None:
            return False
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except OSError:
            return False
        try:
            size = os.fstat(handle.fileno()).st_size
            mtime = os.fstat(handle.fileno()).st_mtime
            headers = [
                (b"content-type", content_type(path).encode("latin-1")),
                (b"content-length", str(size).encode()),
                (b"last-modified", formatdate(mtime, usegmt=True).encode()),
                (b"x-content-type-options", b"nosniff"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return True
            while True:
                chunk = await asyncio.to_thread(handle.read, CHUNK)
                more = len(chunk) == CHUNK
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    return True
        finally:
            handle.close()
