"""Backoff arithmetic and the default reconnect rule, without a server."""

from __future__ import annotations

import pytest

from partydeco.client import Backoff, CloseInfo, default_should_reconnect


def test_partysocket_default_delays() -> None:
    backoff = Backoff(jitter=0)
    delays = [round(backoff.delay(n), 4) for n in range(8)]
    # first attempt at once, then 3 s growing by 1.3, capped at 10 s (partysocket's defaults)
    assert delays == [0.0, 3.0, 3.9, 5.07, 6.591, 8.5683, 10.0, 10.0]


def test_jitter_only_shortens_within_its_fraction() -> None:
    backoff = Backoff(min_delay=1, max_delay=8, factor=2, jitter=0.25)
    assert backoff.delay(3, rng=lambda: 0.0) == 4.0
    assert backoff.delay(3, rng=lambda: 0.999999) == pytest.approx(3.0, abs=1e-5)
    assert backoff.delay(10, rng=lambda: 0.0) == 8.0
    assert backoff.delay(10, rng=lambda: 0.5) == 7.0
    assert backoff.delay(0, rng=lambda: 0.5) == 0.0


def test_real_random_jitter_stays_in_bounds() -> None:
    backoff = Backoff(min_delay=2, max_delay=5, factor=1.5, jitter=0.5)
    for attempt in range(1, 6):
        base = backoff.base_delay(attempt)
        for _ in range(200):
            assert base * 0.5 <= backoff.delay(attempt) <= base


def test_huge_attempt_count_does_not_overflow() -> None:
    assert Backoff(jitter=0).delay(10**6) == 10.0
    assert Backoff(min_delay=1, max_delay=1, factor=1, jitter=0).delay(10**6) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"min_delay": -1}, {"min_delay": 5, "max_delay": 1}, {"factor": 0.5}, {"jitter": 1.5}],
)
def test_invalid_backoff_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


@pytest.mark.parametrize(
    ("info", "reconnect"),
    [
        (CloseInfo(status=401, body=b"Unauthorized"), False),
        (CloseInfo(status=403), False),
        (CloseInfo(status=404), False),
        (CloseInfo(status=400), False),
        (CloseInfo(status=429), True),
        (CloseInfo(status=408), True),
        (CloseInfo(status=500), True),
        (CloseInfo(status=503), True),
        (CloseInfo(code=1008, reason="policy"), False),
        (CloseInfo(code=4000), False),
        (CloseInfo(code=4401), False),
        (CloseInfo(code=4999), False),
        (CloseInfo(code=1000), True),
        (CloseInfo(code=1001), True),
        (CloseInfo(code=1006), True),
        (CloseInfo(code=1011), True),
        (CloseInfo(code=1012), True),
        (CloseInfo(code=3000), True),
        (CloseInfo(error=ConnectionRefusedError()), True),
        (CloseInfo(error=TimeoutError()), True),
    ],
)
def test_default_reconnect_rule(info: CloseInfo, reconnect: bool) -> None:
    assert default_should_reconnect(info) is reconnect
