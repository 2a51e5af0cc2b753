"""What goes into a step and what comes out: the incoming events, the session's state, the
actions the caller carries out, and the result that holds them.

All frozen dataclasses, so a step's output cannot be changed behind the state it describes, and
each with a plain-dict form (``state_to_dict``, ``action_to_dict``) for the store and the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from flows.conditions import Schedule

# The embedder stays outside: given the customer's text and the options' texts, the caller's
# matcher names the closest option and its score (0 to 1), or None when nothing is close.
Matcher = Callable[[str, Sequence[str]], "tuple[int, float] | None"]

# -- incoming: each carries ``now`` (business hours are decided at the event's time) ---------


@dataclass(frozen=True, kw_only=True)
class Message:
    """The customer wrote (a media message with no caption is the empty text)."""

    text: str
    now: datetime


@dataclass(frozen=True, kw_only=True)
class HttpResult:
    """What the caller's HTTP request gave: ``ok`` with the decoded JSON in ``data``, or not
    (a timeout, a refused connection, a status the caller counts as failure, invalid JSON)."""

    ok: bool
    now: datetime
    data: Any = None
    status: int | None = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class AiResult:
    """How the caller's AI answer went: ``answered`` (sent to the customer), ``handed_off`` (the
    assistant had no evidence and handed the customer to a person itself) or ``failed``."""

    outcome: str
    now: datetime


@dataclass(frozen=True, kw_only=True)
class TimerFired:
    """The seconds a wait action asked for have passed."""

    now: datetime


Incoming = Message | HttpResult | AiResult | TimerFired

# -- actions, for the caller to carry out in order --------------------------------------------


@dataclass(frozen=True)
class SendText:
    kind: ClassVar[str] = "send_text"
    text: str


@dataclass(frozen=True)
class SendMedia:
    kind: ClassVar[str] = "send_media"
    ref: str
    caption: str = ""
    mime: str = ""
    filename: str = ""


@dataclass(frozen=True)
class SetTag:
    kind: ClassVar[str] = "set_tag"
    tag: str


@dataclass(frozen=True)
class RemoveTag:
    kind: ClassVar[str] = "remove_tag"
    tag: str


@dataclass(frozen=True)
class SetField:
    """Store a custom field on the contact (``vars.*`` stay in the session's state)."""

    kind: ClassVar[str] = "set_field"
    key: str
    value: str


@dataclass(frozen=True)
class HttpRequest:
    """Perform this request and feed back an ``HttpResult``; url, headers and the body's text
    are already filled in. ``save`` (variable to JSON path) says what the flow will read from
    the answer; the step applies it when the ``HttpResult`` comes back, not the caller."""

    kind: ClassVar[str] = "http"
    method: str
    url: str
    timeout: float
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    save: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AskAi:
    """Answer ``text`` in AI mode (the grounded assistant with this persona, knowledge base,
    model and token budget; empty means the instance's own) and feed back an ``AiResult``."""

    kind: ClassVar[str] = "ai"
    text: str
    persona: str = ""
    knowledge_base: str = ""
    model: str = ""
    max_tokens: int = 512


@dataclass(frozen=True)
class Handoff:
    """Hand the conversation to a team of people; the flow's session is over."""

    kind: ClassVar[str] = "handoff"
    team: str
    note: str = ""
    # The handoff node told the customer something itself: the team's own handoff message
    # would say it twice. Not part of what the action is (a message node before it is not it).
    said: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Wait:
    """Feed back a ``TimerFired`` after this many seconds."""

    kind: ClassVar[str] = "wait"
    seconds: float


@dataclass(frozen=True)
class EndSession:
    """The flow's session is over: ``end`` (an end node) or ``step_cap`` (the safety net)."""

    kind: ClassVar[str] = "end"
    reason: str = "end"


Action = (SendText | SendMedia | SetTag | RemoveTag | SetField | HttpRequest | AskAi | Handoff
          | Wait | EndSession)


def action_to_dict(action: Action) -> dict[str, Any]:
    return {"kind": action.kind, **dataclasses.asdict(action)}


# -- the session ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the caller knows of the conversation that the flow reads and never changes."""

    contact_name: str = ""
    contact_phone: str = ""
    instance_name: str = ""
    schedules: Mapping[str, Schedule] = field(default_factory=dict)


WAITING = ("start", "customer", "http", "ai", "timer")
STATUSES = ("active", "ended", "handed_off")


@dataclass(frozen=True)
class State:
    """One conversation's place in one flow. ``waiting_for`` says which incoming event moves it
    (``start``: none yet, any event starts the flow at its ``start`` node); ``tries`` counts
    refused answers at the current node, ``turns`` AI answers at the current AI node. ``tags``
    and ``fields`` start as the contact's and follow the flow's changes."""

    flow_id: str
    node: str = ""
    waiting_for: str = "start"
    status: str = "active"
    tries: int = 0
    turns: int = 0
    tags: frozenset[str] = frozenset()
    fields: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)


def new_state(flow_id: str, *, tags: Sequence[str] | frozenset[str] = (),
              fields: Mapping[str, str] | None = None) -> State:
    """A session about to start, with the contact's current tags and custom fields."""
    return State(flow_id, tags=frozenset(tags), fields=dict(fields or {}))


def state_to_dict(state: State) -> dict[str, Any]:
    out = dataclasses.asdict(state)
    out["tags"] = sorted(state.tags)
    return out


def state_from_dict(data: Mapping[str, Any]) -> State:
    if data.get("waiting_for") not in WAITING or data.get("status") not in STATUSES:
        raise ValueError("not a flow state: waiting_for or status unknown")
    return State(str(data["flow_id"]), str(data.get("node", "")), data["waiting_for"],
                 data["status"], int(data.get("tries", 0)), int(data.get("turns", 0)),
                 frozenset(map(str, data.get("tags", ()))),
                 {str(k): str(v) for k, v in dict(data.get("fields", {})).items()},
                 {str(k): str(v) for k, v in dict(data.get("vars", {})).items()})


@dataclass(frozen=True)
class Result:
    """A step's outcome: the new state, the actions in order, and the journey of what happened
    (one small dict per event: ``{"node": "menu1", "matched": "by_meaning", "score": 0.82}``).
    ``steps`` counts the nodes entered, which the automatic-step cap bounds."""

    state: State
    actions: tuple[Action, ...]
    trace: tuple[Mapping[str, Any], ...]
    steps: int = 0
