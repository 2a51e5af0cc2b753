"""The step: a pure function of (flow, session state, incoming event) to a Result.

It consumes the event at the node the session waits on (a menu's answer, a question's, an HTTP
or AI result, a timer), then runs automatic nodes (messages, tags, fields, conditions) until it
enters one that pauses: it waits for the customer (menu, question, AI mode), needs the caller's
result (http, ai, wait) or finishes the session (handoff, end). Nothing here touches a database
or the network: the caller carries out the actions and feeds back what came of them. A cap on
nodes entered per call is the safety net behind validation, which already refuses any flow that
could reach it.
"""

from __future__ import annotations

from dataclasses import replace

from flows import answers
from flows.events import (
    AiResult,
    Context,
    EndSession,
    HttpResult,
    Incoming,
    Matcher,
    Message,
    Result,
    State,
    TimerFired,
)
from flows.nodes import (
    AiNode,
    Flow,
    HttpNode,
    MenuNode,
    Node,
    QuestionNode,
    WaitNode,
)
from flows.reading import lookup, pick_option
from flows.run import Run
from flows.text import after, burst, normalize, readings

MAX_AUTO_STEPS = 50


def _asks(text: str) -> bool:
    """Whether a menu answer is itself a question or request ("qto tempo demora a entrega pra
    sp?", "quero comprar um sofá"), not just an option's name in other words ("suporte técnico"):
    one that leads to an AI node is asked there, or the customer would have to ask again."""
    return "?" in text or len(normalize(text).split()) >= 4


def _consume(run: Run, node: Node, incoming: Incoming, match: Matcher | None) -> str | None:
    """What the event does at the node the session waits on; the node to enter next, if any."""
    state, waiting = run.state, run.state.waiting_for
    if waiting == "customer" and isinstance(incoming, Message):
        if isinstance(node, MenuNode):
            index, how, answered = pick_option(node, incoming.text,
                                               [run.fill(o.text) for o in node.options], match)
            if index is None:
                return run.refuse(node, **how)
            run.trace.append({"node": node.id, **how, "option": index})
            run.rest = after(incoming.text, answered)
            if how["matched"] == "by_meaning" and _asks(incoming.text):
                run.carried = incoming.text
            return node.options[index].next
        if isinstance(node, QuestionNode):
            # A value (a CPF, an order number) is looked for message by message, in order, so
            # the ones typed after it are left for the nodes after; free text takes the whole.
            lines = burst(incoming.text) if node.validate != "text" else []
            tried = [*lines, incoming.text] if len(lines) > 1 else [incoming.text]
            pattern = node.compiled()  # once, not once per message of the burst
            value, answered = next(((v, r) for r in tried if (
                v := answers.check(node.validate, r, pattern)) is not None), (None, ""))
            if value is None:
                return run.refuse(node, node.validate)
            run.rest = after(incoming.text, answered)
            run.store(node.save_as, value)
            run.trace.append({"node": node.id, "captured": node.save_as})
            return node.next
        if isinstance(node, AiNode):
            words = {normalize(w) for w in node.exit_words}
            said = next((r for r in map(normalize, readings(incoming.text)) if r in words), "")
            if said:
                run.trace.append({"node": node.id, "exit": "exit_word", "word": said})
                return node.next
            run.ask(node, incoming.text)
            return None
    if waiting == "ai" and isinstance(incoming, AiResult) and isinstance(node, AiNode):
        run.trace.append({"node": node.id, "ai": incoming.outcome})
        if incoming.outcome == "handed_off":
            run.finish("handed_off")
            return None
        if incoming.outcome != "answered":
            run.state = replace(state, waiting_for="customer")
            return node.on_error or None
        turns = state.turns + 1
        if turns >= node.max_turns:
            run.trace.append({"node": node.id, "exit": "max_turns", "turns": turns})
            return node.next
        run.state = replace(state, waiting_for="customer", turns=turns)
        return None
    if waiting == "http" and isinstance(incoming, HttpResult) and isinstance(node, HttpNode):
        if not incoming.ok:
            run.trace.append({"node": node.id, "http": "failed", "status": incoming.status,
                              "error": incoming.error[:200]})
            return node.on_error
        found = {target: lookup(incoming.data, path) for target, path in node.save.items()}
        missing = [node.save[t] for t, (ok, _) in found.items() if not ok]
        if missing:
            run.trace.append({"node": node.id, "http": "missing", "paths": missing})
            return node.on_error
        for target, (_, value) in found.items():
            run.store(target, value)
        run.trace.append({"node": node.id, "http": "ok", "saved": sorted(node.save)})
        return node.next
    if waiting == "timer" and isinstance(incoming, TimerFired) and isinstance(node, WaitNode):
        run.trace.append({"node": node.id, "waited": node.seconds})
        return node.next
    run.trace.append({"node": node.id, "ignored": type(incoming).__name__,
                      "waiting_for": waiting})
    return None


