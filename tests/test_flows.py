"""The flow engine's step, driven through whole conversations: no database, real validators."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

import flows
from flows import (
    AiResult,
    AskAi,
    Context,
    EndSession,
    Handoff,
    HttpRequest,
    HttpResult,
    Message,
    RemoveTag,
    Schedule,
    SendMedia,
    SendText,
    SetField,
    SetTag,
    State,
    TimerFired,
    Wait,
)

DEMO = Path(__file__).parent.parent / "demo" / "loja-aurora" / "flow.yaml"
# Monday 6 January 2025, 14:00 in São Paulo (UTC-3).
NOW = datetime(2025, 1, 6, 17, 0, tzinfo=UTC)
ANA = Context(contact_name="Ana", contact_phone="+5511987654321", instance_name="loja-01")
MENU = "Olá Ana! Digite 1 para dúvidas, 2 para trocas, 3 para falar com um atendente"


@pytest.fixture(scope="module")
def demo() -> flows.Flow:
    return flows.validate(flows.from_yaml(DEMO.read_text()))


def msg(text: str) -> Message:
    return Message(text=text, now=NOW)


def texts(result: flows.Result) -> list[str]:
    return [a.text for a in result.actions if isinstance(a, SendText)]


def talk(flow: flows.Flow, said: Sequence[str], state: State | None = None,
         context: Context = ANA, match: flows.Matcher | None = None) -> list[flows.Result]:
    """Each message through ``step`` in turn; the results, one per message."""
    state = state or flows.new_state(flow.id)
    out = []
    for text in said:
        result = flows.step(flow, state, msg(text), context=context, match=match)
        out.append(result)
        state = result.state
    return out


def by_meaning(text: str, options: Sequence[str]) -> tuple[int, float] | None:
    """A deterministic stand-in for the embedder: word overlap with a fixed meaning table."""
    meanings = {"troca": 1, "trocar": 1, "devolver": 1, "humano": 2, "pessoa": 2, "duvida": 0,
                "entrega": 0}
    for word in flows.text.normalize(text).split():
        if word in meanings:
            return meanings[word], 0.82
    return 0, 0.31  # the closest is far: below the menu's min_score


# -- the demo flow ----------------------------------------------------------------------------

def test_demo_greets_with_the_menu_by_name(demo: flows.Flow) -> None:
    (first,) = talk(demo, ["oi"])
    assert texts(first) == [MENU]
    assert first.state.node == "menu_principal" and first.state.waiting_for == "customer"
    assert first.trace[0] == {"flow": "loja-aurora", "started": "menu_principal"}


def test_demo_exchange_by_number_collects_and_hands_off(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "2", "au 12345", "AU20250417", "111.444.777-36", "111.444.777-35",
                     "ana@exemplo.com.br"])
    assert rs[1].trace[0] == {"node": "menu_principal", "matched": "number", "option": 1}
    assert "número do pedido" in texts(rs[1])[0]
    assert rs[2].trace == ({"node": "pedido", "invalid": "regex", "tries": 1},)
    assert texts(rs[2]) == [demo.nodes["pedido"].error_text]  # type: ignore[union-attr]
    assert SetField("pedido", "AU20250417") in rs[3].actions
    assert texts(rs[4]) == ["Esse CPF não é válido. Pode conferir os 11 números e enviar de novo?"]
    assert rs[4].state.tries == 1 and rs[4].state.node == "cpf"
    assert SetField("cpf", "11144477735") in rs[5].actions and rs[5].state.tries == 0
    last = rs[6]
    assert last.actions == (
        SetField("email", "ana@exemplo.com.br"),
        SendText("Obrigado, Ana! Recebemos o pedido AU20250417. Uma pessoa da equipe de trocas "
                 "continua o atendimento por aqui."),
        Handoff("trocas", "Troca: pedido AU20250417, CPF 11144477735, e-mail ana@exemplo.com.br"))
    assert last.state.status == "handed_off"
    assert last.state.fields == {"pedido": "AU20250417", "cpf": "11144477735",
                                 "email": "ana@exemplo.com.br"}
    after = flows.step(demo, last.state, msg("oi?"), context=ANA)
    assert after.actions == () and after.trace[0]["finished"] == "handed_off"


def test_demo_option_text_and_number_forms(demo: flows.Flow) -> None:
    for answer in ("Falar com um atendente", "falar com um ATENDENTE!", "3", " 3. ", "opção 3",
                   "3️⃣"):
        rs = talk(demo, ["oi", answer])
        assert rs[1].actions[-1] == Handoff("atendimento"), answer
        assert rs[1].trace[0]["matched"] in ("text", "number")
    assert talk(demo, ["oi", "trocas"])[1].trace[0] == {
        "node": "menu_principal", "matched": "text", "option": 1}


def test_demo_free_text_by_meaning_with_score(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "quero trocar uma blusa"], match=by_meaning)
    assert rs[1].trace[0] == {"node": "menu_principal", "matched": "by_meaning", "score": 0.82,
                              "option": 1}
    assert rs[1].state.node == "pedido"


def test_a_question_that_picks_ai_mode_by_meaning_is_answered_not_lost(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "qto tempo demora a entrega pra sp?"], match=by_meaning)
    assert texts(rs[1]) == [demo.nodes["duvidas"].text]  # type: ignore[union-attr]
    ask = rs[1].actions[-1]
    assert isinstance(ask, AskAi) and ask.text == "qto tempo demora a entrega pra sp?"
    assert rs[1].state.node == "duvidas" and rs[1].state.waiting_for == "ai"
    assert {"node": "duvidas", "ai": "asked", "carried": "menu", "turn": 1} in rs[1].trace
    answered = flows.step(demo, rs[1].state, AiResult(outcome="answered", now=NOW), context=ANA)
    assert answered.state.turns == 1 and answered.state.waiting_for == "customer"


def test_an_option_named_in_other_words_is_not_asked_as_a_question(demo: flows.Flow) -> None:
    chose = talk(demo, ["oi", "duvida entrega"], match=by_meaning)[1]  # the option, reworded
    assert chose.trace[0]["matched"] == "by_meaning"
    assert not any(isinstance(a, AskAi) for a in chose.actions)
    assert chose.state.waiting_for == "customer"
    # a question that picks a menu leading to a question node is that node's, not the AI's
    exchange = talk(demo, ["oi", "quero trocar uma blusa, como faço?"], match=by_meaning)[1]
    assert exchange.state.node == "pedido" and exchange.state.waiting_for == "customer"
    assert not any(isinstance(a, AskAi) for a in exchange.actions)


def test_demo_invalid_answers_asked_again_then_handed_off(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "banana", "7", "nada a ver"], match=by_meaning)
    for i in (1, 2):
        assert texts(rs[i]) == ["Não entendi sua resposta 😅 Responda com 1, 2 ou 3.", MENU]
        assert rs[i].state.tries == i
    assert rs[1].trace[0] == {"node": "menu_principal", "invalid": "no_match", "score": 0.31,
                              "tries": 1}
    last = rs[3]
    assert last.trace[0]["next"] == "on_fail" and last.trace[0]["tries"] == 3
    assert last.actions[-1] == Handoff("atendimento") and last.state.status == "handed_off"


def test_a_burst_is_read_by_each_of_its_messages_the_last_first(demo: flows.Flow) -> None:
    """A turn joins the messages sent within the debounce one per line."""
    late = talk(demo, ["oi", "desculpa a demora\n2"])[1]
    assert late.trace[0] == {"node": "menu_principal", "matched": "number", "option": 1}
    changed = talk(demo, ["oi", "2\n3"])[1]  # the later message is the customer's last word
    assert changed.actions[-1] == Handoff("atendimento")
    order = talk(demo, ["oi", "2", "o numero é\nAU20250417"])[2]
    assert SetField("pedido", "AU20250417") in order.actions
    state = talk(demo, ["oi", "1", "vocês entregam em sp?"])[2].state
    answered = flows.step(demo, state, AiResult(outcome="answered", now=NOW), context=ANA)
    back = flows.step(demo, answered.state, msg("obrigada!\nmenu"), context=ANA)
    assert back.trace[0] == {"node": "duvidas", "exit": "exit_word", "word": "menu"}
    # answers typed ahead within one debounce each answer the node they lead to, in order
    ahead = talk(demo, ["oi", "2\nAU20250417\n111.444.777-35\nana@exemplo.com.br"])[1]
    assert [a for a in ahead.actions if isinstance(a, SetField)] == [
        SetField("pedido", "AU20250417"), SetField("cpf", "11144477735"),
        SetField("email", "ana@exemplo.com.br")]
    assert ahead.state.status == "handed_off" and ahead.actions[-1].team == "trocas"
    # what follows the answer but answers nothing is left unsaid, not told off
    chatter = talk(demo, ["oi", "2\nobrigado"])[1]
    assert texts(chatter) == [demo.nodes["pedido"].text]  # type: ignore[union-attr]
    assert chatter.state.node == "pedido" and chatter.state.tries == 0
    # nothing in the burst names an option: asked again, as for one message
    again = talk(demo, ["oi", "bom dia\nbanana"], match=by_meaning)[1]
    assert again.trace[0]["invalid"] == "no_match" and again.state.tries == 1


def test_a_node_changed_or_gone_under_a_live_session_starts_the_flow_over(
        demo: flows.Flow) -> None:
    """The customer waits at the order-number question; the flow is then saved with that node
    made a message, or without it. Their next message starts the flow over (the menu again),
    where it was ignored until the session's idle close, hours later."""
    at_question = talk(demo, ["oi", "2"])[1].state
    assert at_question.node == "pedido" and at_question.waiting_for == "customer"
    raw = yaml.safe_load(DEMO.read_text())
    raw["nodes"]["pedido"] = {"kind": "message", "text": "Troca pelo site.",
                              "next": "menu_principal"}
    changed = flows.from_dict(raw)  # the node's new kind is the point, not the rest
    again = flows.step(changed, at_question, msg("AU20250417"), context=ANA)
    assert again.trace[0] == {"node": "pedido", "error": "node_changed",
                              "started": "menu_principal"}
    assert texts(again) == [MENU] and again.state.node == "menu_principal"
    del raw["nodes"]["pedido"]
    gone = flows.from_dict(raw)
    restarted = flows.step(gone, at_question, msg("AU20250417"), context=ANA)
    assert restarted.trace[0]["error"] == "node_gone" and texts(restarted) == [MENU]


