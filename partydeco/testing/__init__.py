"""Test a partydeco app: in-process with :class:`TestClient`, or on a real server.

:class:`TestClient` calls the app's ASGI callable directly: no server and no
network, so a test is fast and deterministic, and whatever the app does (hooks,
rooms, broadcasts) runs for real. :func:`serving` runs the app on Hypercorn in
the test's event loop, for tests that need a real socket.

Example::

    from partydeco.testing import TestClient

    async def test_greeting() -> None:
        async with TestClient(app) as client:
            async with client.connect("lobby", query={"token": "alice-token"}) as alice:
                assert await alice.receive() == "Hello alice from party!"
"""

from partydeco.errors import ClosedByAppError, ConnectionClosedError, HandshakeRefusedError
from partydeco.testing.client import TestClient, TestConnection, TestResponse
from partydeco.testing.serving import free_port, serving
from partydeco.types import ASGIApp

__all__ = [
    "ASGIApp",
    "ClosedByAppError",
    "ConnectionClosedError",
    "HandshakeRefusedError",
    "TestClient",
    "TestConnection",
    "TestResponse",
    "free_port",
    "serving",
]
