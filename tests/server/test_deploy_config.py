"""The Hypercorn config file partydeco ships for `hypercorn --config ... app:party`."""

from __future__ import annotations

from importlib.resources import files

import httpx
from hypercorn.config import Config as HypercornConfig

from partydeco import App
from partydeco.server.run import hypercorn_config
from tests.support import ROOT, free_port, start_process

SHIPPED = str(files("partydeco").joinpath("hypercorn.toml"))

#: What partydeco's own runner sets and Hypercorn's defaults lack (or differ on).
RELIED_ON = (
    "websocket_ping_interval",
    "read_timeout",
    "websocket_max_message_size",
    "graceful_timeout",
    "access_log_format",
)


def test_shipped_config_has_the_settings_party_run_uses() -> None:
    shipped = HypercornConfig.from_toml(SHIPPED)
    ours = hypercorn_config(App())
    defaults = HypercornConfig()
    for name in RELIED_ON:
        assert getattr(shipped, name) == getattr(ours, name), name
    assert shipped.websocket_ping_interval is not None
    assert defaults.websocket_ping_interval is None  # why the file exists
    assert shipped.bind == ["127.0.0.1:1999"]


def test_hypercorn_cli_with_the_shipped_config_keeps_tokens_out_of_the_log() -> None:
    port = free_port()
    server = start_process(
        ["-m", "hypercorn", "--config", SHIPPED, "--bind", f"127.0.0.1:{port}", "app:party"],
        port=port,
        env={"TOKEN": "hunter2-secret"},
        cwd=ROOT / "examples" / "quickstart",
    )
    try:
        answer = httpx.get(f"http://{server.base}/parties/main/lobby?token=hunter2-secret")
        assert answer.json() == {"room": "lobby", "connections": 0}
    finally:
        server.stop()
    log = server.output()
    assert '"GET /parties/main/lobby 1.1" 200' in log, log
    assert "hunter2" not in log
    assert "token=" not in log