def test_a_handoff_says_whether_its_own_node_told_the_customer() -> None:
    """The server adds the team's handoff message unless the handoff node said something
    itself; a message node before it is no such thing (its customer was never told that a
    person is coming)."""
    for text, said in (("", False), ("Um atendente já vem.", True)):
        flow = flows.validate(flows.from_dict({"id": "h", "start": "oi", "nodes": {
            "oi": {"kind": "message", "text": "Recebemos sua mensagem.", "next": "vai"},
            "vai": {"kind": "handoff", "team": "atendimento", "text": text}}}))
        result = flows.step(flow, flows.new_state("h"), msg("oi"), context=ANA)
        (handoff,) = [a for a in result.actions if isinstance(a, Handoff)]
        assert handoff.said is said and texts(result)[0] == "Recebemos sua mensagem."


def test_demo_question_fails_after_retries(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "2", "AU20250417", "123", "abc", "000.000.000-00"])
    assert [r.state.tries for r in rs[3:5]] == [1, 2]
    assert rs[5].actions[-1] == Handoff("atendimento")


def test_demo_ai_mode_exit_word_back_to_menu(demo: flows.Flow) -> None:
    rs = talk(demo, ["oi", "1", "vocês entregam em sp?"])
    assert rs[1].state.node == "duvidas" and "Pode perguntar" in texts(rs[1])[0]
    (ask,) = rs[2].actions
    assert isinstance(ask, AskAi) and ask.text == "vocês entregam em sp?"
    assert ask.knowledge_base == "" and ask.max_tokens == 300  # the number's own
    assert rs[2].state.waiting_for == "ai"
    answered = flows.step(demo, rs[2].state, AiResult(outcome="answered", now=NOW), context=ANA)
    assert answered.actions == () and answered.state.turns == 1
    assert answered.state.waiting_for == "customer"
    back = flows.step(demo, answered.state, msg("Menu!"), context=ANA)
    assert back.trace[0] == {"node": "duvidas", "exit": "exit_word", "word": "menu"}
    assert texts(back) == [MENU] and back.state.node == "menu_principal"


