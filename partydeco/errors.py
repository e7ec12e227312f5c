"""The one exception base class of partydeco."""

from __future__ import annotations

__all__ = ["PartydecoError"]


class PartydecoError(Exception):
    """Base class of every error partydeco raises on purpose."""
