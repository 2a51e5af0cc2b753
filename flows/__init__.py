"""The pure core of the flow engine: flows as data (YAML, or a dict for the JSON API), their
validation, the keyword that starts one, and ``step``, a pure function of (flow, session state,
incoming event) to the new state, the actions the caller carries out, and a journey.

Nothing here touches a database or the network, and nothing imports the rest of Atende: the
server stores flows and sessions, performs the actions and feeds their results back
([docs/flows.md](../docs/flows.md)).
"""

from flows.codec import from_dict, from_yaml, to_dict, to_yaml
from flows.conditions import Schedule
from flows.errors import FlowError, Problem
from flows.events import (
    Action,
    AiResult,
    AskAi,
    Context,
    EndSession,
    Handoff,
    HttpRequest,
    HttpResult,
    Incoming,
    Matcher,
    Message,
    RemoveTag,
    Result,
    SendMedia,
    SendText,
    SetField,
    SetTag,
    State,
    TimerFired,
    Wait,
    action_to_dict,
    new_state,
    state_from_dict,
    state_to_dict,
)
from flows.nodes import Flow
from flows.step import MAX_AUTO_STEPS, step
from flows.triggers import pick_flow
from flows.validate import check, validate

__all__ = [
    "MAX_AUTO_STEPS", "Action", "AiResult", "AskAi", "Context", "EndSession", "Flow", "FlowError",
    "Handoff", "HttpRequest", "HttpResult", "Incoming", "Matcher", "Message", "Problem",
    "RemoveTag", "Result", "Schedule", "SendMedia", "SendText", "SetField", "SetTag", "State",
    "TimerFired", "Wait", "action_to_dict", "check", "from_dict", "from_yaml", "new_state",
    "pick_flow", "state_from_dict", "state_to_dict", "step", "to_dict", "to_yaml", "validate",
]