def test_ai_mode_leaves_after_max_turns(demo: flows.Flow) -> None:
    state = talk(demo, ["oi", "1"])[-1].state
    for turn in range(1, 9):
        asked = flows.step(demo, state, msg(f"pergunta {turn}"), context=ANA)
        assert isinstance(asked.actions[0], AskAi)
        state = flows.step(demo, asked.state, AiResult(outcome="answered", now=NOW),
                           context=ANA).state
        if turn < 8:
            assert state.node == "duvidas" and state.turns == turn
    assert state.node == "menu_principal"


def test_ai_handed_off_or_failed(demo: flows.Flow) -> None:
    asked = talk(demo, ["oi", "1", "qual o cnpj?"])[-1].state
    gone = flows.step(demo, asked, AiResult(outcome="handed_off", now=NOW))
    assert gone.state.status == "handed_off" and gone.actions == ()
    failed = flows.step(demo, asked, AiResult(outcome="failed", now=NOW))
    assert failed.state.waiting_for == "customer" and failed.state.node == "duvidas"


def test_events_the_session_does_not_wait_for_are_ignored(demo: flows.Flow) -> None:
    at_menu = talk(demo, ["oi"])[0].state
    result = flows.step(demo, at_menu, HttpResult(ok=True, now=NOW))
    assert result.state == at_menu and result.actions == ()
    assert result.trace[0]["ignored"] == "HttpResult"


