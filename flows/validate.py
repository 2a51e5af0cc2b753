"""Whether a flow may run: every problem found, each with the path of the bad node's part.

A flow is refused when a target is missing, a node cannot be reached from ``start``, a loop can
run forever (automatic nodes only, which would spin inside one step; or a closed loop with no
node waiting for the customer, which would send or request forever), a run of automatic nodes is
longer than the step's cap, or a template or condition names a variable no one sets: known are
``contact.name``, ``contact.phone``, ``instance.name``, the declared custom fields the caller
passes, and what the flow itself stores (questions' ``save_as``, ``set_field``, HTTP ``save``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from flows.conditions import FieldCond, HoursCond
from flows.errors import FlowError, Problem
from flows.nodes import (
    PAUSING,
    ConditionNode,
    Flow,
    HandoffNode,
    RemoveTagNode,
    SetTagNode,
)
from flows.step import MAX_AUTO_STEPS
from flows.text import BUILTIN, normalize, template_problem, variables

WAITS_FOR_CUSTOMER = frozenset({"menu", "question", "ai"})


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's, iterative: a long chain must not overflow the
    stack), successors' components before their predecessors'."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = graph[node]
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def _cyclic(comp: list[str], graph: dict[str, list[str]]) -> bool:
    return len(comp) > 1 or comp[0] in graph[comp[0]]


def _graph_problems(flow: Flow, max_steps: int) -> list[Problem]:
    problems: list[Problem] = []
    order = list(flow.nodes)
    if flow.start not in flow.nodes:
        problems.append(Problem("start", f"names {flow.start!r}, which is not a node"))
    graph: dict[str, list[str]] = {}
    for node_id, node in flow.nodes.items():
        graph[node_id] = []
        for sub, target in node.edges():
            if target in flow.nodes:
                graph[node_id].append(target)
            else:
                problems.append(Problem(f"nodes.{node_id}.{sub}",
                                        f"goes to {target!r}, which is not a node"))
    seen = {flow.start} if flow.start in flow.nodes else set()
    todo = list(seen)
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    problems += [Problem(f"nodes.{n}", f"cannot be reached from start ({flow.start!r})")
                 for n in order if n not in seen]

    automatic = {n: [t for t in graph[n] if flow.nodes[t].kind not in PAUSING]
                 for n in order if flow.nodes[n].kind not in PAUSING}
    looping = False
    for comp in _components(automatic):
        if not _cyclic(comp, automatic):
            continue
        looping = True
        first = min(comp, key=order.index)
        sub = next(s for s, t in flow.nodes[first].edges() if t in comp)
        problems.append(Problem(f"nodes.{first}.{sub}", "closes a loop of automatic nodes ("
                                + " → ".join(sorted(comp, key=order.index)) + ") in which no "
                                "node waits for the customer: it would never stop"))
    for comp in _components(graph):
        members = set(comp)
        closed = all(t in members for n in comp for t in graph[n])
        if closed and _cyclic(comp, graph) and not any(
                flow.nodes[n].kind in WAITS_FOR_CUSTOMER for n in comp):
            first = min(comp, key=order.index)
            if not set(comp) <= set(automatic):  # an automatic loop is already named above
                problems.append(Problem(f"nodes.{first}", "is in a loop that no path leaves ("
                                        + " → ".join(sorted(comp, key=order.index)) + ") and "
                                        "no node in it waits for the customer"))
    if not looping:
        entered: dict[str, int] = {}
        for (node_id,) in (c for c in _components(automatic)):
            entered[node_id] = 1 + max((entered.get(t, 1) for t in graph[node_id]), default=0)
        longest = [n for n in order if entered.get(n, 0) > max_steps]
        if longest:
            problems.append(Problem(f"nodes.{longest[0]}", f"starts a run of {entered[longest[0]]}"
                                    f" nodes without a pause, over the cap of {max_steps}"))
    return problems


def _variable_problems(flow: Flow, known: set[str], schedules: Collection[str] | None
                       ) -> list[Problem]:
    problems: list[Problem] = []
    listing = ", ".join(sorted(known))

    def unknown(path: str, name: str) -> None:
        problems.append(Problem(path, f"uses {name}, which is not a known variable (known: "
                                f"{listing})"))

    for node_id, node in flow.nodes.items():
        for sub, template in node.templates():
            why = template_problem(template)
            if why:
                problems.append(Problem(f"nodes.{node_id}.{sub}", why))
            for name in variables(template):
                if name not in known:
                    unknown(f"nodes.{node_id}.{sub}", name)
        if isinstance(node, ConditionNode):
            for i, branch in enumerate(node.branches):
                for j, cond in enumerate(branch.when):
                    path = f"nodes.{node_id}.branches[{i}].when[{j}]"
                    if isinstance(cond, FieldCond) and cond.var not in known:
                        unknown(f"{path}.field", cond.var)
                    if (isinstance(cond, HoursCond) and schedules is not None
                            and cond.schedule not in schedules):
                        problems.append(Problem(f"{path}.business_hours", f"names schedule "
                                                f"{cond.schedule!r}, which is not one of the "
                                                f"company's ({', '.join(sorted(schedules))})"))
    return problems


def check(flow: Flow, fields: Iterable[str] = (), *, schedules: Collection[str] | None = None,
          teams: Collection[str] | None = None, declared_only: bool = False,
          max_steps: int = MAX_AUTO_STEPS) -> list[Problem]:
    """Every problem with ``flow``, given the company's declared custom field keys and, when
    known, its schedule and team names (None skips that check); empty when it may run. With
    ``declared_only`` a flow may store only into declared fields (the company's data is
    typed: a field is created on its page, not by a typo in a flow)."""
    fields = set(fields)
    known = set(BUILTIN) | {f"fields.{k}" for k in fields}
    stored = {(node_id, target) for node_id, node in flow.nodes.items()
              for target in node.captures()}
    known |= {target for _, target in stored}
    problems = [Problem(f"triggers[{i}]", "is empty once punctuation is dropped")
                for i, t in enumerate(flow.triggers) if not normalize(t)]
    problems += _tag_problems(flow)
    if declared_only:
        problems += [Problem(f"nodes.{node_id}", f"stores into {target}, which is not one of "
                             f"the company's custom fields ({', '.join(sorted(fields))})")
                     for node_id, target in sorted(stored)
                     if target.startswith("fields.") and target[7:] not in fields]
    if teams is not None:
        names = {t.lower() for t in teams}
        problems += [Problem(f"nodes.{node_id}.team", f"names team {node.team!r}, which is "
                             f"not one of the company's ({', '.join(sorted(teams))})")
                     for node_id, node in flow.nodes.items()
                     if isinstance(node, HandoffNode) and node.team.lower() not in names]
    return problems + _graph_problems(flow, max_steps) + _variable_problems(
        flow, known, schedules)


def _tag_problems(flow: Flow) -> list[Problem]:
    """A tag node marks or unmarks named tags: none, or one with no name, does nothing. Checked
    here, when a flow is saved, not when a stored one is read: one saved before still runs."""
    out = []
    for node_id, node in flow.nodes.items():
        if isinstance(node, SetTagNode | RemoveTagNode):
            if not node.tags:
                out.append(Problem(f"nodes.{node_id}.tags", "name at least one tag"))
            out += [Problem(f"nodes.{node_id}.tags[{i}]", "a tag needs a name")
                    for i, tag in enumerate(node.tags) if not tag.strip()]
    return out


def validate(flow: Flow, fields: Iterable[str] = (), *, schedules: Collection[str] | None = None,
             max_steps: int = MAX_AUTO_STEPS) -> Flow:
    """The flow itself when it may run, else a FlowError holding every problem."""
    problems = check(flow, fields, schedules=schedules, max_steps=max_steps)
    if problems:
        raise FlowError(problems)
    return flow
