"""partydeco's own URLs on the app's port: metrics, the probes and the admin API.

The ASGI entry hands every HTTP request that is not to a party URL to
:meth:`Endpoints.serve` first; a URL that is not one of these (or whose feature
is off) goes on to static assets and Quart. Only ``GET`` and ``HEAD`` are answered.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import msgspec

from ..response import Response
from ..security.limits import header
from ..server.http import send_response
from .settings import ADMIN_PATH, HEALTH_PATH, READY_PATH

if TYPE_CHECKING:
    from ..server.runtime import Runtime
    from ..types import Receive, Scope, Send
    from .admin import AdminAPI
    from .health import Readiness
    from .operations import Operations

__all__ = ["Endpoints"]


class Endpoints:
    """The URLs of the features that are on (see the module).

    Args:
        runtime: the server's runtime.
        ops: the server's operations (settings, metrics).
    """

    def __init__(self, runtime: Runtime, ops: Operations) -> None:
        self._ops = ops
        settings = ops.settings
        self._metrics_path = settings.metrics_path if ops.metrics is not None else None
        self._readiness: Readiness | None = None
        if settings.health:
            from .health import Readiness

            self._readiness = Readiness(runtime, ops)
        self._admin: AdminAPI | None = None
        if settings.admin_token is not None:
            from .admin import AdminAPI

            self._admin = AdminAPI(runtime, settings.admin_token)

    def __repr__(self) -> str:
        return f"<Endpoints metrics={self._metrics_path} admin={self._admin is not None}>"

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if its URL is one of these; ``False`` otherwise."""
        path = scope["path"]
        if path == self._metrics_path:
            answer = self._metrics
        elif self._readiness is not None and path in (HEALTH_PATH, READY_PATH):
            answer = self._health
        elif self._admin is not None and (path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")):
            answer = self._admin.answer
        else:
            return False
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            response = Response("Method Not Allowed", 405, headers={"Allow": "GET, HEAD"})
        else:
            response = await answer(scope)
        response.headers["Cache-Control"] = "no-store"
        await send_response(send, response, head=method == "HEAD")
        return True

    async def _metrics(self, scope: Scope) -> Response:
        token = self._ops.settings.metrics_token
        if token is not None:
            value = header(scope, b"authorization") or ""
            expected = f"Bearer {token}"
            if not hmac.compare_digest(value.strip().encode(), expected.encode()):
                return Response(
                    "Unauthorized", 401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
                )
        assert self._ops.metrics is not None
        body, content_type = self._ops.metrics.exposition()
        return Response(body, 200, content_type=content_type)

    async def _health(self, scope: Scope) -> Response:
        if scope["path"] == HEALTH_PATH:
            return Response(b'{"status":"ok"}', 200, content_type="application/json")
        assert self._readiness is not None
        ready, checks = await self._readiness.check()
        body = msgspec.json.encode({"status": "ok" if ready else "unavailable", "checks": checks})
        return Response(body, 200 if ready else 503, content_type="application/json")
