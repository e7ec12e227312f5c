"""Scale-out on Redis: every process on one Redis forms one cluster with one owner per room."""

from __future__ import annotations

__all__: list[str] = []
