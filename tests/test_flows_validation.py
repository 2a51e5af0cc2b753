"""Flow validation: one test per rule, each asserting the path of the bad node; and the safety
net it guarantees: a validated flow never reaches the step's automatic-step cap."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import flows
from flows import AiResult, FlowError, HttpResult, Message, TimerFired
from server.services import flow_store

DEMO = Path(__file__).parent.parent / "demo" / "loja-aurora" / "flow.yaml"
NOW = datetime(2025, 1, 6, 17, 0, tzinfo=UTC)


def demo_data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEMO.read_text()))


def problems(data: dict[str, Any], fields: tuple[str, ...] = (), **kw: Any) -> dict[str, str]:
    """Path to message, of every problem validation finds."""
    with pytest.raises(FlowError) as caught:
        flows.validate(flows.from_dict(data), fields, **kw)
    return {p.path: p.message for p in caught.value.problems}


def shape_error(data: dict[str, Any]) -> str:
    """The one path reading the flow refuses."""
    with pytest.raises(FlowError) as caught:
        flows.from_dict(data)
    (problem,) = caught.value.problems
    return problem.path


def chain(*nodes: tuple[str, dict[str, Any]], start: str | None = None) -> dict[str, Any]:
    return {"id": "t", "start": start or nodes[0][0], "nodes": dict(nodes)}


def test_demo_flow_is_valid() -> None:
    assert flows.check(flows.from_dict(demo_data())) == []


def test_missing_target_names_the_option() -> None:
    data = demo_data()
    data["nodes"]["menu_principal"]["options"][2]["next"] = "atendent"
    found = problems(data)
    assert "nodes.menu_principal.options[2].next" in found
    assert "'atendent'" in found["nodes.menu_principal.options[2].next"]


def test_missing_on_fail_and_start() -> None:
    data = demo_data()
    data["nodes"]["cpf"]["on_fail"] = "nenhum"
    data["start"] = "inicio"
    found = problems(data)
    assert {"nodes.cpf.on_fail", "start"} <= set(found)


def test_unreachable_node() -> None:
    data = demo_data()
    data["nodes"]["esquecido"] = {"kind": "end", "text": "tchau"}
    assert list(problems(data)) == ["nodes.esquecido"]


def test_loop_of_automatic_nodes_even_with_an_exit() -> None:
    data = chain(("a", {"kind": "message", "text": "oi", "next": "b"}),
                 ("b", {"kind": "condition", "otherwise": "a",
                        "branches": [{"when": {"tags": {"any": ["x"]}}, "next": "fim"}]}),
                 ("fim", {"kind": "end"}))
    found = problems(data)
    assert list(found) == ["nodes.a.next"] and "a → b" in found["nodes.a.next"]


def test_self_loop() -> None:
    data = chain(("a", {"kind": "set_tag", "tags": ["x"], "next": "a"}))
    assert list(problems(data)) == ["nodes.a.next"]


def test_closed_loop_without_customer_waiting() -> None:
    data = chain(("espera", {"kind": "wait", "seconds": 60, "next": "lembra"}),
                 ("lembra", {"kind": "message", "text": "Ainda aí?", "next": "espera"}))
    found = problems(data)
    assert list(found) == ["nodes.espera"] and "no path leaves" in found["nodes.espera"]


def test_loop_through_a_question_or_menu_is_fine() -> None:
    data = chain(("pergunta", {"kind": "question", "text": "CPF?", "save_as": "vars.cpf",
                               "validate": "cpf", "next": "confirma", "on_fail": "pergunta"}),
                 ("confirma", {"kind": "message", "text": "Recebi {{vars.cpf}}",
                               "next": "pergunta"}))
    assert flows.check(flows.from_dict(data)) == []


def test_unknown_variable_in_template() -> None:
    data = demo_data()
    data["nodes"]["trocas"]["text"] = "Pedido {{fields.pedidos}}, {{contact.nome}}"
    found = problems(data)
    assert list(found) == ["nodes.trocas.text"]
    msg = found["nodes.trocas.text"]
    assert "fields.pedidos" in msg or "contact.nome" in msg
    assert len(flows.check(flows.from_dict(data))) == 2


def test_declared_and_captured_fields_are_known() -> None:
    data = demo_data()
    data["nodes"]["atendente"]["note"] = "Plano {{fields.plano}}, pedido {{fields.pedido}}"
    assert list(problems(data)) == ["nodes.atendente.note"]
    assert flows.check(flows.from_dict(data), ["plano"]) == []


def test_unknown_variable_in_condition_and_http_body() -> None:
    data = chain(("d", {"kind": "condition", "otherwise": "h", "branches": [
                     {"when": {"field": "fields.saldo", "op": "gt", "value": "0"}, "next": "h"}]}),
                 ("h", {"kind": "http", "url": "https://x.example/{{fields.id}}",
                        "body": {"a": ["{{vars.b}}"]}, "next": "f", "on_error": "f"}),
                 ("f", {"kind": "end"}))
    assert set(problems(data)) == {"nodes.d.branches[0].when[0].field", "nodes.h.url",
                                   "nodes.h.body.a[0]"}
    assert set(problems(data, ("saldo", "id"))) == {"nodes.h.body.a[0]"}


def test_bad_template_syntax() -> None:
    data = demo_data()
    data["nodes"]["atendente"]["text"] = "Oi {{contact.name}"
    assert list(problems(data)) == ["nodes.atendente.text"]
    data["nodes"]["atendente"]["text"] = "Oi {{nome}}"
    assert "not a variable" in problems(data)["nodes.atendente.text"]


def test_unknown_schedule() -> None:
    data = chain(("d", {"kind": "condition", "otherwise": "f", "branches": [
                     {"when": [{"tags": {"all": ["a"]}}, {"business_hours": "comercial"}],
                      "next": "f"}]}),
                 ("f", {"kind": "end"}))
    assert list(problems(data, schedules={"plantao"})) == ["nodes.d.branches[0].when[1]"
                                                           ".business_hours"]
    assert flows.check(flows.from_dict(data), schedules={"comercial"}) == []
    assert flows.check(flows.from_dict(data)) == []  # schedules unknown: not checked


def test_run_of_automatic_nodes_over_the_cap() -> None:
    nodes = [(f"n{i}", {"kind": "set_tag", "tags": [f"t{i}"], "next": f"n{i + 1}"})
             for i in range(8)] + [("n8", {"kind": "end"})]
    data = chain(*nodes)
    assert list(problems(data, max_steps=5)) == ["nodes.n0"]
    assert flows.check(flows.from_dict(data), max_steps=9) == []


def test_empty_trigger() -> None:
    data = demo_data()
    data["triggers"] = ["oi", "!!"]
    assert list(problems(data)) == ["triggers[1]"]


@pytest.mark.parametrize(("edit", "path"), [
    (lambda n: n["pedido"].update(nxt="cpf"), "nodes.pedido.nxt"),
    (lambda n: n["pedido"].update(kind="pergunta"), "nodes.pedido.kind"),
    (lambda n: n["pedido"].update(pattern="AU(\\d{8}"), "nodes.pedido.pattern"),
    (lambda n: n["pedido"].update(validate="rg"), "nodes.pedido.validate"),
    (lambda n: n["pedido"].update(save_as="pedido"), "nodes.pedido.save_as"),
    (lambda n: n["pedido"].update(max_retries="dois"), "nodes.pedido.max_retries"),
    (lambda n: n["pedido"].pop("next"), "nodes.pedido.next"),
    (lambda n: n["menu_principal"]["options"][1].update(nxt="x"),
     "nodes.menu_principal.options[1].nxt"),
    (lambda n: n["menu_principal"].update(options=[]), "nodes.menu_principal.options"),
    (lambda n: n["duvidas"].update(exit_words="menu"), "nodes.duvidas.exit_words"),
    (lambda n: n.update({"a.b": {"kind": "end"}}), "nodes.a.b"),
])
def test_shape_errors_name_the_path(edit: Any, path: str) -> None:
    data = demo_data()
    edit(data["nodes"])
    assert shape_error(data) == path


def test_shape_errors_in_conditions_and_requests() -> None:
    cond = {"kind": "condition", "otherwise": "f",
            "branches": [{"when": {"field": "fields.x", "op": "maior"}, "next": "f"}]}
    assert shape_error(chain(("d", cond), ("f", {"kind": "end"}))) == (
        "nodes.d.branches[0].when[0].op")
    http = {"kind": "http", "url": "ftp://x", "next": "f", "on_error": "f"}
    assert shape_error(chain(("h", http), ("f", {"kind": "end"}))) == "nodes.h.url"
    with pytest.raises(FlowError) as caught:
        flows.from_yaml("id: [unclosed")
    assert caught.value.paths == ["yaml"]


def test_a_tag_node_needs_named_tags_when_saved_and_a_stored_one_still_reads() -> None:
    data = demo_data()
    data["nodes"]["atendente"] = {"kind": "set_tag", "tags": ["vip", " "], "next": "fim"}
    data["nodes"]["fim"] = {"kind": "remove_tag", "tags": [], "next": "fim2"}
    data["nodes"]["fim2"] = {"kind": "end"}
    flow = flows.from_dict(data)  # what was stored before this check still reads and runs
    assert {"nodes.atendente.tags[1]", "nodes.fim.tags"} <= set(problems(data))
    assert flow.nodes["fim"].kind == "remove_tag"


def test_a_key_written_twice_in_yaml_is_refused_not_dropped() -> None:
    """YAML keeps the last of two equal keys: a node pasted twice lost the first quietly."""
    text = DEMO.read_text()
    twice = text.replace("nodes:\n", "nodes:\n  atendente:\n    kind: end\n", 1)
    assert twice != text and "\n  atendente:" in text  # the demo's node, further down
    with pytest.raises(FlowError) as caught:
        flows.from_yaml(twice)
    assert caught.value.paths == ["yaml"]
    assert "'atendente' is written twice" in caught.value.problems[0].message
    with pytest.raises(FlowError) as stored:  # the server's reader, as the API and CLI use it
        flow_store.parse_yaml(twice)
    assert "written twice" in str(stored.value)
    # YAML's merge key is no key written twice (flows.from_yaml reads it; the server's
    # reader refuses aliases anyway)
    merged = "id: m\nstart: a\nnodes:\n  a: &b {kind: end}\n  c: {<<: *b, text: tchau}\n"
    assert flows.from_yaml(merged).nodes["c"].text == "tchau"  # type: ignore[attr-defined]


# -- the safety net ---------------------------------------------------------------------------

KINDS = ["message", "menu", "question", "condition", "set_tag", "remove_tag", "set_field",
         "http", "ai", "handoff", "wait", "end"]


def random_flow(rng: random.Random) -> dict[str, Any]:
    """A random flow over every node kind; most are invalid (loops, orphans), some not."""
    n = rng.randint(2, 12)
    ids = [f"n{i}" for i in range(n)]

    def to() -> str:
        return rng.choice(ids)

    nodes: dict[str, Any] = {}
    for node_id in ids:
        kind = rng.choice(KINDS)
        node: dict[str, Any] = {"kind": kind}
        if kind == "message":
            node |= {"text": "oi {{contact.name}}", "next": to()}
        elif kind == "menu":
            node |= {"text": "escolha", "on_fail": to(), "max_retries": rng.randint(0, 2),
                     "options": [{"text": t, "next": to()} for t in ("a", "b")]}
        elif kind == "question":
            node |= {"text": "cpf?", "validate": rng.choice(["cpf", "email", "number"]),
                     "save_as": "fields.x", "next": to(), "on_fail": to()}
        elif kind == "condition":
            node |= {"otherwise": to(), "branches": [
                {"when": {"tags": {"any": ["a"]}}, "next": to()},
                {"when": {"field": "fields.x", "op": "set"}, "next": to()}]}
        elif kind in ("set_tag", "remove_tag"):
            node |= {"tags": ["a"], "next": to()}
        elif kind == "set_field":
            node |= {"field": "fields.x", "value": "1", "next": to()}
        elif kind == "http":
            node |= {"url": "https://x.example", "save": {"vars.v": "v"}, "next": to(),
                     "on_error": to()}
        elif kind == "ai":
            node |= {"exit_words": ["sair"], "max_turns": 2, "next": to()}
        elif kind == "handoff":
            node |= {"team": "t"}
        elif kind == "wait":
            node |= {"seconds": 1, "next": to()}
        nodes[node_id] = node
    return {"id": "r", "start": "n0", "nodes": nodes}


def random_event(rng: random.Random) -> flows.Incoming:
    pick = rng.random()
    if pick < 0.6:
        text = rng.choice(["1", "2", "a", "x", "sair", "111.444.777-35", "ana@exemplo.com", "3"])
        return Message(text=text, now=NOW)
    if pick < 0.75:
        return HttpResult(ok=rng.random() < 0.5, data={"v": 1}, now=NOW)
    if pick < 0.9:
        return AiResult(outcome=rng.choice(["answered", "failed", "handed_off"]), now=NOW)
    return TimerFired(now=NOW)


def test_a_validated_flow_never_reaches_the_step_cap() -> None:
    rng = random.Random(27)
    cap = 4
    valid = looped = 0
    for _ in range(3000):
        flow = flows.from_dict(random_flow(rng))
        found = flows.check(flow, max_steps=cap)
        if found:
            looped += any("automatic" in p.message for p in found)
            continue
        valid += 1
        state = flows.new_state("r")
        for _ in range(40):
            result = flows.step(flow, state, random_event(rng), max_steps=cap)
            assert result.steps <= cap
            assert not any(t.get("error") == "step_cap" for t in result.trace)
            state = result.state if result.state.status == "active" else flows.new_state("r")
    assert valid >= 100 and looped >= 100, (valid, looped)


def test_the_cap_stops_an_unvalidated_loop() -> None:
    flow = flows.from_dict(chain(("a", {"kind": "set_tag", "tags": ["x"], "next": "b"}),
                                 ("b", {"kind": "remove_tag", "tags": ["x"], "next": "a"})))
    result = flows.step(flow, flows.new_state("t"), Message(text="oi", now=NOW))
    assert result.steps == flows.MAX_AUTO_STEPS
    assert result.actions[-1] == flows.EndSession("step_cap")
    assert result.state.status == "ended"
