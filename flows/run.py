"""One call of ``flows.step`` at work: what it says, stores, traces and where it goes.

``Run`` enters nodes and runs on through the automatic ones (messages, tags, fields,
conditions) until one pauses; ``flows.step`` decides what the incoming event does first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flows import answers
from flows.conditions import HoursCond, holds
from flows.events import (
    Action,
    AskAi,
    Context,
    EndSession,
    Handoff,
    HttpRequest,
    Incoming,
    RemoveTag,
    SendMedia,
    SendText,
    SetField,
    SetTag,
    State,
    Wait,
)
from flows.nodes import (
    AiNode,
    ConditionNode,
    EndNode,
    Flow,
    HandoffNode,
    HttpNode,
    MenuNode,
    MessageNode,
    Node,
    QuestionNode,
    RemoveTagNode,
    SetFieldNode,
    SetTagNode,
    WaitNode,
)
from flows.reading import menu_text
from flows.text import render


@dataclass
class Run:
    """One call's work in progress (never returned: the Result is frozen)."""

    flow: Flow
    state: State
    context: Context
    incoming: Incoming
    cap: int
    actions: list[Action] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    carried: str = ""  # a question that picked a menu option by meaning, for the next AI node
    rest: str = ""  # a burst's messages after the one that answered: for the next node
    refused: bool = False  # the last answer consumed was refused (``refuse``)

    def values(self) -> dict[str, str]:
        out = {"contact.name": self.context.contact_name,
               "contact.phone": self.context.contact_phone,
               "instance.name": self.context.instance_name}
        out.update({f"fields.{k}": v for k, v in self.state.fields.items()})
        out.update({f"vars.{k}": v for k, v in self.state.vars.items()})
        return out

    def fill(self, template: str) -> str:
        return render(template, self.values())

    def say(self, template: str) -> None:
        text = self.fill(template)
        if text.strip():
            self.actions.append(SendText(text))

    def store(self, target: str, value: str) -> None:
        space, key = target.split(".", 1)
        if space == "fields":
            self.state = replace(self.state, fields={**self.state.fields, key: value})
            self.actions.append(SetField(key, value))
        else:
            self.state = replace(self.state, vars={**self.state.vars, key: value})

    def pause(self, node: Node, waiting_for: str) -> None:
        self.state = replace(self.state, node=node.id, waiting_for=waiting_for, tries=0, turns=0)
        self.carried = ""  # a node that waits has its own question: the customer's is spent

    def ask(self, node: AiNode, text: str, **how: Any) -> None:
        """Hand the customer's message to the grounded assistant and wait for its answer."""
        self.actions.append(AskAi(text, self.fill(node.persona), node.knowledge_base,
                                  node.model, node.max_tokens))
        self.state = replace(self.state, waiting_for="ai")
        self.trace.append({"node": node.id, "ai": "asked", **how, "turn": self.state.turns + 1})

    def finish(self, status: str) -> None:
        self.state = replace(self.state, status=status, waiting_for="customer")

    def goto(self, target: str | None) -> None:
        """Enter ``target`` and run on through automatic nodes until one pauses."""
        while target is not None:
            if self.steps >= self.cap:
                self.trace.append({"node": target, "error": "step_cap", "cap": self.cap})
                self.actions.append(EndSession("step_cap"))
                self.finish("ended")
                return
            if target not in self.flow.nodes:  # only an unvalidated flow gets here
                self.trace.append({"node": target, "error": "node_gone"})
                self.actions.append(EndSession("flow_changed"))
                self.finish("ended")
                return
            self.steps += 1
            node = self.flow.nodes[target]
            self.trace.append({"node": node.id, "entered": node.kind})
            target = self.enter(node)

    def enter(self, node: Node) -> str | None:
        """Do what entering ``node`` does; the next node to enter, or None when it pauses."""
        if isinstance(node, MessageNode):
            self.say(node.text)
            if node.media is not None:
                m = node.media
                self.actions.append(SendMedia(self.fill(m.ref), self.fill(m.caption), m.mime,
                                              m.filename))
            return node.next
        if isinstance(node, SetTagNode | RemoveTagNode):
            adding = isinstance(node, SetTagNode)
            tags = set(self.state.tags)
            for tag in node.tags:
                (tags.add if adding else tags.discard)(tag)
                self.actions.append(SetTag(tag) if adding else RemoveTag(tag))
            self.state = replace(self.state, tags=frozenset(tags))
            return node.next
        if isinstance(node, SetFieldNode):
            self.store(node.field, self.fill(node.value))
            return node.next
        if isinstance(node, ConditionNode):
            return self.choose(node)
        if isinstance(node, MenuNode):
            self.say(menu_text(node))
            self.pause(node, "customer")
        elif isinstance(node, QuestionNode):
            self.say(node.text)
            self.pause(node, "customer")
        elif isinstance(node, HttpNode):
            self.actions.append(HttpRequest(
                node.method, self.fill(node.url), node.timeout,
                {k: self.fill(v) for k, v in node.headers.items()}, self.body(node.body),
                dict(node.save)))
            self.pause(node, "http")
        elif isinstance(node, AiNode):
            self.say(node.text)
            question = self.carried
            self.pause(node, "customer")
            if question:  # "qto demora a entrega?" chose "dúvidas": it is answered, not lost
                self.ask(node, question, carried="menu")
        elif isinstance(node, WaitNode):
            self.actions.append(Wait(node.seconds))
            self.pause(node, "timer")
        elif isinstance(node, HandoffNode):
            said = len(self.actions)
            self.say(node.text)
            self.actions.append(Handoff(node.team, self.fill(node.note),
                                        said=len(self.actions) > said))
            self.state = replace(self.state, node=node.id)
            self.finish("handed_off")
        elif isinstance(node, EndNode):
            self.say(node.text)
            self.actions.append(EndSession("end"))
            self.state = replace(self.state, node=node.id)
            self.finish("ended")
        return None

    def body(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, Mapping):
            return {k: self.body(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.body(v) for v in value]
        return value

    def choose(self, node: ConditionNode) -> str:
        values = self.values()
        for missing in sorted({c.schedule for b in node.branches for c in b.when
                               if isinstance(c, HoursCond)} - set(self.context.schedules)):
            self.trace.append({"node": node.id, "schedule": missing,
                               "unknown": "taken as always open"})
        for i, branch in enumerate(node.branches):
            if all(holds(c, tags=self.state.tags, values=values,
                         instance=self.context.instance_name,
                         schedules=self.context.schedules, now=self.incoming.now)
                   for c in branch.when):
                self.trace.append({"node": node.id, "branch": i})
                return branch.next
        self.trace.append({"node": node.id, "branch": "otherwise"})
        return node.otherwise

    def refuse(self, node: MenuNode | QuestionNode, why: str, **detail: Any) -> str | None:
        """A refused answer: ask again, or after ``max_retries`` re-asks, ``on_fail``."""
        self.refused = True
        tries = self.state.tries + 1
        if tries > node.max_retries:
            self.trace.append({"node": node.id, "invalid": why, **detail, "tries": tries,
                               "next": "on_fail"})
            return node.on_fail
        self.trace.append({"node": node.id, "invalid": why, **detail, "tries": tries})
        self.state = replace(self.state, tries=tries)
        if isinstance(node, MenuNode):
            self.say(node.error_text)
            self.say(menu_text(node))
        else:
            self.say(node.error_text or answers.ERROR_TEXTS[node.validate])
        return None
