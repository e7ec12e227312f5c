"""Scale-out on Redis: every process on one Redis forms one cluster with one owner per room.

Configure it with ``App(redis_url=...)``, the ``PARTYDECO_REDIS_URL`` environment
variable or ``partydeco serve --redis URL``. The modules, from the outside in:
:mod:`.backplane` (the cluster membership and its Redis connection), :mod:`.router`
(where events from other processes go), :mod:`.room` (a room here or relayed),
:mod:`.sockets` (the two sides of a relayed socket), :mod:`.leases` (room ownership),
:mod:`.relay` (the ordered publisher and the relay sink) and :mod:`.wire` (the events).
"""

from __future__ import annotations

from ...extras import missing

try:
    from .backplane import RedisBackplane
    from .room import ClusterRoom
except ModuleNotFoundError as error:  # the redis package: name the extra that installs it
    raise missing(error, "the Redis backplane (partydeco.backplane.redis)") from None

__all__ = ["ClusterRoom", "RedisBackplane"]
