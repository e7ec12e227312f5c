"""How a document lives in room storage: a snapshot plus a bounded log of updates.

Keys (under the party's prefix, ``"yjs:"`` by default)::

    yjs:meta                      {"v": 1, "epoch": E, "parts": N, "bytes": B, "through": S}
    yjs:snap:<epoch>:<part>       the snapshot (the whole document as one update), in parts
    yjs:log:<seq>:<part>          updates applied after the snapshot, in parts

Numbers are fixed-width hexadecimal, so key order is numeric order. No value is
larger than :data:`PART_BYTES`, below the storage value limit.

Every change of the document gets the next sequence number *synchronously*, in the
document's observer, before anything awaits: the order of sequence numbers is the
order in which changes were applied, whatever runs concurrently. One writer task per
document then writes what is pending, oldest first, several changes merged into one
log entry per write (a group commit). When the log passes ``compact_bytes`` or
``compact_entries``, the writer replaces it with a fresh snapshot taken at that moment:
it covers every sequence number assigned so far (``through``); the snapshot and its
``meta`` are written in one atomic ``put``, then the old snapshot and log are deleted.
Loading reads the snapshot named by ``meta`` and the log entries after ``through``,
so a crash between those two steps loses nothing (the leftovers are deleted later).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pycrdt

from partydeco.storage import MAX_VALUE_BYTES, RoomStorage, StorageClosedError

from .errors import StoredDocumentError

__all__ = ["PART_BYTES", "DocumentStore"]

logger = logging.getLogger("partydeco.yjs")

#: The largest stored part: the storage limit less room for msgpack's header.
PART_BYTES = MAX_VALUE_BYTES - 64
_FORMAT = 1
_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0


class DocumentStore:
    """The persistence of one document: loading, the pending changes and their writer.

    Args:
        storage: the room's storage.
        prefix: the key prefix of the document's entries.
        snapshot: returns the whole document as one update (``doc.get_update()``).
        compact_bytes: log bytes (stored and pending) that trigger a compaction.
        compact_entries: stored log entries that trigger a compaction.
        name: how log messages name the document.
    """

    def __init__(
        self,
        storage: RoomStorage,
        prefix: str,
        snapshot: Callable[[], bytes],
        *,
        compact_bytes: int,
        compact_entries: int,
        name: str,
    ) -> None:
        self._storage = storage
        self._prefix = prefix
        self._snapshot = snapshot
        self._compact_bytes = compact_bytes
        self._compact_entries = compact_entries
        self._name = name
        # (seq, update) applied to the document but not yet stored, oldest first
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._next_seq = 1
        self._epoch = 0
        self.snapshot_bytes = 0
        # stored keys that the next compaction replaces
        self._snapshot_keys: list[str] = []
        self._log_keys: list[str] = []
        self._log_bytes = 0
        self._log_entries = 0
        self._stale: list[str] = []
        self._must_compact = False
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Changes applied to the document but not yet stored."""
        return len(self._pending)

    @property
    def unsaved_bytes(self) -> int:
        """Bytes of the stored log plus the pending changes (what a compaction folds in)."""
        return self._log_bytes + self._pending_bytes

    # -- loading -----------------------------------------------------------------------

    async def load(self) -> list[bytes]:
        """Read the stored document; return its updates (snapshot first) to apply in order.

        Raises:
            StoredDocumentError: the snapshot is incomplete or an entry is not bytes.
        """
        prefix = self._prefix
        rows: dict[str, Any] = await self._storage.list(prefix=prefix)
        meta = rows.pop(prefix + "meta", None)
        through = 0
        updates: list[bytes] = []
        if meta is not None:
            if not isinstance(meta, dict) or meta.get("v") != _FORMAT:
                raise StoredDocumentError(f"{self._name}: unknown stored format {meta!r:.80}")
            self._epoch = int(meta["epoch"])
            through = int(meta["through"])
            snap = f"{prefix}snap:{self._epoch:08x}:"
            self._snapshot_keys = [k for k in rows if k.startswith(snap)]
            if len(self._snapshot_keys) != int(meta["parts"]):
                raise StoredDocumentError(
                    f"{self._name}: the snapshot has {len(self._snapshot_keys)} of "
                    f"{meta['parts']} parts"
                )
            snapshot = _join(self._name, [rows[k] for k in self._snapshot_keys])
            self.snapshot_bytes = len(snapshot)
            updates.append(snapshot)
        last_seq = through
        log: dict[int, list[bytes]] = {}
        for key, value in rows.items():
            if key.startswith(prefix + "log:"):
                seq = int(key[len(prefix) + 4 :].split(":", 1)[0], 16)
                if seq <= through:
                    self._stale.append(key)
                    continue
                log.setdefault(seq, []).append(value)
                self._log_keys.append(key)
                last_seq = max(last_seq, seq)
            elif key not in self._snapshot_keys:
                self._stale.append(key)  # an older snapshot, or a part left by a crash
        for seq in sorted(log):
            update = _join(self._name, log[seq])
            self._log_bytes += len(update)
            self._log_entries += 1
            updates.append(update)
        self._next_seq = last_seq + 1
        return updates

    # -- changes -----------------------------------------------------------------------

    def append(self, update: bytes) -> int:
        """Queue a change that was just applied to the document; return its sequence number.

        Called synchronously from the document's observer, so numbers follow the order in
        which changes were applied. Starts the writer if it is not running.
        """
        seq = self._next_seq
        self._next_seq = seq + 1
        self._pending.append((seq, update))
        self._pending_bytes += len(update)
        self._wake()
        return seq

    def _wake(self) -> None:
        if self._writer is None and not self._closed:
            self._idle.clear()
            self._writer = asyncio.get_running_loop().create_task(
                self._write_all(), name=f"partydeco-yjs-writer {self._name}"
            )

    async def flush(self) -> bool:
        """Wait until the writer is idle; return whether every change is stored
        (``False`` when the storage was closed first)."""
        await self._idle.wait()
        return not self._pending

    def close(self) -> None:
        """Stop writing after the current attempt (the storage is gone)."""
        self._closed = True

    async def _write_all(self) -> None:
        delay = _RETRY_FIRST
        try:
            while (self._pending or self._must_compact) and not self._closed:
                try:
                    if self._must_compact or self._due():
                        await self._compact()
                    else:
                        await self._write_log()
                    delay = _RETRY_FIRST
                except StorageClosedError:
                    logger.error(
                        "%s: storage closed with %d changes not stored", self._name, self.pending
                    )
                    self._closed = True
                except Exception:
                    logger.warning(
                        "%s: could not store %d changes, retrying in %.2fs",
                        self._name, self.pending, delay, exc_info=True,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
        finally:
            self._writer = None
            self._idle.set()

    def _due(self) -> bool:
        return (
            self.unsaved_bytes >= self._compact_bytes
            or self._log_entries >= self._compact_entries
        )

    async def _write_log(self) -> None:
        batch = self._pending[:]
        size = sum(len(update) for _, update in batch)
        updates = [update for _, update in batch]
        merged = updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)
        seq = batch[-1][0]
        entries = {
            f"{self._prefix}log:{seq:012x}:{i:04x}": part
            for i, part in enumerate(_split(merged))
        }
        # The writer orders its own writes and clients keep their updates until synced,
        # so it neither stops the room's events nor holds its frames (see partydeco.gate).
        await self._storage.put(entries, allow_concurrency=True, allow_unconfirmed=True)
        # Changes appended while the put awaited are behind these in the list.
        del self._pending[: len(batch)]
        self._pending_bytes -= size
        self._log_keys.extend(entries)
        self._log_bytes += len(merged)
        self._log_entries += 1

    async def _compact(self) -> None:
        self._must_compact = True
        snapshot = self._snapshot()
        through = self._next_seq - 1  # every change so far is in the snapshot
        covered = len(self._pending)
        covered_bytes = self._pending_bytes
        epoch = self._epoch + 1
        parts = _split(snapshot)
        keys = [f"{self._prefix}snap:{epoch:08x}:{i:04x}" for i in range(len(parts))]
        entries: dict[str, Any] = dict(zip(keys, parts, strict=True))
        entries[self._prefix + "meta"] = {
            "v": _FORMAT, "epoch": epoch, "parts": len(parts), "bytes": len(snapshot),
            "through": through,
        }  # fmt: skip
        await self._storage.put(entries, allow_concurrency=True, allow_unconfirmed=True)
        del self._pending[:covered]
        self._pending_bytes -= covered_bytes
        stale = self._stale + self._snapshot_keys + self._log_keys
        self._epoch = epoch
        self.snapshot_bytes = len(snapshot)
        self._snapshot_keys = keys
        self._log_keys = []
        self._log_bytes = 0
        self._log_entries = 0
        self._stale = []
        self._must_compact = False
        if stale:
            try:
                await self._storage.delete(
                    stale, allow_concurrency=True, allow_unconfirmed=True
                )
            except Exception:  # harmless: loading skips them; the next compaction retries
                logger.warning("%s: could not delete %d replaced entries", self._name, len(stale))
                self._stale = stale


def _split(data: bytes) -> list[bytes]:
    if len(data) <= PART_BYTES:
        return [data]
    return [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]


def _join(name: str, parts: list[Any]) -> bytes:
    if not all(isinstance(part, bytes) for part in parts):
        raise StoredDocumentError(f"{name}: a stored entry is not bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)

