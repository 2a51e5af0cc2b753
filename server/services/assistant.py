"""AI mode: answer from the knowledge base, within budget, or say it cannot and hand off.

The knowledge base's answer mode (``answer_modes``, chosen by the gate) says who writes the
reply once the evidence step lets a question through: the model, extraction (the best passage
unit; no model is called, nor a budget spent), the model with extraction as the guard's
fallback, or extraction checked by the model (the model decides whether to answer; the best
passage unit is the answer)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from eval.answers import CHECKED, EXTRACTION, MODEL, MODEL_EXTRACTION
from models import router
from models.base import ChatMessage, Completion, ModelConfigError, Provider
from models.spec import ModelSpec
from rag import evidence, extractive, guard, lexical, prompt, yesno
from rag.index import Passage
from server.runtime import LOCAL, Runtime
from server.schema import Instance
from server.services import answer_modes, budget, intents
from server.settings import Settings

log = logging.getLogger(__name__)

# Why the assistant stops, said before whoever takes over: in a handoff's reply, the team's
# message follows (server.services.queues); through the API, the call for a person.
NOT_FOUND = "Não encontrei essa informação nos nossos materiais."
STRUGGLING = "Estou com dificuldade para responder agora."
FILES_UNREAD = "Recebi seu arquivo, mas por aqui só consigo ler mensagens de texto."
HANDOFF_LEADS = {"no_passages": NOT_FOUND, "refused": NOT_FOUND, "model_error": STRUGGLING,
                 "files": FILES_UNREAD}
NO_ANSWER = f"{NOT_FOUND} Vou chamar um atendente humano para te ajudar, tudo bem?"
MODEL_DOWN = f"{STRUGGLING} Vou chamar um atendente humano para te ajudar."
BUDGET_SPENT = "Vou chamar um atendente humano para continuar o seu atendimento."
HUMAN_ASKED = "Claro! Vou chamar um atendente humano para continuar o seu atendimento."
EMPTY = "Não recebi nenhum texto. Pode escrever sua dúvida?"
GREETING = "Olá! Sou o assistente virtual. Como posso ajudar?"
MAX_QUESTION_CHARS = 2000

@dataclass(frozen=True)
class Use:
    """How the assistant works for one call: models in order, limits, persona, knowledge base."""

    models: list[str]
    max_tokens: int
    temperature: float
    persona: str
    collection: str
    instance: Instance | None = None


def use_for(settings: Settings, inst: Instance | None = None, *, collection: str | None = None,
            model: str | None = None) -> Use:
    """The instance's choices where it has them, the global settings elsewhere."""
    first = model or (inst.model if inst and inst.model else settings.llm_default)
    fallback = inst.fallback_models if inst and inst.fallback_models is not None \
        else settings.llm_fallback
    return Use(
        models=[first, *fallback],
        max_tokens=(inst.max_tokens if inst and inst.max_tokens else settings.llm_max_tokens),
        temperature=(inst.temperature if inst and inst.temperature is not None
                     else settings.llm_temperature),
        persona=(inst.persona if inst and inst.persona else settings.persona),
        collection=collection or (inst.kb_collection if inst and inst.kb_collection else None)
        or settings.kb_collection,
        instance=inst,
    )


@dataclass
class Answer:
    text: str
    handoff: bool = False
    # answered | extracted (extraction mode: no model) | refused (the model found no answer) |
    # guard_<why> (extractive sent) | unfit_<why> (model mode: the guard's, handed off) |
    # empty | smalltalk | no_passages | model_error | budget
    reason: str = "answered"
    passage_ids: list[str] = field(default_factory=list)
    completion: Completion | None = None
    spec: ModelSpec | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything a model call needs, for a reply in one piece or streamed."""

    question: str
    prompt: router.Prompt  # built for each model as it reads its passages (see prepare)
    passages: list[Passage]
    chain: list[tuple[ModelSpec, Provider]]
    use: Use
    mode: str = MODEL_EXTRACTION  # model: an unfit reply hands off instead of quoting
    # The assistant's replies already in the conversation: one said again is a loop. Not read
    # off a prompt, which a fine-tuned version is shown without the history.
    said: list[str] = field(default_factory=list)

    @functools.cached_property
    def messages(self) -> list[ChatMessage]:
        """The prompt of the first model of the chain (a stream asks that one alone)."""
        return self.prompt(*self.chain[0])

    @property
    def grounds(self) -> str:
        """What a reply may state facts from: the passages and the customer's own words."""
        return "\n".join([self.question, *(x.text for x in self.passages)])


