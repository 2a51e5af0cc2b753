"""The conditions a condition node tests, and how each is decided.

Tags and variables come from the session's state, the instance name and the schedules from the
step's context, ``now`` from the incoming event: deciding is a pure function of the three.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flows.answers import parse_number
from flows.text import normalize

OPS = frozenset({"eq", "ne", "contains", "gt", "gte", "lt", "lte", "set", "unset"})
TAG_MODES = ("any", "all", "none")


@dataclass(frozen=True)
class TagsCond:
    """The contact's tags: ``any`` of them, ``all`` of them, or ``none`` of them."""

    mode: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class FieldCond:
    """A variable compared with a value: eq, ne and contains ignore case and accents; gt, gte, lt
    and lte compare numbers (pt-BR "1.234,56") or dates (dd/mm/aaaa); set and unset need none."""

    var: str
    op: str
    value: str = ""


@dataclass(frozen=True)
class HoursCond:
    """Whether ``now`` is inside (or, with ``inside`` false, outside) a named schedule's hours;
    the schedules come with the step's context, so a company edits its hours in one place."""

    schedule: str
    inside: bool = True


@dataclass(frozen=True)
class InstanceCond:
    """Whether the conversation came in on one of these connected numbers (instance names)."""

    names: tuple[str, ...]


Cond = TagsCond | FieldCond | HoursCond | InstanceCond


_DAYS = {"seg": 0, "ter": 1, "qua": 2, "qui": 3, "sex": 4, "sab": 5, "dom": 6,
         "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class Schedule:
    """A company's opening hours: intervals per weekday (0 is Monday) in its time zone, and the
    dates it is closed (holidays). An event's ``now`` without a time zone is read in this one."""

    hours: Mapping[int, tuple[tuple[time, time], ...]]
    timezone: str = "America/Sao_Paulo"
    closed: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Schedule:
        """``{"timezone": "America/Sao_Paulo", "hours": {"seg-sex": ["08:00-18:00"],
        "sab": ["09:00-13:00"]}, "closed": ["2025-12-25"]}``; days in Portuguese or English."""
        hours: dict[int, list[tuple[time, time]]] = {}
        raw = data.get("hours", {})
        if not isinstance(raw, Mapping):
            raise ValueError("hours must map days to lists of 'HH:MM-HH:MM'")
        for days, spans in raw.items():
            for day in _day_range(str(days)):
                hours.setdefault(day, []).extend(_span(str(s)) for s in _as_list(spans))
        closed = frozenset(date.fromisoformat(str(d)) for d in _as_list(data.get("closed", [])))
        zone = str(data.get("timezone", "America/Sao_Paulo"))
        ZoneInfo(zone)  # an unknown zone fails here, not at the first customer's message
        return cls({d: tuple(sorted(s)) for d, s in hours.items()}, zone, closed)

    def is_open(self, now: datetime) -> bool:
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)
        if local.date() in self.closed:
            return False
        moment = local.time().replace(tzinfo=None)
        return any(start <= moment < end for start, end in self.hours.get(local.weekday(), ()))

    def next_opening(self, now: datetime) -> datetime | None:
        """When it next opens after ``now`` (in its own time zone), within two weeks; None if
        it never does (no hours at all)."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)
        for ahead in range(15):
            day = local.date() + timedelta(days=ahead)
            if day in self.closed:
                continue
            for start, _ in self.hours.get(day.weekday(), ()):
                at = datetime.combine(day, start, zone)
                if at > local:
                    return at
        return None


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _day_range(text: str) -> list[int]:
    parts = [normalize(p)[:3] for p in text.split("-")]
    if len(parts) > 2 or any(p not in _DAYS for p in parts):
        raise ValueError(f"{text!r} is not a day or a range of days (seg, ter, ..., seg-sex)")
    first, last = _DAYS[parts[0]], _DAYS[parts[-1]]
    return list(range(first, last + 1)) if first <= last else [*range(first, 7),
                                                                *range(0, last + 1)]


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (p.strip() for p in text.split("-"))
        opens = time.fromisoformat(start)
        closes = time.max if end == "24:00" else time.fromisoformat(end)
    except ValueError:
        raise ValueError(f"{text!r} is not an interval HH:MM-HH:MM") from None
    if closes <= opens:
        raise ValueError(f"{text!r} closes before it opens (split an overnight interval)")
    return opens, closes


def _ordered(text: str) -> Decimal | date | None:
    number = parse_number(text)
    if number is not None:
        return number
    try:
        return datetime.strptime(text.strip(), "%d/%m/%Y").date()
    except ValueError:
        return None


def _compare(op: str, have: str, want: str) -> bool:
    if op == "set":
        return bool(have.strip())
    if op == "unset":
        return not have.strip()
    if op in ("eq", "ne"):
        return (normalize(have) == normalize(want)) == (op == "eq")
    if op == "contains":
        return normalize(want) in normalize(have)
    a, b = _ordered(have), _ordered(want)
    if a is None or b is None or type(a) is not type(b):
        return False  # "abc" > 3 is neither true nor an error: the branch is not taken
    if op == "gt":
        return a > b  # type: ignore[operator]
    if op == "gte":
        return a >= b  # type: ignore[operator]
    if op == "lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def holds(cond: Cond, *, tags: Collection[str], values: Mapping[str, str], instance: str,
          schedules: Mapping[str, Schedule], now: datetime) -> bool:
    """Whether one condition holds. A schedule the context lacks is always open, as a team
    without hours is: its hours were taken away, or the team renamed, after the flow was saved
    (checked then); failing the turn on it would leave the customer unanswered for good."""
    if isinstance(cond, TagsCond):
        have = {normalize(t) for t in tags}
        want = {normalize(t) for t in cond.tags}
        if cond.mode == "any":
            return bool(have & want)
        if cond.mode == "all":
            return want <= have
        return not have & want
    if isinstance(cond, FieldCond):
        return _compare(cond.op, values.get(cond.var, ""), cond.value)
    if isinstance(cond, HoursCond):
        schedule = schedules.get(cond.schedule)
        return (schedule is None or schedule.is_open(now)) == cond.inside
    return instance in cond.names
