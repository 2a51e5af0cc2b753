"""Flows as data in the database: reading them from what a manager sends (YAML or the JSON dict
form), checking them against the company's own data, and keeping them by key.

A flow is checked before it is kept, every time: the ``flows`` package knows the shape and the
graph, and this module adds what only the database knows (the custom fields a template may
name, the teams' schedules a condition may name) and what a row can hold (a key that is safe in
a URL and a file name, a name that fits its column). So a stored flow can always be loaded and
run, and the engine never has to second-guess one.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, NamedTuple

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

import flows
from flows.codec import StrictLoader
from server.schema import CustomField, Instance, StoredFlow, Team, utcnow

log = logging.getLogger(__name__)
KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # in URLs and file names as it is
NAME_MAX = 120  # StoredFlow.name
MAX_NESTING = 32  # mappings and lists inside each other; a flow needs about eight


class FlowInUse(ValueError):
    """The flow is an instance's default: removing it would leave that number with nothing to
    start."""


class UnknownFlow(ValueError):
    """An instance was pointed at a flow that is not stored."""


class Company(NamedTuple):
    """What a flow is checked against: the declared custom field keys, the teams' business
    hours by team name (teams without hours are always open and name no schedule), and the
    team names a handoff may name."""

    fields: frozenset[str]
    schedules: dict[str, flows.Schedule]
    teams: frozenset[str] = frozenset()


def _problem(path: str, message: str) -> flows.FlowError:
    return flows.FlowError([flows.Problem(path, message)])


class _Loader(StrictLoader):
    """YAML as ``yaml.safe_load`` reads it, refusing a key written twice (``StrictLoader``) and
    two things a hostile body uses: aliases
    (a few lines of them expand into millions of nodes, the "billion laughs", which checking
    and storing would walk one by one) and flow collections nested deeper than any flow needs
    (PyYAML's scanner takes time in the square of that depth: 100 kB of ``[`` took minutes)."""

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        if self.flow_level >= MAX_NESTING:
            raise yaml.scanner.ScannerError(None, None, f"nested over {MAX_NESTING} levels "
                                            "of [ ] or { }", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "uses an alias (*name): write each "
                                              "part out in full", self.peek_event().start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str) -> flows.Flow:
    """A flow from YAML, or a FlowError naming the bad path (``yaml`` for a syntax error, with
    the parser's words and where)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise _problem("yaml", f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise _problem("yaml", "is nested too deeply") from None
    return from_data(data)


def parse_json(text: str) -> flows.Flow:
    """A flow from its JSON dict form, or a FlowError (``json`` for a syntax error)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _problem("json", f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise _problem("json", "is nested too deeply") from None
    return from_data(data)


def from_data(data: Any) -> flows.Flow:
    """A flow from already parsed data (the dict form), or a FlowError. Data nested deeper
    than any flow is refused first: reading, checking and writing a flow walk it by recursion
    (an HTTP node's ``body`` is free-form JSON)."""
    if not isinstance(data, dict):
        raise _problem("flow", "must be a mapping (id, name, triggers, start, nodes)")
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_NESTING:
            raise _problem("flow", f"is nested over {MAX_NESTING} levels deep")
        inner = value.values() if isinstance(value, dict) else value if isinstance(
            value, list) else ()
        todo.extend((v, depth + 1) for v in inner if isinstance(v, dict | list))
    return flows.from_dict(data)


def context_for_validation(s: Session) -> Company:
    """The company's data a flow is checked against. A team whose stored hours cannot be read
    names no schedule, so a flow leaning on it is refused rather than run on a guess."""
    fields = frozenset(s.scalars(select(CustomField.key)))
    schedules: dict[str, flows.Schedule] = {}
    teams = list(s.scalars(select(Team).order_by(Team.name)))
    for team in teams:
        if not team.hours:  # SQL NULL or JSON null alike: always open
            continue
        try:
            schedules[team.name] = flows.Schedule.from_dict(team.hours)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("team %r has unreadable hours, left out of flow checks: %s",
                        team.name, exc)
    return Company(fields, schedules, frozenset(t.name for t in teams))


def problems(s: Session, flow: flows.Flow) -> list[flows.Problem]:
    """Everything wrong with ``flow`` as the company would run it; empty when it may be kept."""
    found: list[flows.Problem] = []
    if not KEY.match(flow.id):
        found.append(flows.Problem("id", "a flow id is 1 to 64 letters, digits, '_' or '-'"))
    if len(flow.name) > NAME_MAX:
        found.append(flows.Problem("name", f"is over {NAME_MAX} characters"))
    company = context_for_validation(s)
    return found + flows.check(flow, company.fields, schedules=company.schedules,
                               teams=company.teams, declared_only=True)


def save(s: Session, flow: flows.Flow, *, enabled: bool | None = None) -> StoredFlow:
    """Keep ``flow`` under its id: a new row (version 1), or the same row replaced (version + 1).
    ``enabled`` None leaves a replaced flow as it was (a new one is enabled): re-importing a
    flow a manager switched off does not switch it on. A FlowError if it may not run."""
    found = problems(s, flow)
    if found:
        raise flows.FlowError(found)
    row = s.scalar(select(StoredFlow).where(StoredFlow.key == flow.id).with_for_update())
    if row is None:
        row = StoredFlow(key=flow.id, version=1, enabled=True if enabled is None else enabled)
        s.add(row)
    else:
        row.version += 1
        row.updated_at = utcnow()
        if enabled is not None:
            row.enabled = enabled
    row.name, row.definition = flow.name, flows.to_dict(flow)
    s.flush()
    return row


def follow_team_rename(s: Session, old: str, new: str) -> list[str]:
    """Rename ``old`` to ``new`` wherever a stored flow names the team: its handoff nodes and
    its conditions' business hours (each flow a new version). Left as they were, its handoffs
    went to the common queue and its hours read as always open, without a word to anyone.
    Returns the keys of the flows changed; called in the rename's transaction, after it."""
    changed = []
    rows = s.scalars(select(StoredFlow).order_by(StoredFlow.key).with_for_update())
    for row in rows:
        definition = json.loads(json.dumps(row.definition))  # a copy to edit
        if _rename(definition.get("nodes"), old, new):
            # Stored as it is, not through ``save``: only the name changed, and a flow that
            # no longer passes for another reason must not block the team's rename.
            row.definition = definition
            row.version, row.updated_at = row.version + 1, utcnow()
            changed.append(row.key)
    if changed:
        log.info("team %r renamed %r: flows %s follow", old, new, ", ".join(changed))
    return changed


def _rename(nodes: Any, old: str, new: str) -> bool:
    """Rewrite, in place, the ``team`` of each handoff node that names ``old`` (in any case,
    as a handoff finds its team) and each ``business_hours`` of a condition's branches that
    names it (exactly, as a schedule is found); whether any was. Nothing else is touched: an
    HTTP node's body may say "business_hours" and mean something else."""
    found = False
    for node in nodes.values() if isinstance(nodes, dict) else ():
        if not isinstance(node, dict):
            continue
        if node.get("kind") == "handoff" and str(node.get("team", "")).lower() == old.lower():
            node["team"], found = new, True
        if node.get("kind") != "condition":
            continue
        for branch in node.get("branches") or ():
            when = branch.get("when") if isinstance(branch, dict) else None
            for cond in when if isinstance(when, list) else [when]:
                if isinstance(cond, dict) and cond.get("business_hours") == old:
                    cond["business_hours"], found = new, True
    return found


def get(s: Session, key: str) -> StoredFlow | None:
    return s.scalar(select(StoredFlow).where(StoredFlow.key == key))


def listing(s: Session) -> list[StoredFlow]:
    """Every stored flow, by key."""
    return list(s.scalars(select(StoredFlow).order_by(StoredFlow.key)))


def load(s: Session, key: str) -> flows.Flow:
    """The stored flow ``key`` as the engine runs it; LookupError if there is none."""
    row = get(s, key)
    if row is None:
        raise LookupError(f"no flow {key!r}")
    return flows.from_dict(row.definition)


def enabled_flows(s: Session) -> list[flows.Flow]:
    """The flows that may start, by key. One that no longer reads (written by an older version
    of the engine) is left out and logged: it must not stop the others."""
    out = []
    for row in s.scalars(select(StoredFlow).where(StoredFlow.enabled.is_(True))
                         .order_by(StoredFlow.key)):
        try:
            out.append(flows.from_dict(row.definition))
        except flows.FlowError as exc:
            log.error("stored flow %r no longer reads, skipped: %s", row.key, exc)
    return out


def set_enabled(s: Session, key: str, enabled: bool) -> StoredFlow:
    """Switch a flow on or off. Switching on checks it again: a custom field or a team's hours
    it leans on may have gone since it was stored (a FlowError then)."""
    row = get(s, key)
    if row is None:
        raise LookupError(f"no flow {key!r}")
    if enabled and not row.enabled:
        found = problems(s, flows.from_dict(row.definition))
        if found:
            raise flows.FlowError(found)
    row.enabled = enabled
    s.flush()
    return row


def users(s: Session, key: str) -> list[str]:
    """The live instances that start ``key`` by default, by name."""
    return list(s.scalars(select(Instance.name).where(
        Instance.default_flow == key, Instance.deleted_at.is_(None)).order_by(Instance.name)))


def delete(s: Session, key: str) -> None:
    """Remove a flow; LookupError if there is none, FlowInUse while a number starts it by
    default (naming the numbers, so the manager knows what to change first)."""
    row = get(s, key)
    if row is None:
        raise LookupError(f"no flow {key!r}")
    using = users(s, key)
    if using:
        raise FlowInUse(f"flow {key!r} is the default flow of {', '.join(using)}: "
                        "give them another default (or none) first")
    s.delete(row)
    s.flush()


def require(s: Session, key: str | None) -> None:
    """An instance's ``default_flow`` must name a stored flow (None is AI mode)."""
    if key is not None and get(s, key) is None:
        raise UnknownFlow(f"no flow {key!r} to start by default: import it first "
                          "(POST /api/flows/import or `atende flows import`)")


def problem_list(exc: flows.FlowError) -> list[dict[str, str]]:
    """The problems as the API and the CLI's ``--json`` give them."""
    return [{"path": p.path, "problem": p.message} for p in exc.problems]