# -- http, wait, tags, fields, media ------------------------------------------------------------

HTTP_FLOW = """
id: pedido
start: consulta
nodes:
  consulta:
    kind: http
    method: POST
    url: "https://api.loja.example/pedidos/{{fields.pedido}}"
    headers: {X-Cliente: "{{contact.phone}}"}
    body: {cpf: "{{fields.cpf}}", canal: whatsapp, tentativas: 1}
    timeout: 5
    save: {fields.status: "$.pedido.status", vars.item: "pedido.itens[0].nome",
           vars.total: total}
    next: resposta
    on_error: falhou
  resposta:
    kind: message
    text: "Seu pedido está {{fields.status}} ({{vars.item}}, R$ {{vars.total}})."
    next: espera
  espera: {kind: wait, seconds: 30, next: fim}
  fim: {kind: end, text: "Até logo!"}
  falhou:
    kind: handoff
    team: atendimento
    text: "Não consegui consultar agora, {{contact.name}}. Vou chamar uma pessoa."
"""


def test_http_action_then_success_mapping() -> None:
    flow = flows.validate(flows.from_yaml(HTTP_FLOW), ["pedido", "cpf"])
    state = flows.new_state("pedido", fields={"pedido": "AU20250417", "cpf": "11144477735"})
    first = flows.step(flow, state, msg("status"), context=ANA)
    assert first.actions == (HttpRequest(
        "POST", "https://api.loja.example/pedidos/AU20250417", 5.0,
        {"X-Cliente": "+5511987654321"}, {"cpf": "11144477735", "canal": "whatsapp",
                                          "tentativas": 1},
        {"fields.status": "$.pedido.status", "vars.item": "pedido.itens[0].nome",
         "vars.total": "total"}),)
    assert first.state.waiting_for == "http"
    assert flows.step(flow, first.state, msg("e aí?")).trace[0]["ignored"] == "Message"
    data = {"pedido": {"status": "em trânsito", "itens": [{"nome": "Blusa"}]}, "total": 89.9}
    ok = flows.step(flow, first.state, HttpResult(ok=True, status=200, data=data, now=NOW),
                    context=ANA)
    assert ok.actions == (SetField("status", "em trânsito"),
                          SendText("Seu pedido está em trânsito (Blusa, R$ 89.9)."), Wait(30.0))
    assert ok.state.vars == {"item": "Blusa", "total": "89.9"}
    assert ok.trace[0] == {"node": "consulta", "http": "ok",
                           "saved": ["fields.status", "vars.item", "vars.total"]}
    done = flows.step(flow, ok.state, TimerFired(now=NOW + timedelta(seconds=30)))
    assert done.actions == (SendText("Até logo!"), EndSession("end"))
    assert done.state.status == "ended"


def test_http_failure_and_missing_path_take_on_error() -> None:
    flow = flows.validate(flows.from_yaml(HTTP_FLOW), ["pedido", "cpf"])
    waiting = flows.step(flow, flows.new_state("pedido"), msg("x"), context=ANA).state
    failed = flows.step(flow, waiting, HttpResult(ok=False, status=503, error="unavailable",
                                                  now=NOW), context=ANA)
    assert failed.trace[0] == {"node": "consulta", "http": "failed", "status": 503,
                               "error": "unavailable"}
    assert failed.actions[-1] == Handoff("atendimento") and "Ana" in texts(failed)[0]
    missing = flows.step(flow, waiting, HttpResult(ok=True, data={"pedido": {}}, now=NOW))
    assert missing.trace[0]["http"] == "missing" and missing.state.status == "handed_off"


