"""Who is in a room: each connection's user, kept in its state and announced to the room.

Hand-rolled and kept apart from the chat on purpose: it is all the presence this app
needs, and it is easy to swap for something else later. The room announces
``{"type": "presence", "users": [...]}`` (sorted, each user once) whenever someone
joins or leaves.
"""

from __future__ import annotations

from partydeco import Connection, Room


def users(room: Room, leaving: Connection | None = None) -> list[str]:
    """The users with an open connection in *room*, sorted, each once."""
    return sorted(
        {
            connection.state["user"]
            for connection in room.get_connections()
            if connection.state and (leaving is None or connection.id != leaving.id)
        }
    )


def join(connection: Connection, user: str) -> None:
    """Record *connection* as *user*'s and tell the whole room, the newcomer included."""
    connection.set_state({"user": user})
    connection.room.broadcast({"type": "presence", "users": users(connection.room)})


def leave(connection: Connection) -> None:
    """Tell the rest of the room that *connection* has gone."""
    room = connection.room
    room.broadcast(
        {"type": "presence", "users": users(room, leaving=connection)},
        without=[connection.id],
    )
