"""Flows to and from data: YAML for people, a dict for the JSON API.

Reading checks the shape of every field against the node classes' own annotations and refuses
what it does not know (a ``nxt:`` typo is an error, not a node without a way out), naming the
path: ``nodes.pedido.max_retries``. Writing leaves out what equals its default, so a flow written
that way reads back and writes out unchanged.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin, get_type_hints

import regex
import yaml

from flows import answers
from flows.conditions import OPS, TAG_MODES, Cond, FieldCond, HoursCond, InstanceCond, TagsCond
from flows.errors import FlowError, Problem
from flows.nodes import (
    NODE_TYPES,
    AiNode,
    Branch,
    Flow,
    HttpNode,
    MenuNode,
    Node,
    QuestionNode,
    WaitNode,
)
from flows.text import CAPTURE, VARIABLE

NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_MISSING = object()


def _fail(path: str, message: str) -> FlowError:
    return FlowError([Problem(path, message)])


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(path, "must be a mapping with text keys")
    return value


def _value(hint: Any, value: Any, path: str) -> Any:
    """One field's value as its annotation types it, or a FlowError naming the path."""
    if hint is Cond:
        return _cond(_mapping(value, path), path)
    if get_origin(hint) in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return None if value is None else _value(inner[0], value, path)
    if hint is Any:
        return value
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _fail(path, "must be text")
        return str(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                hint is int and not isinstance(value, int)):
            raise _fail(path, f"must be {'a whole number' if hint is int else 'a number'}")
        return hint(value)
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        if item is Cond and isinstance(value, Mapping):
            value = [value]  # one condition needs no list
        if not isinstance(value, list | tuple):
            raise _fail(path, "must be a list")
        return tuple(_value(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if get_origin(hint) is Mapping:
        data = _mapping(value, path)
        return {k: _value(str, v, f"{path}.{k}") for k, v in data.items()}
    return _build(hint, _mapping(value, path), path)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The class's resolved annotations, once per class (resolving them is slow)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _build(cls: type[Any], data: Mapping[str, Any], path: str, skip: tuple[str, ...] = ()) -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in data:
        if key not in fields and key not in skip:
            raise _fail(f"{path}.{key}", f"is not a field of {_name(cls)} (it has: "
                        f"{', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _value(hints[name], data[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail(f"{path}.{name}", f"is required in {_name(cls)}")
    return cls(**kwargs)


def _name(cls: type[Any]) -> str:
    kind = getattr(cls, "kind", None)
    return f"a {kind} node" if isinstance(kind, str) else cls.__name__.lower()


def _cond(data: Mapping[str, Any], path: str) -> Cond:
    if "tags" in data:
        tags = _mapping(data["tags"], f"{path}.tags")
        if len(data) != 1 or len(tags) != 1 or next(iter(tags)) not in TAG_MODES:
            raise _fail(f"{path}.tags", "must be one of {any: [...]}, {all: [...]}, "
                        "{none: [...]}")
        mode, names = next(iter(tags.items()))
        return TagsCond(mode, _value(tuple[str, ...], names, f"{path}.tags.{mode}"))
    if "field" in data:
        cond = _build(FieldCond, {"var": data["field"], **data}, path, skip=("field",))
        if not VARIABLE.match(cond.var):
            raise _fail(f"{path}.field", f"{cond.var!r} is not a variable (fields.key, ...)")
        if cond.op not in OPS:
            raise _fail(f"{path}.op", f"must be one of {', '.join(sorted(OPS))}")
        return cond
    if "business_hours" in data:
        hours: HoursCond = _build(HoursCond, {"schedule": data["business_hours"], **data}, path,
                                  skip=("business_hours",))
        return hours
    if "instance" in data and len(data) == 1:
        names = [data["instance"]] if isinstance(data["instance"], str) else data["instance"]
        return InstanceCond(_value(tuple[str, ...], names, f"{path}.instance"))
    raise _fail(path, "must be a condition: tags, field, business_hours or instance")


def _check(node: Node, path: str) -> None:
    """What the annotations cannot say about one node's values."""
    if isinstance(node, MenuNode):
        if not node.options:
            raise _fail(f"{path}.options", "a menu needs at least one option")
        if not 0 <= node.min_score <= 1:
            raise _fail(f"{path}.min_score", "must be between 0 and 1")
    if isinstance(node, QuestionNode):
        if node.validate not in answers.KINDS:
            raise _fail(f"{path}.validate", f"must be one of {', '.join(sorted(answers.KINDS))}")
        if node.validate == "regex":
            try:
                regex.compile(node.pattern)  # the engine the step matches with
            except regex.error as exc:
                raise _fail(f"{path}.pattern", f"is not a regular expression: {exc}") from None
            if not node.pattern:
                raise _fail(f"{path}.pattern", "a regex question needs a pattern")
    if isinstance(node, HttpNode):
        if node.method not in METHODS:
            raise _fail(f"{path}.method", f"must be one of {', '.join(sorted(METHODS))}")
        if not re.match(r"^https?://", node.url):
            raise _fail(f"{path}.url", "must start with http:// or https://")
        if not 0 < node.timeout <= 60:
            raise _fail(f"{path}.timeout", "must be over 0 and at most 60 seconds")
    if isinstance(node, AiNode) and node.max_turns < 1:
        raise _fail(f"{path}.max_turns", "must be at least 1")
    if isinstance(node, WaitNode) and not 0 < node.seconds <= 86400:
        raise _fail(f"{path}.seconds", "must be over 0 and at most a day (86400)")
    if isinstance(node, MenuNode | QuestionNode) and node.max_retries < 0:
        raise _fail(f"{path}.max_retries", "must be 0 or more")
    for target in node.captures():
        where = f"{path}.save.{target}" if isinstance(node, HttpNode) else (
            f"{path}.{'save_as' if isinstance(node, QuestionNode) else 'field'}")
        if not CAPTURE.match(target):
            raise _fail(where, f"{target!r} is not a place to store: write fields.<key> "
                        "(the contact's custom field) or vars.<key> (this session's)")


def from_dict(data: Mapping[str, Any]) -> Flow:
    """A flow from its dict form (parsed JSON, or YAML), or a FlowError naming the bad path."""
    data = _mapping(data, "flow")
    for key in data:
        if key not in ("id", "name", "triggers", "start", "nodes"):
            raise _fail(key, "is not a field of a flow (it has: id, name, triggers, start, nodes)")
    nodes: dict[str, Node] = {}
    for node_id, raw in _mapping(data.get("nodes"), "nodes").items():
        path = f"nodes.{node_id}"
        if not NODE_ID.match(node_id):
            raise _fail(path, "a node id is 1 to 64 letters, digits, '_' or '-'")
        raw = _mapping(raw, path)
        kind = raw.get("kind")
        if kind not in NODE_TYPES:
            raise _fail(f"{path}.kind", f"must be one of {', '.join(NODE_TYPES)}")
        node = _build(NODE_TYPES[kind], {"id": node_id, **raw}, path, skip=("kind",))
        _check(node, path)
        nodes[node_id] = node
    for key in ("id", "start"):
        if key not in data:
            raise _fail(key, "is required in a flow")
    return Flow(id=_value(str, data["id"], "id"), start=_value(str, data["start"], "start"),
                nodes=nodes, name=_value(str, data.get("name", ""), "name"),
                triggers=_value(tuple[str, ...], data.get("triggers", []), "triggers"))


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, TagsCond):
        return {"tags": {value.mode: list(value.tags)}}
    if isinstance(value, FieldCond):
        out = {"field": value.var, "op": value.op}
        return out | ({"value": value.value} if value.op not in ("set", "unset") else {})
    if isinstance(value, HoursCond):
        return {"business_hours": value.schedule} | ({} if value.inside else {"inside": False})
    if isinstance(value, InstanceCond):
        return {"instance": list(value.names)}
    if isinstance(value, Branch):
        when = _plain(value.when)
        return {"when": when[0] if len(when) == 1 else when, "next": value.next}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    return value


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else (
            f.default)
        if f.name not in skip and (default is dataclasses.MISSING or value != default):
            out[f.name] = _plain(value)
    return out


def to_dict(flow: Flow) -> dict[str, Any]:
    """The flow as plain data (JSON-ready), defaults left out."""
    out: dict[str, Any] = {"id": flow.id}
    if flow.name:
        out["name"] = flow.name
    if flow.triggers:
        out["triggers"] = list(flow.triggers)
    out["start"] = flow.start
    out["nodes"] = {node_id: {"kind": node.kind, **_fields(node, skip=("id",))}
                    for node_id, node in flow.nodes.items()}
    return out


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping: YAML keeps the last,
    so a node pasted twice (two ``pedido:``) or a field given twice would be dropped
    without a word. Merge keys (``<<: *base``) are YAML's own and pass."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is written twice (lines {seen[key]} and {line}): "
                    "the second would replace the first", key_node.start_mark)
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def from_yaml(text: str) -> Flow:
    """A flow from YAML; a YAML syntax error, or a key written twice, is a FlowError at path
    ``yaml``."""
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader, stricter
    except yaml.YAMLError as exc:
        raise _fail("yaml", f"is not valid YAML: {exc}") from None
    return from_dict(_mapping(data, "flow"))


def to_yaml(flow: Flow) -> str:
    """The flow as YAML, fields in the classes' order, accents kept as written."""
    return yaml.safe_dump(to_dict(flow), sort_keys=False, allow_unicode=True, width=100)

