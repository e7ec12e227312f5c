"""The one base class of every partydeco error."""

from __future__ import annotations

__all__ = ["PartydecoError"]


class PartydecoError(Exception):
    """Base class of every error partydeco raises."""
