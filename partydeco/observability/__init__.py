"""Operating a partydeco server: metrics, probes, room inspection, structured logs, traces.

Everything here is off by default and turned on by the app's options or the
environment (see :mod:`.settings` and the operations guide):

- :mod:`.metrics`: Prometheus metrics at ``/metrics`` (the ``metrics`` extra);
- :mod:`.health`: ``/healthz`` and ``/readyz`` for containers and load balancers;
- :mod:`.admin`: the rooms and connections of a server or cluster, behind a secret;
- :mod:`.logs`: one JSON object per log line, with room, connection and principal;
- :mod:`.tracing`: OpenTelemetry spans in the client's trace (the ``otel`` extra).
"""

from .admin import party_token
from .logs import JSONFormatter

__all__ = ["JSONFormatter", "party_token"]
