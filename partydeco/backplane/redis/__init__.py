"""Scale-out on Redis: every process on one Redis forms one cluster with one owner per room.

Configure it with ``App(redis_url=...)``, the ``PARTYDECO_REDIS_URL`` environment
variable or ``partydeco serve --redis URL``; see :mod:`partydeco.backplane.redis.backplane`.
"""

from __future__ import annotations

from ...closecodes import SERVICE_RESTART
from .backplane import RedisBackplane
from .room import ClusterRoom

__all__ = ["SERVICE_RESTART", "ClusterRoom", "RedisBackplane"]
