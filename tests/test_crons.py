"""Crons in one process: registration checks, schedules, ticks, retries and missed ticks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from partydeco import App, Cron, CronLobby, Party, Request, Room, SetupError
from partydeco.cron import Schedule
from partydeco.crontab import cron_key
from partydeco.storage import SqliteStorage
from partydeco.testing import TestClient
from tests.support import eventually

EVERY_SECOND = "* * * * * *"
HOURLY = "0 * * * *"


# -- registration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "5, 6 or 7 columns"),
        ("", "5, 6 or 7 columns"),
        ("every day", "invalid cron expression"),
        ("a b c d e", "invalid cron expression"),
        ("0 0 30 2 *", "never fires"),  # February 30th
        ("0 0 1 1 * 0 2020", "never fires"),  # in the past
    ],
)
def test_invalid_expressions_are_refused_at_registration(expression: str, says: str) -> None:
    with App() as app:
        party = Party("jobs")
        with pytest.raises(SetupError, match=says):
            party.on_cron(expression)  # before any function is decorated
        assert "jobs" not in app.handlers


def test_the_decorator_needs_an_expression_and_a_unique_valid_name() -> None:
    with App() as app:
        party = app.party()

        def job(cron: Cron, lobby: CronLobby) -> None:
            pass

        with pytest.raises(SetupError, match=r"write @party.on_cron\("):
            party.on_cron(job)  # type: ignore[arg-type]  # @party.on_cron without arguments
        with pytest.raises(SetupError, match="a cron expression is a string"):
            party.on_cron(5)  # type: ignore[arg-type]

        assert party.on_cron("*/5 * * * *")(job) is job  # returned unchanged
        with pytest.raises(SetupError, match="already has a cron named 'job'"):
            party.on_cron("@hourly")(job)
        party.on_cron("@hourly", name="job-hourly")(job)
        Party("other").on_cron("@daily")(job)  # names are per party
        with pytest.raises(SetupError, match="a cron's name"):
            party.on_cron("@daily", name="no spaces")(job)
        with pytest.raises(SetupError, match="a cron's name"):
            party.on_cron("@daily")(lambda cron, lobby: None)  # no name to take
        jobs = app.handlers["main"].on_cron
        assert [(j.name, j.schedule.expression) for j in jobs] == [
            ("job", "*/5 * * * *"),
            ("job-hourly", "@hourly"),
        ]
        app.freeze()
        with pytest.raises(SetupError, match="already serving"):
            party.on_cron("@daily", name="late")(job)


def test_schedules_in_utc_with_an_optional_seconds_field() -> None:
    midnight = 1_796_342_400.0  # 2026-12-04 00:00:00 UTC
    daily = Schedule("0 0 * * *")
    assert daily.next_after(midnight - 0.5) == midnight
    assert daily.next_after(midnight) == midnight + 86_400  # strictly after
    assert daily.latest(midnight + 3600) == midnight
    assert daily.latest(midnight) == midnight
    assert daily.is_tick(midnight) and not daily.is_tick(midnight + 60)
    every_ten = Schedule("* * * * * */10")  # the sixth field is seconds
    assert every_ten.next_after(midnight + 1) == midnight + 10
    assert every_ten.latest(midnight + 25.5) == midnight + 20
    assert every_ten.is_tick(midnight + 30) and not every_ten.is_tick(midnight + 30.5)
    assert Schedule("  @hourly ").expression == "@hourly"
    assert Schedule("0 12 * * MON").next_after(midnight) == midnight + 3 * 86_400 + 12 * 3600


# -- running -----------------------------------------------------------------------


def counter_room(party: Party) -> None:
    """A room whose ``on_request`` counts POSTs: what a cron reaches through ``parties``."""

    @party.on_request
    async def count(request: Request, room: Room) -> Any:
        if request.method == "POST":
            await room.storage.put("n", (await room.storage.get("n") or 0) + 1)
        return {"n": await room.storage.get("n") or 0}


async def test_a_cron_runs_at_each_tick_and_reaches_rooms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRON_GREETING", "hi")
    runs: list[tuple[Cron, CronLobby, float]] = []
    with App(storage="memory://") as app:
        counter_room(Party("main"))

        @Party("jobs").on_cron(EVERY_SECOND)
        async def tick(cron: Cron, lobby: CronLobby) -> None:
            runs.append((cron, lobby, time.time()))
            await lobby.parties["main"].get("counter").fetch("", method="POST")

        async with TestClient(app) as client:
            await eventually(lambda: len(runs) >= 3)
            cron, lobby, ran = runs[0]
            assert (cron.name, cron.expression, cron.party) == ("tick", EVERY_SECOND, "jobs")
            assert cron.scheduled_time == int(cron.scheduled_time) <= ran
            assert cron.scheduled_at.timestamp() == cron.scheduled_time
            assert cron.scheduled_at.utcoffset() is not None
            assert (lobby.party, lobby.env["CRON_GREETING"]) == ("jobs", "hi")
            ticks = [run[0].scheduled_time for run in runs]
            assert ticks == sorted(set(ticks))  # one run per tick, in order
            response = await client.get("/parties/main/counter")
            assert response.json()["n"] >= 3


async def test_a_failing_run_is_retried_with_backoff_then_the_schedule_goes_on() -> None:
    attempts: list[tuple[float, float]] = []
    with App(storage="memory://", alarm_retry_delay=0.05, alarm_max_retries=2) as app:

        @app.party().on_cron(EVERY_SECOND)
        def flaky(cron: Cron, lobby: CronLobby) -> None:
            attempts.append((cron.scheduled_time, time.monotonic()))
            if len({tick for tick, _ in attempts}) == 1:
                raise RuntimeError("the first tick always fails")

        async with TestClient(app):
            await eventually(lambda: len({tick for tick, _ in attempts}) >= 2)
    first = [at for tick, at in attempts if tick == attempts[0][0]]
    assert len(first) == 3  # the first attempt and alarm_max_retries retries, then given up
    assert first[1] - first[0] >= 0.05
    assert first[2] - first[1] >= 0.1  # the delay doubles
    later = [tick for tick, _ in attempts if tick != attempts[0][0]]
    assert later[0] > attempts[0][0]  # the next tick after giving up ran, once
    assert len(later) == len(set(later))


async def test_ticks_that_came_due_during_a_run_are_skipped() -> None:
    with App(storage="memory://") as app:

        @app.party().on_cron(EVERY_SECOND)
        def slow(cron: Cron, lobby: CronLobby) -> None:
            pass

        async with TestClient(app):
            assert app.runtime is not None
            crontab = app.runtime.crontab
            key = cron_key("main", "slow")
            now = time.time()
            # A run of the tick 10 s ago that just ended: the next is the first after now.
            assert crontab.next_time(key, now - 10) == int(now) + 1
            assert crontab.next_time(key, now + 5) == int(now) + 6
            assert crontab.next_time(cron_key("main", "gone"), now) is None


async def test_run_runs_a_cron_now_for_tests() -> None:
    seen: list[Cron] = []
    with App(storage="memory://") as app:

        @app.party().on_cron("0 3 * * *")
        def nightly(cron: Cron, lobby: CronLobby) -> None:
            seen.append(cron)
            if len(seen) == 2:
                raise ValueError("no retries here")

        async with TestClient(app):
            assert app.runtime is not None
            await app.runtime.crontab.run("nightly")
            assert seen[0].name == "nightly" and seen[0].scheduled_time <= time.time()
            with pytest.raises(ValueError, match="no retries"):
                await app.runtime.crontab.run("nightly", at=42.0)
            assert seen[1].scheduled_time == 42.0
            unknown = r"no cron main/other \(this app has: main/nightly\)"
            with pytest.raises(KeyError, match=unknown):
                await app.runtime.crontab.run("other")


# -- restarts ------------------------------------------------------------------------


def hourly_app(db: Path, runs: list[Cron]) -> App:
    app = App(storage=str(db))

    @app.party().on_cron(HOURLY)
    def report(cron: Cron, lobby: CronLobby) -> None:
        runs.append(cron)

    return app


async def stored_alarm(db: Path, name: str = "report") -> float | None:
    async with SqliteStorage(db) as storage:
        return await storage.get_alarm(cron_key("main", name))


async def store_alarm(db: Path, at: float, name: str = "report") -> None:
    async with SqliteStorage(db) as storage:
        await storage.set_alarm(cron_key("main", name), at)


async def test_a_tick_missed_while_no_process_ran_runs_once_at_start(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    schedule = Schedule(HOURLY)
    runs: list[Cron] = []
    started = time.time()
    async with TestClient(hourly_app(db, runs)):  # first start: armed for the next tick
        pass
    assert runs == []
    first = await stored_alarm(db)
    assert first is not None and schedule.is_tick(first) and started < first <= started + 3600
    # As if the process had stopped three hours before the latest tick and stayed down.
    before = time.time()
    latest = schedule.latest(before)
    assert latest is not None
    await store_alarm(db, latest - 3 * 3600)
    runs = []
    app = hourly_app(db, runs)
    async with TestClient(app):
        after = schedule.next_after(latest)

        async def moved_on() -> bool:
            return await stored_alarm(db) == after

        await eventually(moved_on)
        assert len(runs) == 1  # the four missed ticks ran as one
        assert runs[0].scheduled_time == schedule.latest(time.time())  # the latest one
        assert runs[0].scheduled_time >= latest


async def test_a_pending_tick_is_kept_and_a_changed_schedule_rearms(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    schedule = Schedule(HOURLY)
    runs: list[Cron] = []
    upcoming = schedule.next_after(time.time() + 3600)  # a later tick, still on the schedule
    assert upcoming is not None
    await store_alarm(db, upcoming)
    async with TestClient(hourly_app(db, runs)):
        pass
    assert await stored_alarm(db) == upcoming
    # Stored by another schedule (the expression changed while the server was down): no run
    # for it, the cron is armed for its own next tick.
    latest = schedule.latest(time.time())
    assert latest is not None
    await store_alarm(db, latest - 1800)
    async with TestClient(hourly_app(db, runs)):
        pass
    assert runs == []
    assert await stored_alarm(db) == schedule.next_after(time.time())


async def test_a_cron_whose_tick_was_dropped_is_armed_again(tmp_path: Path) -> None:
    # A process of an older deploy, which did not know the cron, dropped its tick.
    db = tmp_path / "s.db"
    runs: list[Cron] = []
    app = hourly_app(db, runs)
    async with TestClient(app):
        assert app.runtime is not None
        key = cron_key("main", "report")
        await app.runtime.storage.set_alarm(key, None)
        await app.runtime.crontab.arm()  # what every process does each minute
        assert await app.runtime.storage.get_alarm(key) == Schedule(HOURLY).next_after(time.time())
    assert runs == []


async def test_a_cron_this_app_does_not_have_is_dropped(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await store_alarm(db, time.time() - 60, name="removed")
    runs: list[Cron] = []
    async with TestClient(hourly_app(db, runs)):

        async def dropped() -> bool:
            return await stored_alarm(db, "removed") is None

        await eventually(dropped)
    assert runs == []

