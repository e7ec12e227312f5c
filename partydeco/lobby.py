"""The lobby: what the ``before_*`` hooks know about the room a request is for."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Lobby"]


class Lobby:
    """What the ``before_*`` hooks know about the room being reached.

    Attributes:
        id: the room id (the raw URL segment).
        party: the party's name.
        env: the process environment merged with ``.env``.
    """

    __slots__ = ("env", "id", "party")

    def __init__(self, id: str, party: str, env: Mapping[str, str]) -> None:
        self.id = id
        self.party = party
        self.env = env

    def __repr__(self) -> str:
        return f"<Lobby {self.party}/{self.id}>"
