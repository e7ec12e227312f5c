"""The Grafana dashboard in docs/ queries only metrics partydeco exports, and all of them."""

from __future__ import annotations

import json
import re

from partydeco.observability.metrics import METRIC_NAMES
from tests.support import ROOT

DASHBOARD = ROOT / "docs" / "operations-grafana.json"
_SUFFIX = re.compile(r"_(total|bucket|sum|count)$")


def exported(series: str) -> str | None:
    """The metric a series name belongs to, if partydeco exports it."""
    if series in METRIC_NAMES:
        return series
    base = _SUFFIX.sub("", series)
    kind = METRIC_NAMES.get(base, ("", "", ()))[0]
    suffix = series[len(base) + 1 :]
    if (kind == "counter" and suffix == "total") or (
        kind == "histogram" and suffix in ("bucket", "sum", "count")
    ):
        return base
    return None


def test_the_dashboard_queries_every_metric_and_only_real_ones() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    used = {name for expr in exprs for name in re.findall(r"\bpartydeco_[a-z_]+", expr)}
    unknown = sorted(name for name in used if exported(name) is None)
    assert not unknown, f"the dashboard queries metrics partydeco does not export: {unknown}"
    covered = {exported(name) for name in used}
    assert covered == set(METRIC_NAMES), sorted(set(METRIC_NAMES) - covered)
    for expr in exprs:  # labels the queries group by exist on the metrics they read
        for names, labels in re.findall(r"by \(([a-z_, ]+)\) \((?:rate|increase)?\(?(\w+)", expr):
            metric = exported(labels)
            assert metric is not None
            allowed = {*METRIC_NAMES[metric][2], "le"}
            assert {n.strip() for n in names.split(",")} <= allowed, expr