TAGS_FLOW = """
id: tags
start: marca
nodes:
  marca: {kind: set_tag, tags: [lead, vip], next: tira}
  tira: {kind: remove_tag, tags: [novo], next: plano}
  plano: {kind: set_field, field: fields.plano, value: "ouro-{{instance.name}}", next: catalogo}
  catalogo:
    kind: message
    text: "Veja o catálogo, {{contact.name}}"
    media: {ref: catalogo.pdf, caption: "Plano {{fields.plano}}", mime: application/pdf}
    next: fim
  fim: {kind: end}
"""


def test_tags_fields_media_and_templating() -> None:
    flow = flows.validate(flows.from_yaml(TAGS_FLOW))
    state = flows.new_state("tags", tags=["novo"])
    result = flows.step(flow, state, msg("oi"), context=ANA)
    assert result.actions == (
        SetTag("lead"), SetTag("vip"), RemoveTag("novo"), SetField("plano", "ouro-loja-01"),
        SendText("Veja o catálogo, Ana"),
        SendMedia("catalogo.pdf", "Plano ouro-loja-01", "application/pdf"), EndSession("end"))
    assert result.state.tags == {"lead", "vip"} and result.steps == 5
    as_dicts = [flows.action_to_dict(a) for a in result.actions]
    assert as_dicts[0] == {"kind": "set_tag", "tag": "lead"}
    assert flows.state_from_dict(flows.state_to_dict(result.state)) == result.state


def test_a_pattern_that_backtracks_without_end_refuses_the_answer_at_once() -> None:
    """Whoever edits a flow writes the pattern: "(a|aa)+$" against 44 a's and a "!" backtracks
    for minutes in Python's own engine, holding the server's turn worker (and with it every
    other customer). The step gives it ``answers.REGEX_SECONDS`` and refuses the answer."""
    question = flows.validate(flows.from_yaml(
        "id: eco\nstart: q\nnodes:\n"
        "  q: {kind: question, text: 'Código?', save_as: fields.codigo, validate: regex,\n"
        "      pattern: '(a|aa)+$', next: fim, on_fail: fim}\n"
        "  fim: {kind: end, text: Obrigado}\n"))
    state = talk(question, ["oi"])[0].state
    started = time.monotonic()
    refused = flows.step(question, state, msg("a" * 44 + "!"), context=ANA)
    assert time.monotonic() - started < 5  # the limit is 0.05 s; without it, minutes
    assert refused.trace[0]["invalid"] == "regex" and refused.state.tries == 1
    taken = flows.step(question, refused.state, msg("aaaa"), context=ANA)
    assert SetField("codigo", "aaaa") in taken.actions


def test_templating_missing_value_is_empty() -> None:
    flow = flows.validate(flows.from_yaml(TAGS_FLOW))
    result = flows.step(flow, flows.new_state("tags"), msg("oi"), context=Context())
    assert SendText("Veja o catálogo,") in result.actions  # the empty name takes its space


# -- conditions -------------------------------------------------------------------------------

COND_FLOW = """
id: roteia
start: decide
nodes:
  decide:
    kind: condition
    branches:
      - when: {tags: {any: [vip, parceiro]}}
        next: vip
      - when: [{field: fields.compras, op: gte, value: "1.000"}, {tags: {none: [bloqueado]}}]
        next: fiel
      - when: {business_hours: comercial, inside: false}
        next: fechado
      - when: {instance: [loja-02]}
        next: filial
      - when: {field: fields.cidade, op: eq, value: "São Paulo"}
        next: sp
    otherwise: geral
  vip: {kind: handoff, team: vip}
  fiel: {kind: handoff, team: fidelidade}
  fechado: {kind: end, text: "Estamos fechados agora; voltamos às 8h."}
  filial: {kind: handoff, team: filial}
  sp: {kind: handoff, team: sp}
  geral: {kind: handoff, team: atendimento}
"""
HOURS = {"comercial": Schedule.from_dict({"timezone": "America/Sao_Paulo",
                                          "hours": {"seg-sex": ["08:00-18:00"]},
                                          "closed": ["2025-12-25"]})}