_WAITS = {"customer": (MenuNode, QuestionNode, AiNode), "ai": (AiNode,), "http": (HttpNode,),
          "timer": (WaitNode,)}


def _still_waits(flow: Flow, state: State) -> bool:
    """Whether the node the session waits at is still there and still waits for that."""
    node = flow.nodes.get(state.node)
    return node is not None and isinstance(node, _WAITS.get(state.waiting_for, ()))


def step(flow: Flow, state: State, incoming: Incoming, *, context: Context | None = None,
         match: Matcher | None = None, max_steps: int = MAX_AUTO_STEPS) -> Result:
    """The session's next state, the actions to carry out in order, and the journey.

    ``flow`` should be validated (``flows.validate``); ``context`` holds the contact's name and
    phone, the instance's name and the schedules conditions name; ``match`` finds a menu option
    by meaning. An event the session does not wait for (a message while an HTTP result is due)
    changes nothing and is traced as ignored; a finished session ignores everything.
    """
    if state.flow_id != flow.id:
        raise ValueError(f"the state belongs to flow {state.flow_id!r}, not {flow.id!r}")
    run = Run(flow, state, context or Context(), incoming, max_steps)
    if state.status != "active":
        run.trace.append({"node": state.node, "ignored": type(incoming).__name__,
                          "finished": state.status})
    elif state.waiting_for == "start":
        run.trace.append({"flow": flow.id, "started": flow.start})
        run.goto(flow.start)
    elif isinstance(incoming, Message) and not _still_waits(flow, state):
        # The flow was edited under a live session: the node it waited at is gone, or waits
        # for something else now. The customer's message starts the flow over; left at that
        # node, every message would be ignored until the session's idle close, hours later.
        gone = "node_gone" if state.node not in flow.nodes else "node_changed"
        run.trace.append({"node": state.node, "error": gone, "started": flow.start})
        run.state = replace(state, waiting_for="start", tries=0, turns=0)
        run.goto(flow.start)
    elif state.node not in flow.nodes:  # the same, for a timer or a result: nothing to say
        run.trace.append({"node": state.node, "error": "node_gone"})
        run.actions.append(EndSession("flow_changed"))
        run.finish("ended")
    else:
        run.goto(_consume(run, flow.nodes[state.node], incoming, match))
        _go_on(run, incoming)
    return Result(run.state, tuple(run.actions), tuple(run.trace), run.steps)


def _go_on(run: Run, incoming: Incoming) -> None:
    """"2", "AU20250417" and a CPF typed within one debounce: each answers the node it leads
    to, in order, where the rest used to be thrown away. What the next node would refuse ("2"
    then "obrigado") is left unsaid, as before: the customer is not told off for chatter."""
    while run.rest and run.state.status == "active" and run.state.waiting_for == "customer" \
            and isinstance(incoming, Message):
        rest, run.rest = run.rest, ""
        before, run.refused = (len(run.actions), len(run.trace), run.state), False
        # No matching by meaning: chatter after an answer ("obrigado") picks no option.
        target = _consume(run, run.flow.nodes[run.state.node], replace(incoming, text=rest),
                          None)
        if run.refused:
            del run.actions[before[0]:], run.trace[before[1]:]
            run.state, run.rest = before[2], ""
            run.trace.append({"node": run.state.node, "burst_rest": "not an answer: left"})
            return
        run.trace.append({"node": run.state.node, "burst_rest": len(burst(rest))})
        run.goto(target)
