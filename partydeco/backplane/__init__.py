"""Where rooms live: this process, or every process sharing one Redis.

:mod:`~partydeco.backplane.base` names the seams (:class:`Backplane`,
:class:`RoomHandle`, :class:`Sink`); :mod:`~partydeco.backplane.local` keeps every
room in this process; :mod:`partydeco.backplane.redis` spreads rooms over a
cluster with one owner per room.
"""

from .base import Backplane, RoomHandle, Sink
from .local import LocalBackplane

__all__ = ["Backplane", "LocalBackplane", "RoomHandle", "Sink"]
