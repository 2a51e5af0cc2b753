"""LLM layer benchmarks, each as a ratio against a baseline run in the same process.

1. Generation tokens/s through ``models.providers.llamacpp`` vs raw llama-cpp-python on the same
   prompt (target >= 0.95).
2. Time to first token on a repeated ~1,000-token prefix (persona + passages) with prefix reuse
   vs with the KV cache reset before each call (target >= 2x).

Run: ``.venv/bin/python bench/llm_bench.py [--model GGUF] [--gpu-layers N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from models import chat_template
from models.bundled import bundled_gguf
from models.providers.llamacpp import LlamaCppProvider

PASSAGE = ("A Loja Aurora entrega em todo o Brasil. Pedidos para a cidade de São Paulo chegam "
           "em até 1 dia útil pela entrega expressa; para as demais capitais do Sudeste, de 2 a "
           "5 dias úteis. O frete é grátis nas compras acima de R$ 299,00. ")
QUESTIONS = ["vcs entregam em sp?", "qto custa o frete?", "chega em quantos dias no rio?",
             "tem frete gratis?", "posso retirar na loja?", "entregam sabado?"]


def _messages(prefix_tokens: int, provider: LlamaCppProvider, question: str) -> list:
    passages = PASSAGE
    while provider.count_tokens(passages) < prefix_tokens:
        passages += PASSAGE
    return [{"role": "system", "content": f"Você é um atendente.\n\nTrechos:\n{passages}"},
            {"role": "user", "content": question}]


def throughput(provider: LlamaCppProvider, rounds: int, max_tokens: int) -> dict[str, float]:
    """Tokens/s of our layer and of the raw binding, alternating, same prompt and settings."""
    msgs = [{"role": "user", "content": "Escreva um parágrafo longo sobre o mar."}]
    prompt = provider.llama.tokenize(chat_template.render(msgs).encode(), add_bos=False,
                                     special=True)
    ours, raw = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        done = provider.complete(msgs, max_tokens=max_tokens, temperature=0.0)
        ours.append(done.completion_tokens / (time.perf_counter() - t))
        t = time.perf_counter()
        out = provider.llama.create_completion(prompt, max_tokens=max_tokens, temperature=0.0,
                                               stop=chat_template.STOP)
        raw.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t))  # type: ignore[index]
    o, r = statistics.median(ours), statistics.median(raw)
    return {"ours_tok_s": o, "raw_tok_s": r, "ratio": o / r}


def ttft(provider: LlamaCppProvider, prefix_tokens: int) -> dict[str, float]:
    """Median time to first token over several questions sharing one long prefix."""
    def first_token(question: str) -> float:
        t = time.perf_counter()
        stream = provider.stream(_messages(prefix_tokens, provider, question), max_tokens=4,
                                 temperature=0.0)
        next(iter(stream))
        took = time.perf_counter() - t
        for _ in stream:
            pass
        return took

    first_token(QUESTIONS[-1])  # warm up; with reuse this also loads the prefix
    provider.reuse_prefix = True
    reuse = [first_token(q) for q in QUESTIONS]
    provider.reuse_prefix = False
    fresh = [first_token(q) for q in QUESTIONS]
    provider.reuse_prefix = True
    r, f = statistics.median(reuse), statistics.median(fresh)
    prompt_tokens = provider.count_tokens(
        chat_template.render(_messages(prefix_tokens, provider, QUESTIONS[0])))
    return {"prompt_tokens": prompt_tokens, "reuse_s": r, "no_reuse_s": f, "speedup": f / r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, help="GGUF file (default: the bundled Gemma)")
    ap.add_argument("--gpu-layers", type=int, default=0, help="layers on CUDA (-1 = all)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--prefix-tokens", type=int, default=1000)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    path = args.model or bundled_gguf(Path("data/models"))
    provider = LlamaCppProvider(path, n_ctx=2048, n_gpu_layers=args.gpu_layers)
    tp = throughput(provider, args.rounds, args.max_tokens)
    tf = ttft(provider, args.prefix_tokens)
    table = Table(title=f"LLM layer, {path.name}, gpu_layers={args.gpu_layers}")
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("generation tokens/s (vs raw llama-cpp-python)", f"{tp['ours_tok_s']:.1f}",
                  f"{tp['raw_tok_s']:.1f}", f"{tp['ratio']:.3f}")
    table.add_row(f"time to first token, {tf['prompt_tokens']}-token prompt (vs no reuse)",
                  f"{tf['reuse_s'] * 1000:.0f} ms", f"{tf['no_reuse_s'] * 1000:.0f} ms",
                  f"{tf['speedup']:.1f}x")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"throughput": tp, "ttft": tf}, indent=2))


if __name__ == "__main__":
    main()
