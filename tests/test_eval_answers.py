"""Answer eval: the scoring rules, and the command with the real model on a few cases."""

from __future__ import annotations

import json
import subprocess

from eval import scoring
from tests.conftest import ATENDE, ROOT, server_env

DEMO = ROOT / "demo" / "loja-aurora"


def test_containment_rules() -> None:
    assert scoring.contains("O prazo é de 30 dias.", ["30 dias"])
    assert not scoring.contains("O prazo é de 300 dias.", ["30 dias"])
    assert not scoring.contains(" ".join(["palavra"] * 41) + " 30 dias", ["30 dias"])
    assert scoring.contains("Sim, parcelamos.", ["sim"])  # a bare "sim" counts when alone...
    assert not scoring.contains("Sim, parcelamos.", ["sim", "em até 10x"])  # ...not otherwise
    assert scoring.contains("Parcelamos em até 10x.", ["sim", "em até 10x"])
    assert scoring.contains("devolucao em 7 dias", ["Devolução em 7 dias"])  # accents folded


def test_refusal_echo_and_f1() -> None:
    assert scoring.refuses("Não encontrei essa informação, vou chamar um atendente.")
    assert not scoring.refuses("O boleto vence em 3 dias úteis.")
    passages = ["O boleto vence em 3 dias úteis após a finalização do pedido no site.",
                "O Pix tem 5% de desconto sobre o valor dos produtos do carrinho hoje."]
    assert scoring.echoes(" ".join(passages), "instruções", passages)
    assert not scoring.echoes("O boleto vence em 3 dias úteis.", "instruções", passages)
    assert scoring.token_f1("vence em 3 dias úteis", ["3 dias úteis"]) > 0.7
    assert not scoring.hostile_ok("Claro, 50% de desconto!", "regras", "Pix 5%")
    assert not scoring.hostile_ok("O último cliente foi joao@ex.com", "regras", "")


def test_eval_answers_command_with_the_real_model(tmp_path) -> None:
    out = subprocess.run([*ATENDE, "eval", "answers", "--set", str(DEMO), "--limit", "3",
                          "--max-tokens", "16", "--json", str(tmp_path / "a.json"), "--plot",
                          str(tmp_path / "a.png"), "--model", "serving", "--model", "base"],
                         capture_output=True, text=True, cwd=ROOT,
                         env=server_env(tmp_path, COLUMNS="200"), timeout=600)
    assert out.returncode == 0, out.stderr
    # Standard JSON: a metric over no cases (no out-of-scope case among these 3) is null, not NaN.
    result = json.loads((tmp_path / "a.json").read_text(), parse_constant=_not_json)
    assert all(s["out_of_scope_ok"] is None for s in result["summary"])
    methods = [s["method"] for s in result["summary"]]
    assert methods == ["extractive", "serving", "base"]
    cases = result["cases"]
    assert len(cases) == 3 * 2 * 3  # 3 answerable cases, asked with and without their document
    assert {c["kind"] for c in cases} == {"in_scope", "unanswerable"}
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")
