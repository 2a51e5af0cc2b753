"""A flow as data: its nodes, the conditions they test, and the flow itself.

Every class is a frozen dataclass built only by ``flows.codec`` (from YAML or a JSON dict), which
checks shapes and names the path of what is wrong; ``flows.validate`` checks the graph. Each node
says where it goes (``edges``), which texts are templates (``templates``) and which variables it
stores (``captures``), so validation and the step read one description of a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import regex

from flows.conditions import Cond, FieldCond

Edge = tuple[str, str]  # (path inside the node, target node id)




@dataclass(frozen=True)
class Option:
    text: str
    next: str


@dataclass(frozen=True)
class Branch:
    """Taken when every condition in ``when`` holds."""

    when: tuple[Cond, ...]
    next: str


@dataclass(frozen=True)
class Media:
    """A file to send: ``ref`` is what the caller resolves (a stored file's name, or a URL)."""

    ref: str
    caption: str = ""
    mime: str = ""
    filename: str = ""


class _Node:
    """What every node answers; a kind overrides what applies to it."""

    def edges(self) -> list[Edge]:
        return []

    def templates(self) -> list[tuple[str, str]]:
        return []

    def captures(self) -> list[str]:
        return []


class _Onward(_Node):
    """A node that always goes on to its ``next``."""

    next: str

    def edges(self) -> list[Edge]:
        return [("next", self.next)]


@dataclass(frozen=True)
class MessageNode(_Onward):
    kind: ClassVar[str] = "message"
    id: str
    next: str
    text: str = ""
    media: Media | None = None

    def templates(self) -> list[tuple[str, str]]:
        out = [("text", self.text)]
        if self.media is not None:
            out += [("media.ref", self.media.ref), ("media.caption", self.media.caption)]
        return out


@dataclass(frozen=True)
class MenuNode(_Node):
    """Numbered options; the answer is a number, an option's text, or free text matched by
    meaning. Invalid answers are asked again ``max_retries`` times, then ``on_fail``."""

    kind: ClassVar[str] = "menu"
    id: str
    text: str
    options: tuple[Option, ...]
    on_fail: str
    error_text: str = "Não entendi sua resposta. Responda com o número de uma das opções."
    max_retries: int = 2
    min_score: float = 0.6
    list_options: bool = True

    def edges(self) -> list[Edge]:
        return [(f"options[{i}].next", o.next) for i, o in enumerate(self.options)] + [
            ("on_fail", self.on_fail)]

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text), ("error_text", self.error_text)] + [
            (f"options[{i}].text", o.text) for i, o in enumerate(self.options)]


@dataclass(frozen=True)
class QuestionNode(_Node):
    """Asks, checks the answer (``validate``: see ``flows.answers``) and stores it in
    ``save_as`` (``fields.<key>`` on the contact, or ``vars.<key>`` for this session)."""

    kind: ClassVar[str] = "question"
    id: str
    text: str
    save_as: str
    next: str
    on_fail: str
    validate: str = "text"
    pattern: str = ""
    error_text: str = ""
    max_retries: int = 2

    def edges(self) -> list[Edge]:
        return [("next", self.next), ("on_fail", self.on_fail)]

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text), ("error_text", self.error_text)]

    def captures(self) -> list[str]:
        return [self.save_as]

    def compiled(self) -> regex.Pattern[str] | None:
        return regex.compile(self.pattern) if self.validate == "regex" else None


@dataclass(frozen=True)
class ConditionNode(_Node):
    """The first branch whose conditions all hold, else ``otherwise``."""

    kind: ClassVar[str] = "condition"
    id: str
    branches: tuple[Branch, ...]
    otherwise: str

    def edges(self) -> list[Edge]:
        return [(f"branches[{i}].next", b.next) for i, b in enumerate(self.branches)] + [
            ("otherwise", self.otherwise)]

    def templates(self) -> list[tuple[str, str]]:
        return [(f"branches[{i}].when[{j}].value", c.value)
                for i, b in enumerate(self.branches) for j, c in enumerate(b.when)
                if isinstance(c, FieldCond)]


