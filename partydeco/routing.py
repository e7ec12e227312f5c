"""Mapping URLs to parties and rooms, the way PartyKit does.

``/parties/<party>/<room>[/<rest>]`` addresses room ``<room>`` of party ``<party>``;
``/party/<room>[/<rest>]`` is the same for the ``main`` party. The room id is the
raw (still percent-encoded) path segment, as PartyKit and its clients use it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["MAIN", "PARTY_NAME", "Route", "match"]

MAIN = "main"
PARTY_NAME = re.compile(r"^[a-z0-9_-]+$")


class Route(NamedTuple):
    """Where a URL points: a party, a room of it, and the rest of the path."""

    party: str
    room: str
    rest: str


def match(raw_path: str) -> Route | None:
    """Return the :class:`Route` of a raw URL path, or ``None`` for a non-party path."""
    if raw_path.startswith("/parties/"):
        party, _, tail = raw_path[9:].partition("/")
        if not party:
            return None
    elif raw_path.startswith("/party/"):
        party, tail = MAIN, raw_path[7:]
    else:
        return None
    room, slash, rest = tail.partition("/")
    if not room:
        return None
    return Route(party, room, slash + rest)