def handoff_text(reason: str, notice: str | None) -> str:
    """The reply of a handoff: why the assistant stops, then what happens next (``notice``,
    None when the customer was told already: then only the reason, or nothing)."""
    lead = NOT_FOUND if reason.startswith("unfit_") else HANDOFF_LEADS.get(reason, "")
    return " ".join(t for t in (lead, notice or "") if t)


def prepare(rt: Runtime, sessions: sessionmaker[Session], question: str,
            history: list[ChatMessage], use: Use) -> Prepared | Answer:
    """Retrieve and build the prompt, or an answer that needs no model."""
    question = question.strip()[:MAX_QUESTION_CHARS]
    if not question:
        return Answer(EMPTY, reason="empty")
    if intents.asks_for_human(question):  # before the documents, which say how to ask for one
        return Answer(HUMAN_ASKED, handoff=True, reason="asked_for_human")
    if not lexical.tokens(question, query=True):  # only greetings and small words: "oi", "bom dia"
        return Answer(GREETING, reason="smalltalk")
    mode = answer_modes.mode_of(sessions, use.collection)
    if mode == EXTRACTION:  # no model: neither its configuration nor the budget matters
        return extracted(rt, question, history, use)
    names = use.models
    if budget.exceeded(sessions, rt.settings, use.instance):
        if rt.settings.budget_action == "handoff":
            return Answer(BUDGET_SPENT, handoff=True, reason="budget")
        names = [LOCAL]
    try:
        if LOCAL in names:
            rt.sync_local()
        chain = rt.chain(names)
    except ModelConfigError as exc:
        log.warning("%s", exc)
        return Answer(MODEL_DOWN, handoff=True, reason="model_error")
    passages = rt.kb.search(use.collection, question, top_k=rt.settings.retrieval_top_k,
                            how=rt.settings.search())
    if not evidence.enough(question, passages, rt.settings.evidence(), rt.kb, use.collection):
        return Answer(NO_ANSWER, handoff=True, reason="no_passages")

    def prompt_for(spec: ModelSpec, provider: Provider) -> list[ChatMessage]:
        # A fine-tuned version reads what it was trained on (focused items, no history); a
        # fallback model (another version, or a large remote one) its own layout.
        shown = extractive.focus_in(rt.kb, use.collection, question, passages,
                                    spec.prompt_sentences, spec.prompt_terms,
                                    spec.prompt_passages, spec.prompt_ranker, spec.prompt_units)
        return prompt.build(use.persona, shown, question, history if spec.prompt_history else (),
                            count_tokens=provider.count_tokens,
                            history_budget=rt.settings.history_tokens)

    return Prepared(question, prompt_for, passages, chain, use, mode, earlier(history))


def extracted(rt: Runtime, question: str, history: list[ChatMessage], use: Use) -> Answer:
    """Extraction mode: the evidence step as before a model, then the passage unit closest to
    the question ("Sim, "/"Não, " where it decides a yes/no question), written by no model;
    one said already in the conversation would loop, so a human takes over, as after a
    model."""
    passages = rt.kb.search(use.collection, question, top_k=rt.settings.retrieval_top_k,
                            how=rt.settings.search())
    text = None
    if evidence.enough(question, passages, rt.settings.evidence(), rt.kb, use.collection):
        text = extractive.answer_in(rt.kb, use.collection, question, passages)
    if text is None:
        return Answer(NO_ANSWER, handoff=True, reason="no_passages")
    if guard.repeats(text, earlier(history)):
        return Answer(MODEL_DOWN, handoff=True, reason="guard_repeat")
    # Tokens none, model "extraction": the reply is the assistant's, recorded as what wrote it.
    return Answer(text, reason="extracted", passage_ids=[x.id for x in passages],
                  completion=Completion(text, "stop", 0, 0, EXTRACTION))


def earlier(messages: list[ChatMessage]) -> list[str]:
    """The assistant's replies already in the conversation, as the prompt shows them."""
    return [m["content"] for m in messages if m["role"] == "assistant"]


