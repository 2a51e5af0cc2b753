"""Answer eval: every method answers every case; an extractive baseline is always one of them.

A method maps (question, passages) to a reply. ``extractive`` needs no model; ``model`` builds
the grounded prompt, asks an LLM and, as serving does, lets the grounding guard replace an unfit
reply by the extractive one (counted). In-scope cases are also asked without every
document that answers them (unanswerable): the right reply then is a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from eval import scoring
from eval.evalset import Case, EvalSet, relevant
from models.base import Provider
from models.spec import REFUSAL
from rag import evidence, extractive, guard, prompt
from rag.embedders import Embedder
from rag.evidence import Rule
from rag.index import KnowledgeBase, Passage
from rag.units import SENTENCES

PERSONA = prompt.DEFAULT_PERSONA
NO_ANSWER = "Não sei."
# (question, passages) -> (the reply a customer gets, why the guard replaced the model's or "")
Method = Callable[[str, list[Passage]], tuple[str, str]]


def extractive_method(embedder: Embedder) -> Method:
    """The extractive reply as serving's fallback gives it: the best unit, list items with
    their lead-in and table rows with their header, "Sim, "/"Não, " where it decides a yes/no
    question (``extractive.best_sentence``)."""
    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        return extractive.best_sentence(embedder, question, passages) or NO_ANSWER, ""
    return reply


def model_method(llm: Provider, kb: KnowledgeBase, collection: str, max_tokens: int = 64,
                 rule: Rule | None = None, sentences: int = 0, terms: float = 0.0,
                 first: int = 0, ranked_with: str = "", layout: str = SENTENCES) -> Method:
    """Serving's path: too little evidence refuses without the model (``rag.evidence``); the
    prompt shows the ``first`` passages (0 = all), whole or as their ``sentences`` closest
    units (``layout``, as the version was trained)."""
    embedder = kb.embedder

    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        if rule is not None and not evidence.enough(question, passages, rule, kb, collection):
            return REFUSAL, ""
        shown = extractive.focus_in(kb, collection, question, passages, sentences, terms, first,
                                    ranked_with, layout)
        messages = prompt.build(PERSONA, shown, question, count_tokens=llm.count_tokens)
        text = llm.complete(messages, max_tokens=max_tokens, temperature=0.0).text
        grounds = "\n".join([question, *(p.text for p in passages)])
        problem = guard.unfit(text, messages[0]["content"], grounds)
        if problem is None:
            return text, ""
        return extractive.best_sentence(embedder, question, passages) or NO_ANSWER, problem
    return reply


@dataclass
class Outcome:
    case: str
    method: str
    kind: str  # in_scope | unanswerable | out_of_scope | injection
    reply: str
    passed: bool
    contained: bool = False
    f1: float = 0.0
    cited: bool = False
    refused: bool = False
    echoed: bool = False
    guarded: str = ""  # why the guard replaced the model's reply


@dataclass
class Summary:
    method: str
    answerable: int
    containment: float
    f1: float
    citation: float
    wrongly_refused: float
    unanswerable_refused: float
    out_of_scope_ok: float
    injection_ok: float
    extra: dict[str, float] = field(default_factory=dict)


def run(es: EvalSet, kb: KnowledgeBase, collection: str, methods: dict[str, Method], *,
        top_k: int = 4, tick: Callable[[], None] = lambda: None) -> list[Outcome]:
    out: list[Outcome] = []
    for case in es.cases:
        variants: list[tuple[str, list[str]]] = [(case.kind, [])]
        if case.kind == "in_scope" and case.sources:
            variants.append(("unanswerable", es.answering_docs(case)))
        for kind, exclude in variants:
            passages = kb.search(collection, case.question, top_k=top_k, exclude_docs=exclude)
            for name, method in methods.items():
                reply, guarded = method(case.question, passages)
                o = score(case, kind, name, reply, passages)
                o.guarded = guarded
                out.append(o)
        tick()
    return out


def score(case: Case, kind: str, method: str, reply: str, passages: list[Passage]) -> Outcome:
    texts = [p.text for p in passages]
    grounds = "\n".join([case.question, *texts])
    echoed = scoring.echoes(reply, PERSONA + prompt.RULES, texts)
    refused = not echoed and scoring.refuses(reply)  # an echo of the rules is no refusal
    o = Outcome(case.id, method, kind, reply, False, refused=refused, echoed=echoed)
    if kind == "in_scope":
        o.contained = not refused and not echoed and scoring.contains(reply, case.answers)
        o.f1 = 0.0 if echoed else scoring.token_f1(reply, case.answers)
        o.cited = any(relevant(p.doc, p.text, s) for p in passages for s in case.sources)
        o.passed = o.contained
    elif kind in ("unanswerable", "out_of_scope"):
        o.passed = refused and not scoring.guard.ungrounded_numbers(reply, grounds)
    else:
        o.passed = scoring.hostile_ok(reply, PERSONA + prompt.RULES, grounds)
    return o


def summarize(outcomes: list[Outcome]) -> list[Summary]:
    def share(rows: list[Outcome], pred: Callable[[Outcome], bool]) -> float:
        return sum(pred(r) for r in rows) / len(rows) if rows else float("nan")

    rows = []
    for method in dict.fromkeys(o.method for o in outcomes):
        mine = [o for o in outcomes if o.method == method]
        ins = [o for o in mine if o.kind == "in_scope"]
        rows.append(Summary(
            method, len(ins), share(ins, lambda o: o.contained),
            sum(o.f1 for o in ins) / len(ins) if ins else float("nan"),
            share(ins, lambda o: o.cited), share(ins, lambda o: o.refused),
            share([o for o in mine if o.kind == "unanswerable"], lambda o: o.passed),
            share([o for o in mine if o.kind == "out_of_scope"], lambda o: o.passed),
            share([o for o in mine if o.kind == "injection"], lambda o: o.passed),
            {"echoed": share(ins, lambda o: o.echoed),
             "guarded": share(mine, lambda o: bool(o.guarded))}))
    return rows


def as_json(summaries: list[Summary], outcomes: list[Outcome], **meta: object) -> dict:
    return {**meta, "summary": [asdict(s) for s in summaries],
            "cases": [asdict(o) for o in outcomes]}
