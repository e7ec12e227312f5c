"""What the tests share: waiting for conditions, real servers, Redis, key and client kits.

The helpers most tests need are importable from here; the kits (``authkit``,
``auth_cases``, ``security_kit``, ``js_driver``, ``client_server``, ``redis_server``)
and the apps run as processes (``party_app``, ``cluster_app``) are modules of this
package.
"""

from tests.support.servers import ROOT, Process, free_port, serve, start_process
from tests.support.waiting import eventually

__all__ = ["ROOT", "Process", "eventually", "free_port", "serve", "start_process"]