@dataclass(frozen=True)
class SetTagNode(_Onward):
    kind: ClassVar[str] = "set_tag"
    id: str
    tags: tuple[str, ...]
    next: str


@dataclass(frozen=True)
class RemoveTagNode(_Onward):
    kind: ClassVar[str] = "remove_tag"
    id: str
    tags: tuple[str, ...]
    next: str


@dataclass(frozen=True)
class SetFieldNode(_Onward):
    kind: ClassVar[str] = "set_field"
    id: str
    field: str
    value: str
    next: str

    def templates(self) -> list[tuple[str, str]]:
        return [("value", self.value)]

    def captures(self) -> list[str]:
        return [self.field]


@dataclass(frozen=True)
class HttpNode(_Node):
    """A request the caller performs; its JSON answer fills variables through ``save``
    (variable to JSON path, "pedido.status" or "$.itens[0].nome"). A failure, or a path the
    answer lacks, goes to ``on_error``."""

    kind: ClassVar[str] = "http"
    id: str
    url: str
    next: str
    on_error: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    timeout: float = 10.0
    save: Mapping[str, str] = field(default_factory=dict)

    def edges(self) -> list[Edge]:
        return [("next", self.next), ("on_error", self.on_error)]

    def templates(self) -> list[tuple[str, str]]:
        out = [("url", self.url)] + [(f"headers.{k}", v) for k, v in self.headers.items()]
        return out + list(_leaves(self.body, "body"))

    def captures(self) -> list[str]:
        return list(self.save)


@dataclass(frozen=True)
class AiNode(_Node):
    """AI mode: each customer message is answered by the caller's grounded assistant until an
    exit word, or ``max_turns`` answers, lead to ``next``; ``on_error`` (optional) is where a
    failed answer goes (without it the customer may simply ask again)."""

    kind: ClassVar[str] = "ai"
    id: str
    next: str
    text: str = ""
    persona: str = ""
    knowledge_base: str = ""
    model: str = ""
    max_tokens: int = 512
    exit_words: tuple[str, ...] = ()
    max_turns: int = 10
    on_error: str = ""

    def edges(self) -> list[Edge]:
        return [("next", self.next)] + ([("on_error", self.on_error)] if self.on_error else [])

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text), ("persona", self.persona)]


@dataclass(frozen=True)
class HandoffNode(_Node):
    kind: ClassVar[str] = "handoff"
    id: str
    team: str
    text: str = ""
    note: str = ""

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text), ("note", self.note)]


@dataclass(frozen=True)
class WaitNode(_Onward):
    kind: ClassVar[str] = "wait"
    id: str
    seconds: float
    next: str


@dataclass(frozen=True)
class EndNode(_Node):
    kind: ClassVar[str] = "end"
    id: str
    text: str = ""

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text)]


Node = (MessageNode | MenuNode | QuestionNode | ConditionNode | SetTagNode | RemoveTagNode
        | SetFieldNode | HttpNode | AiNode | HandoffNode | WaitNode | EndNode)
NODE_TYPES: dict[str, type[Any]] = {t.kind: t for t in (
    MessageNode, MenuNode, QuestionNode, ConditionNode, SetTagNode, RemoveTagNode, SetFieldNode,
    HttpNode, AiNode, HandoffNode, WaitNode, EndNode)}
# Nodes after which a step call returns: they wait for the customer, for the caller's result,
# or finish the session. Every other kind runs on at once ("automatic").
PAUSING = frozenset({"menu", "question", "http", "ai", "wait", "handoff", "end"})


def _leaves(value: Any, path: str) -> list[tuple[str, str]]:
    """The strings inside a JSON value, each with its path (the templates of a request body)."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [x for k, v in value.items() for x in _leaves(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [x for i, v in enumerate(value) for x in _leaves(v, f"{path}[{i}]")]
    return []


@dataclass(frozen=True)
class Flow:
    """A conversation flow: ``start`` is the first node; ``triggers`` are the keywords that start
    it (``flows.triggers.pick_flow``)."""

    id: str
    start: str
    nodes: Mapping[str, Node]
    name: str = ""
    triggers: tuple[str, ...] = ()