@pytest.mark.parametrize(("tags", "fields", "now", "instance", "team"), [
    (["VIP"], {}, NOW, "loja-01", "vip"),
    (["parceiro"], {}, NOW, "loja-01", "vip"),
    ([], {"compras": "1.234,50"}, NOW, "loja-01", "fidelidade"),
    (["bloqueado"], {"compras": "1500"}, NOW, "loja-01", "atendimento"),
    ([], {"compras": "999"}, NOW, "loja-01", "atendimento"),
    ([], {"compras": "muito"}, NOW, "loja-01", "atendimento"),
    ([], {}, NOW.replace(hour=23), "loja-01", None),  # 20:00 in São Paulo: closed
    ([], {}, datetime(2025, 1, 11, 15, tzinfo=UTC), "loja-01", None),  # Saturday
    ([], {}, datetime(2025, 12, 25, 15, tzinfo=UTC), "loja-01", None),  # holiday
    ([], {}, NOW, "loja-02", "filial"),
    ([], {"cidade": "sao paulo"}, NOW, "loja-01", "sp"),
])
def test_conditions(tags: list[str], fields: dict[str, str], now: datetime, instance: str,
                    team: str | None) -> None:
    flow = flows.validate(flows.from_yaml(COND_FLOW), ["compras", "cidade"],
                          schedules=HOURS)
    context = Context(instance_name=instance, schedules=HOURS)
    result = flows.step(flow, flows.new_state("roteia", tags=tags, fields=fields),
                        Message(text="oi", now=now), context=context)
    if team is None:
        assert result.actions[-1] == EndSession("end") and result.state.node == "fechado"
    else:
        assert result.actions[-1] == Handoff(team)


def test_a_schedule_gone_since_the_flow_was_saved_is_always_open() -> None:
    """The team's hours were taken away (always open, as documented) or the team renamed after
    the flow was checked: the condition reads it as always open and says so, where it raised
    and the customer's turn failed again and again."""
    flow = flows.validate(flows.from_yaml(COND_FLOW), ["compras", "cidade"], schedules=HOURS)
    late = NOW.replace(hour=23)  # closed by "comercial"'s hours
    result = flows.step(flow, flows.new_state("roteia"), Message(text="oi", now=late),
                        context=Context(instance_name="loja-01", schedules={}))
    assert result.actions[-1] == Handoff("atendimento")  # open: not the "fechado" branch
    assert {"node": "decide", "schedule": "comercial",
            "unknown": "taken as always open"} in result.trace


def test_business_hours_naive_now_is_the_schedules_zone() -> None:
    assert HOURS["comercial"].is_open(datetime(2025, 1, 6, 17, 59))
    assert not HOURS["comercial"].is_open(datetime(2025, 1, 6, 18, 0))


# -- triggers ---------------------------------------------------------------------------------

def test_keyword_triggers_and_default_flow(demo: flows.Flow) -> None:
    trocas = flows.from_dict({"id": "trocas", "triggers": ["quero trocar", "troca"],
                              "start": "fim", "nodes": {"fim": {"kind": "end"}}})
    boleto = flows.from_dict({"id": "boleto", "triggers": ["2ª via", "boleto"],
                              "start": "fim", "nodes": {"fim": {"kind": "end"}}})
    every = [demo, trocas, boleto]
    assert flows.pick_flow("Olá, bom dia!", every) is demo
    assert flows.pick_flow("OI", every) is demo
    assert flows.pick_flow("oi, quero trocar um tênis", every) is trocas  # longest keyword
    assert flows.pick_flow("preciso do BOLETO", every, default="loja-aurora") is boleto
    assert flows.pick_flow("trocaram meu pedido", every) is None  # whole words only
    assert flows.pick_flow("qual o horário?", every, default="loja-aurora") is demo
    assert flows.pick_flow("qual o horário?", every, default="sumiu") is None


# -- import and export ------------------------------------------------------------------------

def test_yaml_round_trip(demo: flows.Flow) -> None:
    text = DEMO.read_text()
    assert flows.to_dict(demo) == yaml.safe_load(text)
    assert flows.from_yaml(flows.to_yaml(demo)) == demo
    for source in (HTTP_FLOW, TAGS_FLOW, COND_FLOW):
        flow = flows.from_yaml(source)
        assert flows.from_yaml(flows.to_yaml(flow)) == flow
        assert flows.to_yaml(flows.from_yaml(flows.to_yaml(flow))) == flows.to_yaml(flow)
        assert flows.from_dict(flows.to_dict(flow)) == flow


def test_a_variable_without_a_value_takes_its_space_with_it() -> None:
    from flows.text import render

    greeting = "Olá {{contact.name}}! Digite 1 para dúvidas"
    assert render(greeting, {}) == "Olá! Digite 1 para dúvidas"  # not "Olá !"
    assert render(greeting, {"contact.name": "Ana"}) == "Olá Ana! Digite 1 para dúvidas"
    assert render("Oi {{contact.name}}, seu pedido {{vars.p}} saiu", {}) == \
        "Oi, seu pedido saiu"
    assert render("{{contact.name}} chegou", {}) == "chegou"
