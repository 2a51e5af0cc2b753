"""AI mode: answer a customer from the knowledge base, or say it cannot and hand off."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from models.base import ChatMessage, Completion, ModelError
from rag import extractive, prompt
from server.runtime import Runtime
from server.services import guard

log = logging.getLogger(__name__)

NO_ANSWER = ("Não encontrei essa informação nos nossos materiais. "
             "Vou chamar um atendente humano para te ajudar, tudo bem?")
MODEL_DOWN = ("Estou com dificuldade para responder agora. "
              "Vou chamar um atendente humano para te ajudar.")
EMPTY = "Não recebi nenhum texto. Pode escrever sua dúvida?"
MAX_QUESTION_CHARS = 2000


@dataclass
class Answer:
    text: str
    handoff: bool = False
    reason: str = "answered"  # answered | guard_extractive | empty | no_passages | model_error
    passage_ids: list[str] = field(default_factory=list)
    completion: Completion | None = None


def answer(rt: Runtime, question: str, history: list[ChatMessage], collection: str) -> Answer:
    """A grounded reply to a customer's turn."""
    question = question.strip()[:MAX_QUESTION_CHARS]
    if not question:
        return Answer(EMPTY, reason="empty")
    s = rt.settings
    passages = rt.kb.search(collection, question, top_k=s.retrieval_top_k)
    if not passages or passages[0].score < s.retrieval_min_score:
        return Answer(NO_ANSWER, handoff=True, reason="no_passages")
    messages = prompt.build(s.persona, passages, question, history,
                            count_tokens=rt.llm.count_tokens)
    try:
        done = rt.llm.complete(messages, max_tokens=s.llm_max_tokens,
                               temperature=s.llm_temperature)
    except ModelError as exc:
        log.warning("model failed: %s", exc)
        return Answer(MODEL_DOWN, handoff=True, reason="model_error")
    ids = [p.id for p in passages]
    problem = guard.unfit(done.text, messages[0]["content"])
    if problem is None:
        return Answer(done.text, passage_ids=ids, completion=done)
    # An empty, looping or prompt-copying reply never reaches the customer: the best passage
    # sentence goes instead, still grounded on the same passages.
    log.info("reply refused by the guard (%s); sending the extractive answer", problem)
    fallback = extractive.best_sentence(rt.kb.embedder, question, passages)
    if fallback is None:
        return Answer(MODEL_DOWN, handoff=True, reason="model_error", completion=done)
    return Answer(fallback, reason="guard_extractive", passage_ids=ids, completion=done)
