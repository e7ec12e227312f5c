"""Awareness: the ephemeral per-client state (cursors, names, colours) of one document.

An awareness update is a varuint count, then for each client its id, a clock and its
state as JSON text (``null`` when the client left). A state replaces the stored one
when its clock is newer; a ``null`` with the same clock removes it (y-protocols' rule).
The server keeps the states, relays every accepted change to the other connections,
and removes the states a connection introduced when it closes.

Memory is bounded: a state is at most ``max_state_bytes`` of JSON, a connection
introduces at most ``max_clients`` client ids, and the clocks of removed clients are
remembered for the newest ``MAX_TOMBSTONES`` only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import msgspec

from partydeco import closecodes

from .errors import ProtocolError
from .protocol import Reader, write_bytes, write_uint

__all__ = ["MAX_TOMBSTONES", "OUTDATED_SECONDS", "Awareness"]

#: Removed clients whose clock is remembered, so a late copy of an old state cannot
#: bring them back.
MAX_TOMBSTONES = 1024
#: y-protocols clients renew their state every 15 s and drop peers silent for 30 s;
#: a newcomer is not sent states older than this.
OUTDATED_SECONDS = 30.0

_NULL = b"null"
_json = msgspec.json.Decoder()


class _Entry:
    __slots__ = ("clock", "owner", "state", "updated")

    def __init__(self, clock: int, state: bytes, owner: Hashable, updated: float) -> None:
        self.clock = clock
        self.state = state
        self.owner = owner
        self.updated = updated


class Awareness:
    """The awareness states of one document.

    Args:
        max_state_bytes: the largest state (JSON text) a client may set.
        max_clients: how many client ids one connection may introduce.
    """

    __slots__ = ("_owned", "_states", "_tombstones", "max_clients", "max_state_bytes")

    def __init__(self, *, max_state_bytes: int, max_clients: int) -> None:
        self.max_state_bytes = max_state_bytes
        self.max_clients = max_clients
        # client id -> its live state; who introduced it (a connection) is the owner
        self._states: dict[int, _Entry] = {}
        # owner -> the client ids it introduced, removed when the owner closes
        self._owned: dict[Hashable, set[int]] = {}
        # client id -> clock of its removal, newest last
        self._tombstones: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def states(self) -> dict[int, Any]:
        """The live states by client id, decoded from JSON."""
        return {client: _json.decode(entry.state) for client, entry in self._states.items()}

    def apply(self, payload: bytes, owner: Hashable) -> bytes | None:
        """Apply an awareness update sent by *owner*; return the update to relay.

        Only the entries that changed something are relayed (``None`` when none did).

        Raises:
            ProtocolError: the update is malformed or its state is not JSON (1007), a
                state is too large (1009), or *owner* introduced too many clients (1008).
        """
        reader = Reader(payload)
        count = reader.uint()
        if count * 3 > len(payload):  # each entry takes at least three bytes
            raise ProtocolError("truncated awareness update")
        now = time.monotonic()
        changed: list[tuple[int, int, bytes]] = []
        for _ in range(count):
            client = reader.uint()
            clock = reader.uint()
            state = reader.bytes()
            if len(state) > self.max_state_bytes:
                raise ProtocolError(
                    f"awareness state over {self.max_state_bytes} bytes", closecodes.MESSAGE_TOO_BIG
                )
            removal = state == _NULL
            if not removal:
                try:
                    removal = _json.decode(state) is None
                except msgspec.DecodeError:
                    raise ProtocolError("awareness state is not JSON") from None
            if self._accept(client, clock, removal, state, owner, now):
                changed.append((client, clock, _NULL if removal else state))
        return encode(changed) if changed else None

    def _accept(
        self, client: int, clock: int, removal: bool, state: bytes, owner: Hashable, now: float
    ) -> bool:
        entry = self._states.get(client)
        current = entry.clock if entry is not None else self._tombstones.get(client, 0)
        if not (current < clock or (current == clock and removal and entry is not None)):
            return False
        if removal:
            if entry is None:  # a client we never saw left: remember, nothing to relay
                self._remember(client, clock)
                return False
            self._forget(client, entry)
            self._remember(client, clock)
            return True
        if entry is not None:
            entry.clock, entry.state, entry.updated = clock, state, now
            return True
        owned = self._owned.setdefault(owner, set())
        if len(owned) >= self.max_clients:
            raise ProtocolError(
                f"more than {self.max_clients} awareness clients on one connection",
                closecodes.POLICY_VIOLATION,
            )
        owned.add(client)
        self._tombstones.pop(client, None)
        self._states[client] = _Entry(clock, state, owner, now)
        return True

    def drop(self, owner: Hashable) -> bytes | None:
        """Remove the states *owner* introduced; return the update announcing it."""
        removed: list[tuple[int, int, bytes]] = []
        for client in self._owned.pop(owner, ()):
            entry = self._states.pop(client, None)
            if entry is not None:
                self._remember(client, entry.clock + 1)
                removed.append((client, entry.clock + 1, _NULL))
        return encode(removed) if removed else None

    def encode_all(self) -> bytes | None:
        """Every state renewed within :data:`OUTDATED_SECONDS`, for a newcomer."""
        since = time.monotonic() - OUTDATED_SECONDS
        live = [(c, e.clock, e.state) for c, e in self._states.items() if e.updated >= since]
        return encode(live) if live else None

    def _forget(self, client: int, entry: _Entry) -> None:
        del self._states[client]
        owned = self._owned.get(entry.owner)
        if owned is not None:
            owned.discard(client)
            if not owned:
                del self._owned[entry.owner]

    def _remember(self, client: int, clock: int) -> None:
        self._tombstones[client] = clock
        self._tombstones.move_to_end(client)
        if len(self._tombstones) > MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)


def encode(entries: list[tuple[int, int, bytes]]) -> bytes:
    """Encode ``(client, clock, state JSON)`` entries as an awareness update."""
    out = bytearray()
    write_uint(out, len(entries))
    for client, clock, state in entries:
        write_uint(out, client)
        write_uint(out, clock)
        write_bytes(out, state)
    return bytes(out)
