"""``/healthz`` and ``/readyz`` through a real server: readiness follows storage and Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from partydeco import App, Request, Room
from partydeco.errors import SetupError
from partydeco.observability.settings import Settings
from tests.support import eventually, serve
from tests.support.redis_server import RedisServer


async def probe(base: str, path: str) -> tuple[int, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{base}{path}", timeout=10)
    return response.status_code, response.json()


def app_with_a_room(**options: Any) -> App:
    app = App(**options)

    @app.party().on_request
    def info(request: Request, room: Room) -> str:
        return "ok"

    return app


async def test_ready_flips_when_redis_stops_and_back_when_it_returns(
    own_redis: RedisServer, redis_prefix: str
) -> None:
    app = app_with_a_room(health=True, redis_url=own_redis.url, redis_prefix=redis_prefix)
    async with serve(app) as base:
        assert await probe(base, "/readyz") == (
            200, {"status": "ok", "checks": {"server": "ok", "storage": "ok", "backplane": "ok"}}
        )  # fmt: skip
        own_redis.stop()

        async def not_ready() -> Any:
            status, body = await probe(base, "/readyz")
            return status == 503 and body

        body = await eventually(not_ready, timeout=10, message="/readyz stayed 200")
        assert body["status"] == "unavailable"
        assert body["checks"]["backplane"] == "unavailable"
        assert body["checks"]["storage"] in ("unavailable", "timed out")
        # the process itself still serves
        assert await probe(base, "/healthz") == (200, {"status": "ok"})
        own_redis.start()

        async def ready() -> bool:
            return (await probe(base, "/readyz"))[0] == 200

        await eventually(ready, timeout=15, message="/readyz did not recover")


async def test_not_ready_while_shutting_down() -> None:
    app = app_with_a_room(health=True, storage="memory://")
    async with serve(app) as base:
        assert (await probe(base, "/readyz"))[0] == 200
        runtime = app.runtime
        assert runtime is not None
        await runtime.shutdown()  # what SIGTERM does first

        async def draining() -> Any:
            status, body = await probe(base, "/readyz")  # answers are reused for a second
            return status == 503 and body

        body = await eventually(draining, timeout=5, message="/readyz stayed 200")
        assert body["checks"]["server"] == "shutting down"


async def test_probes_are_on_with_metrics_and_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = app_with_a_room(metrics=True, storage="memory://")
    async with serve(app) as base:
        assert (await probe(base, "/healthz"))[0] == 200
    monkeypatch.setenv("PARTYDECO_HEALTH", "0")
    app = app_with_a_room(metrics=True, storage="memory://")
    async with serve(app) as base, httpx.AsyncClient() as client:
        assert (await client.get(f"http://{base}/healthz")).status_code == 404
        assert (await client.get(f"http://{base}/metrics")).status_code == 200
    monkeypatch.setenv("PARTYDECO_HEALTH", "1")
    app = app_with_a_room(storage="memory://")
    async with serve(app) as base:
        assert (await probe(base, "/readyz"))[0] == 200


def test_settings_read_the_environment_and_refuse_bad_values() -> None:
    config = App().config
    on = Settings.resolve(config, {"PARTYDECO_METRICS": "yes", "PARTYDECO_LOG_FORMAT": "json"})
    assert (on.metrics, on.health, on.json_logs, on.metrics_path) == (True, True, True, "/metrics")
    assert not Settings.resolve(config, {}).serves_urls
    with pytest.raises(SetupError, match="PARTYDECO_METRICS must be 1 or 0"):
        Settings.resolve(config, {"PARTYDECO_METRICS": "maybe"})
    with pytest.raises(SetupError, match="at least 16 characters"):
        Settings.resolve(config, {"PARTYDECO_ADMIN_TOKEN": "short"})
    with pytest.raises(SetupError, match="taken by partydeco"):
        Settings.resolve(config, {"PARTYDECO_METRICS_PATH": "/readyz"})
    with pytest.raises(ValueError, match="at least 16 characters"):
        App(admin_token="short")
    with pytest.raises(ValueError, match="metrics must be True, False or None"):
        App(metrics="yes")
    with pytest.raises(ValueError, match="metrics_path must be a URL path"):
        App(metrics_path="metrics")
    # secrets never show in the configuration's repr
    config = App(admin_token="s3cret-0123456789abcdef", metrics_token="s3cret").config
    assert "s3cret" not in repr(config)
