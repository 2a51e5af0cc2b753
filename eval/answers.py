"""Answer eval: every method answers every case; an extractive baseline is always one of them.

A method maps (question, passages) to a reply. ``extractive`` needs no model; ``model`` builds
the grounded prompt, asks an LLM and, as serving does, lets the grounding guard replace an unfit
reply by the extractive one (counted). In-scope cases are also asked without every
document that answers them (unanswerable): the right reply then is a refusal.

The answer modes a knowledge base may be served in (``MODES``) are methods too, so the gate
weighs them like versions: ``extraction`` (the evidence step, then the best passage unit, no
model), ``model`` (the model's reply; an unfit one hands off), ``model+extraction`` (an unfit
reply replaced by the extractive one, as serving did before modes existed) and
``model-checked`` (the best passage unit, where the model does not refuse: the model only
decides). The three model modes share one model call per question (``modes_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from eval import scoring
from eval.evalset import Case, EvalSet, relevant
from models.base import Provider
from models.spec import REFUSAL
from rag import evidence, extractive, guard, prompt, yesno
from rag.evidence import Rule
from rag.index import KnowledgeBase, Passage
from rag.units import SENTENCES

PERSONA = prompt.DEFAULT_PERSONA
NO_ANSWER = "Não sei."
MODEL, EXTRACTION, MODEL_EXTRACTION = "model", "extraction", "model+extraction"
CHECKED = "model-checked"
MODES = (MODEL, EXTRACTION, MODEL_EXTRACTION, CHECKED)
# (question, passages) -> (the reply a customer gets, why the guard replaced the model's or "")
Method = Callable[[str, list[Passage]], tuple[str, str]]


def extractive_method(kb: KnowledgeBase, collection: str) -> Method:
    """The extractive reply as serving's fallback gives it: the best unit, list items with
    their lead-in and table rows with their header, ranked with the rare question terms and the
    number asked for, "Sim, "/"Não, " where it decides a yes/no question
    (``extractive.answer_in``)."""
    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        return extractive.answer_in(kb, collection, question, passages) or NO_ANSWER, ""
    return reply


def model_method(llm: Provider, kb: KnowledgeBase, collection: str, max_tokens: int = 64,
                 rule: Rule | None = None, sentences: int = 0, terms: float = 0.0,
                 first: int = 0, ranked_with: str = "", layout: str = SENTENCES) -> Method:
    """Serving's path: too little evidence refuses without the model (``rag.evidence``); the
    prompt shows the ``first`` passages (0 = all), whole or as their ``sentences`` closest
    units (``layout``, as the version was trained)."""
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
            return yesno.answer(question, text), ""  # "Sim, "/"Não, " as serving adds it
        return extractive.answer_in(kb, collection, question, passages) or NO_ANSWER, problem
    return reply


def extraction_method(kb: KnowledgeBase, collection: str, rule: Rule | None) -> Method:
    """The ``extraction`` mode as serving runs it: too little evidence refuses (hands off), as
    before a model; otherwise the best passage unit (``extractive_method`` never refuses)."""
    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        if rule is not None and not evidence.enough(question, passages, rule, kb, collection):
            return REFUSAL, ""
        return extractive.answer_in(kb, collection, question, passages) or REFUSAL, ""
    return reply


def model_alone(method: Method) -> Method:
    """The ``model`` mode of a model method: a reply the guard finds unfit hands off (the
    refusal) instead of quoting the passages; why is kept."""
    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        text, problem = method(question, passages)
        return (REFUSAL, problem) if problem else (text, "")
    return reply


def remembered(method: Method) -> Method:
    """The method, asked once for the same question and passages in a row: the two model
    modes of one model read the same reply (``run`` asks every method in turn)."""
    last: list[tuple[tuple[str, Sequence[str]], tuple[str, str]]] = []

    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        key = (question, [p.id for p in passages])
        if not last or last[0][0] != key:
            last[:] = [(key, method(question, passages))]
        return last[0][1]
    return reply


def checked(model: Method, kb: KnowledgeBase, collection: str) -> Method:
    """The ``model-checked`` mode of a model method: its refusal stands (the evidence step's or
    the model's own); where it answers, the best passage unit goes instead of its words."""
    quote = extraction_method(kb, collection, None)  # the evidence step ran in ``model``

    def reply(question: str, passages: list[Passage]) -> tuple[str, str]:
        text, _ = model(question, passages)
        return (REFUSAL, "") if text == REFUSAL else quote(question, passages)
    return reply


def modes_of(label: str, method: Method, kb: KnowledgeBase, collection: str
             ) -> dict[str, Method]:
    """A model method as its three modes: ``label`` (model+extraction, as before modes),
    ``label:model`` (the model alone) and ``label:model-checked``, one model call between
    them."""
    once = remembered(method)
    return {label: once, f"{label}:{MODEL}": model_alone(once),
            f"{label}:{CHECKED}": checked(once, kb, collection)}


def by_mode(outcomes: list[Outcome], label: str) -> dict[str, list[Outcome]]:
    """The outcomes of each answer mode, for the model of ``label`` (see ``modes_of``)."""
    names = {EXTRACTION: EXTRACTION, MODEL_EXTRACTION: label, MODEL: f"{label}:{MODEL}",
             CHECKED: f"{label}:{CHECKED}"}
    return {mode: [o for o in outcomes if o.method == name] for mode, name in names.items()}


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
