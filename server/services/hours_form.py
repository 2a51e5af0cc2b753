"""A team's business hours as a person edits them: one line per weekday ("08:00-12:00,
13:00-18:00"), a time zone and the holidays, mapped to and from the hours JSON that
``people.check_hours`` accepts and the conversation engine reads.

The JSON stays the one truth (the API takes it as it is); this is its readable face. Days with
the same hours are written back as a range ("seg-sex"), so what the editor saves reads as what
an admin would have typed into the API. Every refusal names the line it came from, so the page
shows it beside that day and nothing is saved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flows.conditions import Schedule
from server.services import people
from server.services.contact_data import FieldError, Invalid

WEEKDAYS = ("seg", "ter", "qua", "qui", "sex", "sab", "dom")  # Monday first, as Schedule counts
DEFAULT_ZONE = "America/Sao_Paulo"
# Brazil's zones first in the editor's list: the companies this is for are there.
BRAZIL_ZONES = ("America/Sao_Paulo", "America/Bahia", "America/Fortaleza", "America/Recife",
                "America/Maceio", "America/Belem", "America/Araguaina", "America/Santarem",
                "America/Manaus", "America/Cuiaba", "America/Campo_Grande",
                "America/Porto_Velho", "America/Boa_Vista", "America/Rio_Branco",
                "America/Eirunepe", "America/Noronha")
SUGGESTED = {day: "08:00-18:00" for day in WEEKDAYS[:5]}  # a new team's first draft
_CLOCK = re.compile(r"^(\d{1,2})(?::?(\d{2}))?h?$")
_SPLIT = re.compile(r"[,;\n]+")


def week_of(hours: Mapping[str, Any] | None) -> dict[str, str]:
    """The editor's fields for stored hours: ``always`` ("1" for always open), ``timezone``,
    one line per weekday and ``closed`` (holidays as dd/mm/aaaa)."""
    if hours is None:
        return {"always": "1", "timezone": DEFAULT_ZONE, "closed": "", **SUGGESTED}
    schedule = Schedule.from_dict(hours)
    lines = {day: ", ".join(_spans(schedule.hours.get(i, ()))) for i, day in enumerate(WEEKDAYS)}
    return {"always": "", "timezone": schedule.timezone, **lines,
            "closed": ", ".join(f"{d:%d/%m/%Y}" for d in sorted(schedule.closed))}


def hours_from_week(form: Mapping[str, str]) -> dict[str, Any] | None:
    """The hours JSON for the editor's fields (None: always open), checked as the API checks
    it. A FieldError names each refused line: a weekday, ``timezone``, ``closed`` or ``week``
    (no day has hours)."""
    if form.get("always"):
        return None
    problems: dict[str, str] = {}
    week: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        try:
            week[day] = _line(form.get(day, ""))
        except ValueError as exc:
            problems[day], week[day] = str(exc), []
    closed = []
    for text in _SPLIT.split(form.get("closed", "").replace(" ", ",")):
        if text.strip():
            try:
                closed.append(_day(text.strip()).isoformat())
            except ValueError:
                problems["closed"] = f"{text.strip()!r} is not a date (dd/mm/aaaa)"
    if not problems and not any(week.values()):
        problems["week"] = "no day has hours: write some, or mark the team always open"
    hours: dict[str, Any] = {"timezone": form.get("timezone") or DEFAULT_ZONE,
                             "hours": _ranges(week)}
    if closed:
        hours["closed"] = sorted(set(closed))
    if not problems:
        try:
            people.check_hours(hours)
        except Invalid as exc:
            problems[exc.field or "week"] = str(exc)
    if problems:
        raise FieldError(problems)
    return hours


def summary(hours: Mapping[str, Any] | None) -> list[str]:
    """Stored hours in short lines ("seg-sex 08:00-18:00"); empty for always open."""
    if hours is None:
        return []
    week = week_of(hours)
    return [f"{days} {', '.join(spans)}"
            for days, spans in _ranges({d: _line(week[d]) for d in WEEKDAYS}).items()]


def open_now(hours: Mapping[str, Any] | None, now: datetime) -> bool:
    """Whether a team with these hours takes customers at ``now`` (always, without hours)."""
    return hours is None or Schedule.from_dict(hours).is_open(now)


@cache
def zones() -> tuple[str, ...]:
    """The time zones the editor offers: Brazil's first, then every other the system knows."""
    rest = sorted(z for z in available_timezones() if "/" in z and z not in BRAZIL_ZONES
                  and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))
    return (*BRAZIL_ZONES, "UTC", *rest)


def _spans(spans: tuple[tuple[time, time], ...]) -> list[str]:
    return [f"{a:%H:%M}-{'24:00' if b == time.max else f'{b:%H:%M}'}" for a, b in spans]


def _line(text: str) -> list[str]:
    """One weekday's intervals, each as HH:MM-HH:MM; "" is closed that day."""
    spans = []
    for part in _SPLIT.split(text):
        part = part.replace(" ", "")
        if not part:
            continue
        ends = part.split("-")
        if len(ends) != 2:
            raise ValueError(f"{part!r} is not an interval HH:MM-HH:MM")
        opens, closes = (_clock(e, part) for e in ends)
        if closes != "24:00" and closes <= opens:
            raise ValueError(f"{part!r} closes before it opens (split an overnight interval)")
        spans.append(f"{opens}-{closes}")
    return spans


def _clock(text: str, part: str) -> str:
    """"8", "8h", "8:00", "0800" and "08:00" as "08:00"; "24:00" stays (the end of a day)."""
    found = _CLOCK.match(text)
    hour, minute = (int(found.group(1)), int(found.group(2) or 0)) if found else (-1, -1)
    if (hour, minute) == (24, 0):
        return "24:00"
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{part!r} is not an interval HH:MM-HH:MM")
    return f"{hour:02d}:{minute:02d}"


def _day(text: str) -> date:
    if "/" in text:
        return datetime.strptime(text, "%d/%m/%Y").date()
    return date.fromisoformat(text)


def _ranges(week: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Consecutive days with the same hours as one range: seg..sex alike is "seg-sex"."""
    out: dict[str, list[str]] = {}
    run: list[str] = []
    for day in [*WEEKDAYS, ""]:
        if run and (not day or week[day] != week[run[0]]):
            if week[run[0]]:
                out[run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}"] = week[run[0]]
            run = []
        if day:
            run.append(day)
    return out
