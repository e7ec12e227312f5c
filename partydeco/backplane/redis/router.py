"""Where each event from another process goes: a link, a remote socket, a room, a call.

The backplane's listener hands every event it decodes to :func:`route`, in the
order they were published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...closecodes import INTERNAL_ERROR
from .inspect import answer_inspection
from .wire import (
    Accept,
    AlarmCall,
    Close,
    Deny,
    Event,
    Fanout,
    HttpCall,
    Inspect,
    Message,
    Moved,
    Open,
    Reply,
    Shut,
)

if TYPE_CHECKING:
    from .backplane import RedisBackplane
    from .sockets import Link

__all__ = ["route"]


def route(cluster: RedisBackplane, event: Event) -> None:
    """Deliver one *event* from another process."""
    if isinstance(event, Fanout):
        links = cluster.links
        for sock in event.socks:
            link = links.get(sock)
            if link is not None:
                link.conn.sink.put(event.frame)
    elif isinstance(event, Message | Close):
        remote = cluster.remotes.get(event.sock)
        if remote is not None:
            remote.push(event)
    elif isinstance(event, Open):
        if event.party not in cluster.dispatch:
            cluster.deny(event.edge, event.sock, 404, "")
            return
        cluster.cluster_room(event.party, event.room).add_remote(event)
    elif isinstance(event, Accept):
        link = cluster.links.get(event.sock)
        if link is not None and not link.accepted.done():
            link.accepted.set_result(0)
    elif isinstance(event, Shut):
        link = cluster.links.get(event.sock)
        if link is not None:
            link.conn.sink.close(event.code, event.reason)
    elif isinstance(event, Reply):
        cluster.answered(event)
    elif isinstance(event, HttpCall | AlarmCall):
        if event.party not in cluster.dispatch:
            cluster.reply(event.edge, Reply(event.call, 404, [], b"Not Found"))
            return
        cluster.spawn(cluster.cluster_room(event.party, event.room).answer(event))
    elif isinstance(event, Deny):
        _denied(cluster, event)
    elif isinstance(event, Moved):
        link = cluster.links.get(event.sock)
        if link is not None:
            _rehome(cluster, link)
    elif isinstance(event, Inspect):
        cluster.reply(event.edge, answer_inspection(cluster, event))


def _rehome(cluster: RedisBackplane, link: Link) -> None:
    room = link.conn.room
    cluster.spawn(cluster.cluster_room(room.party, room.id).rehome())


def _denied(cluster: RedisBackplane, event: Deny) -> None:
    link = cluster.links.get(event.sock)
    if link is None:
        return
    if not link.accepted.done():
        link.accepted.set_result(-1 if event.status == 0 else event.status)
    elif event.status == 0:  # a re-attach reached a process that is not the owner
        _rehome(cluster, link)
    else:
        link.dead = True
        link.conn.sink.close(INTERNAL_ERROR, "room failed to start")
