"""Collaborative documents: Yjs rooms that y-partykit and y-websocket clients sync with.

``YjsParty("docs")`` is a party whose every room holds one Yjs document (a
``pycrdt.Doc``), kept in room storage and synced with the npm
``y-partykit/provider`` or ``y-websocket`` clients at ``/parties/docs/<room>``::

    from partydeco import yjs

    docs = yjs.YjsParty("docs")

    @docs.read_only
    def viewers(connection, ctx):
        return ctx.request.headers.get("X-Role") != "editor"

Needs the ``yjs`` extra: ``pip install 'partydeco[yjs]'`` (pycrdt).
"""

from __future__ import annotations

try:
    import pycrdt as _pycrdt  # noqa: F401 - fail here, with the fix, when it is missing
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "partydeco.yjs needs pycrdt: pip install 'partydeco[yjs]'"
    ) from exc

from .document import ChangeHandler, Document
from .errors import DocumentNotLoadedError, ProtocolError, StoredDocumentError, YjsError
from .party import ReadOnlyCheck, YjsParty

__all__ = [
    "ChangeHandler",
    "Document",
    "DocumentNotLoadedError",
    "ProtocolError",
    "ReadOnlyCheck",
    "StoredDocumentError",
    "YjsError",
    "YjsParty",
]
