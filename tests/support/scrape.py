"""Reading a Prometheus exposition in tests: one sample's value by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["samples", "scrape", "value"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The value of sample *name* with exactly *labels* (0 when absent)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(base: str, path: str = "/metrics", token: str | None = None) -> str:
    """GET the metrics of the server at *base* (``127.0.0.1:PORT``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{base}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.text
