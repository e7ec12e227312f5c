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

from partydeco.extras import missing

try:  # fail here, naming the extra, when pycrdt is missing
    import pycrdt as _pycrdt  # noqa: F401
except ModuleNotFoundError as error:
    raise missing(error, "partydeco.yjs") from None

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