def fallback(rt: Runtime, p: Prepared, said: Sequence[str] = ()) -> str | None:
    """The best passage sentence: what goes out when a model's reply is unfit; None where the
    passages have none, where it would say again what was ``said`` (a loop: a human goes), or
    in model mode (the knowledge base's gate found quoting worse: a human goes)."""
    if p.mode == MODEL:
        return None
    text = extractive.answer_in(rt.kb, p.use.collection, p.question, p.passages)
    return None if text is None or guard.repeats(text, said) else text


def _asked(p: Prepared, max_tokens: int | None = None) -> tuple[Answer, list[ChatMessage]]:
    """The model's reply to the prepared prompt (``max_tokens``: the turn's own by default),
    as an answer to look at, and the prompt the model that wrote it read; its own refusal (the
    fine-tuned model found no answer) hands off, and so does a chain where every model
    failed."""
    try:
        routed = router.complete(p.chain, p.prompt, max_tokens=max_tokens or p.use.max_tokens,
                                 temperature=p.use.temperature)
    except router.AllModelsFailed as exc:
        log.warning("every model failed: %s", exc)
        return Answer(MODEL_DOWN, handoff=True, reason="model_error", failures=exc.failures), []
    out = Answer(routed.completion.text, passage_ids=[x.id for x in p.passages],
                 completion=routed.completion, spec=routed.spec, failures=routed.failures)
    if out.text == routed.spec.refusal:
        out.handoff, out.reason = True, "refused"
    return out, routed.messages


def checked(rt: Runtime, p: Prepared) -> Answer:
    """Model-checked mode: the model only decides whether the passages answer (its refusal
    hands off); where it would answer, the best passage unit goes, as in extraction mode, and
    the model's own words never reach the customer. Its tokens are spent, and counted; a
    stream gets the whole unit once the model has decided (``api_answers.stream``)."""
    out, _ = _asked(p, _to_decide(p))
    if out.handoff:
        return out
    text = extractive.answer_in(rt.kb, p.use.collection, p.question, p.passages)
    if text is None:  # no unit to quote: as in extraction mode
        out.text, out.handoff, out.reason = NO_ANSWER, True, "no_passages"
    elif guard.repeats(text, p.said):  # saying it again would loop: a human takes over
        out.text, out.handoff, out.reason = MODEL_DOWN, True, "guard_repeat"
    else:
        out.text, out.reason = text, "checked"
    return out


def _to_decide(p: Prepared) -> int:
    """Tokens a model-checked turn asks for: one where every model of the chain is a local
    version that refuses at its first token (``refusal_threshold``), as its reply is never
    sent; else the turn's own, since a remote model's refusal is the whole of its words."""
    local = all(spec.provider == "llamacpp" and spec.refusal_threshold is not None
                for spec, _ in p.chain)
    return 1 if local else p.use.max_tokens


def answer(rt: Runtime, sessions: sessionmaker[Session], question: str,
           history: list[ChatMessage], use: Use) -> Answer:
    """A grounded reply to a customer's turn."""
    p = prepare(rt, sessions, question, history, use)
    if isinstance(p, Answer):
        return p
    if p.mode == CHECKED:
        return checked(rt, p)
    out, messages = _asked(p)
    if out.handoff:
        return out
    problem = guard.unfit(out.text, messages[0]["content"], p.grounds, p.said)
    if problem is None:
        out.text = yesno.answer(p.question, out.text)  # "Sim, "/"Não, " where it decides
        return out
    # An empty, looping, repeated or prompt-copying reply, or one stating a number no passage
    # holds, never reaches the customer: the best passage sentence goes instead, grounded by
    # construction; in model mode (quoting judged worse here) a human takes over.
    if p.mode == MODEL:
        log.info("reply refused by the guard (%s); model mode: handing off", problem)
        out.text, out.handoff, out.reason = NO_ANSWER, True, f"unfit_{problem}"
        return out
    log.info("reply refused by the guard (%s); sending the extractive answer", problem)
    text = fallback(rt, p, p.said)
    out.text, out.handoff, out.reason = text or MODEL_DOWN, text is None, f"guard_{problem}"
    return out
