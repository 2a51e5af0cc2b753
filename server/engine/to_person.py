"""A customer in a flow who asks for a person gets one, where the flow would not take the
request: the flow's session ends handed off, as the assistant hands off when asked.

A menu whose options name a person ("3 para falar com um atendente") routes the request as its
author chose; only where none does (before the flow's first node, at a question, at a menu of
other things) does this step in. Left to the flow, the customer was shown the menu, or asked
again for a CPF, until the retries ran out.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

import flows
from server.engine import ai
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import ChatSession
from server.services import assistant, intents, journey


def asks(flow: flows.Flow, state: flows.State, text: str) -> bool:
    """The customer asks for a person ("quero falar com um atendente") where the flow would
    not take it: before its first node, at a question, or at a menu none of whose options it
    names by number or words (one that does, such as the demo's "falar com um atendente",
    routes it as the flow's author chose). The flow would show its menu or ask again, and
    the customer would have to find their way out of it."""
    if state.status != "active" or not intents.asks_for_human(text):
        return False
    if state.waiting_for == "start":
        return True
    node = flow.nodes.get(state.node)
    if state.waiting_for != "customer" or not isinstance(node, flows.MenuNode | flows.QuestionNode):
        return False
    if isinstance(node, flows.MenuNode):
        picked, _, _ = flows.pick_option(node, text, [o.text for o in node.options], None)
        return picked is None
    return True


def hand_off(rt: Runtime, sessions: sessionmaker[Session], turn: Turn, flow: flows.Flow,
                 state: flows.State) -> int | None:
    """Hand off as the assistant does when asked for a person; the flow's session ends."""
    done = ai.reply(rt, sessions, replace(turn, mode="ai"),
                    assistant.use_for(rt.settings, turn.instance),
                    given=assistant.Answer(assistant.HUMAN_ASKED, handoff=True,
                                           reason="asked_for_human"))
    with sessions.begin() as s:
        sess = s.get_one(ChatSession, turn.session_id)
        sess.flow_key = flow.id
        sess.state = flows.state_to_dict(replace(state, status="handed_off"))
        sess.pending = None
        for m in turn.pending:
            journey.record(s, m.id, "flow", trace=[{"node": state.node or flow.start,
                                                    "asked_for": "a person"}])
    return done.outbox_id
