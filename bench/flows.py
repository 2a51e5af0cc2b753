"""Flow engine: the time of one ``flows.step`` call (no model, no database), p50 and p95.

Each case is one step of the demo flow (``demo/loja-aurora/flow.yaml``) from a fixed
session state, repeated ``--repeat`` times after a warm-up: the greeting (start, menu sent), a
menu answer by number, by option text and by meaning (a deterministic matcher stands in for the
embedder, so only the step is timed), a question with a valid and with an invalid CPF, an e-mail
that ends in a handoff, an AI exit word, and an HTTP result mapped into fields; also reading and
validating the flow from YAML. Absolute figures only: there is no baseline to divide by.

Run: ``.venv/bin/python bench/flows.py [--repeat 2000] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import flows  # noqa: E402
from flows import Context, HttpResult, Message  # noqa: E402

DEMO = ROOT / "demo" / "loja-aurora" / "flow.yaml"
NOW = datetime(2025, 1, 6, 17, 0, tzinfo=UTC)
CTX = Context(contact_name="Ana", contact_phone="+5511987654321", instance_name="loja-01")
HTTP = """
id: http
start: consulta
nodes:
  consulta:
    kind: http
    url: "https://api.loja.example/pedidos/{{fields.pedido}}"
    save: {fields.status: "$.pedido.status", vars.item: "pedido.itens[0].nome"}
    next: resposta
    on_error: fim
  resposta: {kind: message, text: "Seu pedido está {{fields.status}} ({{vars.item}}).", next: fim}
  fim: {kind: end}
"""


def matcher(text: str, options: Sequence[str]) -> tuple[int, float] | None:
    return (1, 0.82) if "troc" in text else None


def at(flow: flows.Flow, said: Sequence[str]) -> flows.State:
    state = flows.new_state(flow.id)
    for text in said:
        state = flows.step(flow, state, Message(text=text, now=NOW), context=CTX).state
    return state


def cases() -> dict[str, Callable[[], Any]]:
    text = DEMO.read_text()
    demo = flows.validate(flows.from_yaml(text))
    http = flows.validate(flows.from_yaml(HTTP), ["pedido"])
    menu, cpf = at(demo, ["oi"]), at(demo, ["oi", "2", "AU20250417"])
    email, ai = at(demo, ["oi", "2", "AU20250417", "111.444.777-35"]), at(demo, ["oi", "1"])
    waiting = flows.step(http, flows.new_state("http", fields={"pedido": "AU20250417"}),
                         Message(text="x", now=NOW), context=CTX).state
    data = {"pedido": {"status": "em trânsito", "itens": [{"nome": "Blusa"}]}}

    def one(flow: flows.Flow, state: flows.State, incoming: flows.Incoming,
            match: flows.Matcher | None = None) -> Callable[[], Any]:
        return lambda: flows.step(flow, state, incoming, context=CTX, match=match)

    def msg(t: str) -> Message:
        return Message(text=t, now=NOW)

    return {
        "start: greeting menu": one(demo, flows.new_state(demo.id), msg("oi")),
        "menu: by number": one(demo, menu, msg("2")),
        "menu: by option text": one(demo, menu, msg("Falar com um atendente")),
        "menu: by meaning": one(demo, menu, msg("quero trocar uma blusa"), matcher),
        "menu: invalid, asked again": one(demo, menu, msg("banana"), matcher),
        "question: valid cpf": one(demo, cpf, msg("111.444.777-35")),
        "question: invalid cpf": one(demo, cpf, msg("111.444.777-36")),
        "question: email, handoff": one(demo, email, msg("ana@exemplo.com.br")),
        "ai: exit word to menu": one(demo, ai, msg("sair")),
        "http: result mapped": one(http, waiting, HttpResult(ok=True, data=data, now=NOW)),
        "from_yaml + validate (demo)": lambda: flows.validate(flows.from_yaml(text)),
    }


def measure(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    for _ in range(min(100, repeat)):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    return {"p50_us": statistics.median(times), "p95_us": times[int(0.95 * (len(times) - 1))],
            "mean_us": statistics.fmean(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2000, help="timed calls per case")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    figures = {name: measure(fn, args.repeat) for name, fn in cases().items()}
    table = Table(title=f"flows.step, {args.repeat} calls per case (microseconds)")
    for col in ("case", "p50", "p95", "mean"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for name, f in figures.items():
        table.add_row(name, f"{f['p50_us']:.1f}", f"{f['p95_us']:.1f}", f"{f['mean_us']:.1f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"repeat": args.repeat, "cases": figures}, indent=2))


if __name__ == "__main__":
    main()
