"""Crons: a party's scheduled jobs (PartyKit's ``crons`` and ``onCron``).

``@party.on_cron("*/5 * * * *")`` registers a :class:`CronJob`: a function, a name and a
:class:`Schedule`. The expression is parsed by `croniter
<https://github.com/pallets-eco/croniter>`_ when it is registered, so a bad one fails at
import time, not at start-up. When a tick is due its handler gets the :class:`Cron` (which
tick) and a :class:`CronLobby` (the environment, and every room through ``parties``): a
cron belongs to its party, not to a room. What runs the ticks is
:mod:`partydeco.crontab`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from croniter import CroniterError, croniter

from .errors import SetupError

if TYPE_CHECKING:
    from .dispatch import Call
    from .parties import Parties

__all__ = ["Cron", "CronJob", "CronLobby", "Schedule", "check_cron_name"]

#: What a cron's name may be: it names the cron in storage and in log lines.
CRON_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class Schedule:
    """A cron expression, parsed and checked once; times are Unix epoch seconds, in UTC.

    Standard five fields (minute, hour, day of month, month, day of week), croniter's
    optional sixth field for **seconds** (last: ``"* * * * * */10"`` is every ten
    seconds) and seventh for the year, names (``MON``, ``JAN``), ``L``, ``#`` and the
    ``@hourly`` / ``@daily`` / ``@weekly`` / ``@monthly`` / ``@yearly`` shorthands.

    Args:
        expression: the cron expression.

    Raises:
        SetupError: the expression does not parse, or never fires.
    """

    __slots__ = ("expression",)

    def __init__(self, expression: str) -> None:
        if callable(expression):
            raise SetupError(
                "on_cron takes a cron expression: write @party.on_cron(\"*/5 * * * *\") "
                "above the function, not @party.on_cron"
            )
        if not isinstance(expression, str):
            raise SetupError(f"a cron expression is a string, not {expression!r}")
        self.expression = " ".join(expression.split())
        try:
            croniter(self.expression)
        except CroniterError as exc:
            raise SetupError(f"invalid cron expression {expression!r}: {exc}") from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise SetupError(f"invalid cron expression {expression!r} ({exc!r})") from None
        if self.next_after(time.time()) is None:
            raise SetupError(f"the cron expression {expression!r} never fires again")

    def __repr__(self) -> str:
        return f"Schedule({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)

    def next_after(self, t: float) -> float | None:
        """The first tick strictly after *t*, or ``None`` when there is none."""
        try:
            return float(croniter(self.expression, t).get_next(float))
        except CroniterError:
            return None

    def latest(self, t: float) -> float | None:
        """The last tick at or before *t*, or ``None`` when there is none."""
        try:
            before = float(croniter(self.expression, t).get_prev(float))
        except CroniterError:
            return None
        following = self.next_after(before)
        return following if following is not None and following <= t else before

    def is_tick(self, t: float) -> bool:
        """Whether *t* is one of the schedule's ticks (ticks fall on whole seconds)."""
        return math.isfinite(t) and t == int(t) and self.next_after(t - 1) == t


def check_cron_name(name: object) -> str:
    """Return *name* if it can name a cron.

    Raises:
        SetupError: it is not 1-100 letters, digits, ``_``, ``.``, ``:`` or ``-``.
    """
    if not isinstance(name, str) or not CRON_NAME.match(name):
        raise SetupError(
            f"a cron's name is 1-100 letters, digits, '_', '.', ':' or '-', not {name!r}; "
            "pass name= to on_cron"
        )
    return name


@dataclass(frozen=True, slots=True)
class CronJob:
    """A registered cron: its party, its name (unique in the party), schedule and handler."""

    party: str
    name: str
    schedule: Schedule
    call: Call

    def __repr__(self) -> str:
        return f"<CronJob {self.party}/{self.name} {self.schedule.expression!r}>"


@dataclass(frozen=True, slots=True)
class Cron:
    """One tick of a cron, as its handler gets it (PartyKit's ``controller``).

    Attributes:
        name: the cron's name: the function's name, or ``on_cron(..., name=)``.
        expression: the cron expression (PartyKit's ``cron.cron``).
        scheduled_time: the tick, Unix epoch seconds (PartyKit's ``scheduledTime``, in
            milliseconds there). A retry has the same; after a restart it may be in the past.
        party: the party the cron was registered on.
    """

    name: str
    expression: str
    scheduled_time: float
    party: str

    @property
    def scheduled_at(self) -> datetime:
        """:attr:`scheduled_time` as an aware ``datetime`` in UTC."""
        return datetime.fromtimestamp(self.scheduled_time, UTC)


class CronLobby:
    """What a cron handler can reach: no room of its own, but every room of the app.

    Attributes:
        party: the party the cron was registered on.
        env: the process environment merged with ``.env``.
        parties: the app's parties: ``lobby.parties["main"].get("lobby").fetch(...)``
            reaches a room's ``on_request`` (in whichever process owns it), as
            ``room.parties`` does.
    """

    __slots__ = ("env", "parties", "party")

    def __init__(self, party: str, env: Mapping[str, str], parties: Parties) -> None:
        self.party = party
        self.env = env
        self.parties = parties

    def __repr__(self) -> str:
        return f"<CronLobby {self.party}>"
