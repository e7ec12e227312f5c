"""Which operations features are on: the app's options, else the environment.

Every feature is off by default. An option given to :class:`~partydeco.App`
wins; an option left at ``None`` is read from the environment:

============================  ==================================================
``PARTYDECO_METRICS``         ``1`` serves Prometheus metrics
``PARTYDECO_METRICS_PATH``    where (``/metrics``)
``PARTYDECO_METRICS_TOKEN``   the bearer token ``/metrics`` asks for, if any
``PARTYDECO_HEALTH``          ``1``/``0``: ``/healthz`` and ``/readyz`` (on with
                              metrics or the admin API unless ``0``)
``PARTYDECO_ADMIN_TOKEN``     the admin API's secret; the API is on when it is set
``PARTYDECO_LOG_FORMAT``      ``json``: one JSON object per log line
``PARTYDECO_TRACING``         ``1``: OpenTelemetry spans (the ``otel`` extra)
============================  ==================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SetupError

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "ADMIN_PATH",
    "HEALTH_PATH",
    "READY_PATH",
    "Settings",
    "check_options",
    "env_flag",
]

#: Where the probes and the admin API answer (the metrics path is configurable).
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
ADMIN_PATH = "/_partydeco"

#: The shortest admin secret accepted: it guards every room's connections.
MIN_SECRET = 16

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def env_flag(environ: Mapping[str, str], name: str) -> bool | None:
    """The boolean environment variable *name*, or ``None`` when it is not set.

    Raises:
        SetupError: the value is not one of 1/true/yes/on or 0/false/no/off.
    """
    value = environ.get(name)
    if value is None:
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SetupError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {value!r}")


def check_options(config: Config) -> None:
    """Check the operations options of a :class:`~partydeco.config.Config`.

    Raises:
        ValueError: an option has a wrong type or value.
    """
    for name in ("metrics", "health", "json_logs", "tracing"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"{name} must be True, False or None, not {value!r}")
    if config.metrics_path is not None:
        _check_path(config.metrics_path)
    if config.metrics_token is not None:
        _check_token("metrics_token", config.metrics_token, 1)
    if config.admin_token is not None:
        _check_token("admin_token", config.admin_token, MIN_SECRET)


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise ValueError(f"metrics_path must be a URL path such as '/metrics', not {path!r}")
    if path.startswith(("/parties/", "/party/", ADMIN_PATH)) or path in (HEALTH_PATH, READY_PATH):
        raise ValueError(f"metrics_path {path!r} is taken by partydeco's own URLs")
    if any(c in path for c in "?#% ") or not path.isascii():
        raise ValueError(f"metrics_path must be a plain ASCII path, not {path!r}")
    return path


def _check_token(name: str, token: object, shortest: int) -> str:
    if not isinstance(token, str) or not token.isascii() or not token.isprintable():
        raise ValueError(f"{name} must be a printable ASCII string")
    if len(token) < shortest or token != token.strip() or " " in token:
        raise ValueError(f"{name} must be at least {shortest} characters, without spaces")
    return token


@dataclass(frozen=True, slots=True)
class Settings:
    """The operations features of one server, resolved (see the module).

    Attributes:
        metrics: serve Prometheus metrics.
        metrics_path: the metrics URL path.
        metrics_token: the bearer token the metrics URL asks for, or ``None``.
        health: serve ``/healthz`` and ``/readyz``.
        admin_token: the admin API's secret, or ``None`` (the API is off).
        json_logs: log one JSON object per line.
        tracing: OpenTelemetry spans and trace context.
    """

    metrics: bool = False
    metrics_path: str = "/metrics"
    metrics_token: str | None = None
    health: bool = False
    admin_token: str | None = None
    json_logs: bool = False
    tracing: bool = False

    @classmethod
    def resolve(cls, config: Config, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of *config*, with the environment filling what it leaves at ``None``.

        Raises:
            SetupError: an environment variable has a wrong value.
        """
        env = os.environ if environ is None else environ
        metrics = _pick(config.metrics, env_flag(env, "PARTYDECO_METRICS"))
        admin = config.admin_token or env.get("PARTYDECO_ADMIN_TOKEN") or None
        token = config.metrics_token or env.get("PARTYDECO_METRICS_TOKEN") or None
        path = config.metrics_path or env.get("PARTYDECO_METRICS_PATH") or "/metrics"
        try:
            if admin is not None:
                _check_token("PARTYDECO_ADMIN_TOKEN", admin, MIN_SECRET)
            if token is not None:
                _check_token("PARTYDECO_METRICS_TOKEN", token, 1)
            _check_path(path)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        health = config.health
        if health is None:
            health = env_flag(env, "PARTYDECO_HEALTH")
        if health is None:
            health = metrics or admin is not None
        log_format = env.get("PARTYDECO_LOG_FORMAT", "").strip().lower()
        if log_format not in ("", "text", "json"):
            raise SetupError(f"PARTYDECO_LOG_FORMAT must be 'json' or 'text', not {log_format!r}")
        return cls(
            metrics=metrics,
            metrics_path=path,
            metrics_token=token,
            health=health,
            admin_token=admin,
            json_logs=_pick(config.json_logs, log_format == "json" if log_format else None),
            tracing=_pick(config.tracing, env_flag(env, "PARTYDECO_TRACING")),
        )

    @property
    def serves_urls(self) -> bool:
        """Whether any URL of partydeco's own is served (metrics, probes, admin)."""
        return self.metrics or self.health or self.admin_token is not None


def _pick(option: bool | None, env: bool | None) -> bool:
    if option is not None:
        return option
    return bool(env)
