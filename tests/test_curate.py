"""Curation: assistant output and personal data never reach the training set."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import datasets
from sqlalchemy import select

from finetune.curate import Turn, curate
from finetune.pii import redact
from server.schema import Contact, Conversation, Message
from server.services import instances
from tests.conftest import ATENDE, ROOT, server_env

BOT_TEXT = "Olá! Sou o assistente virtual e o prazo de troca é de trinta dias corridos."


def test_redaction_of_every_kind() -> None:
    text = ("Sou Joana Prado, CPF 123.456.789-09, tel (11) 98765-4321, joana@exemplo.com.br, "
            "Rua das Acácias, 45, CEP 04567-000, cartão 4111 1111 1111 1111, "
            "CNPJ 12.345.678/0001-90. Paguei R$ 299,00 em 30 dias.")
    out = redact(text, ["Joana Prado"])
    for secret in ("Joana", "Prado", "123.456.789-09", "98765-4321", "joana@", "Acácias",
                   "04567-000", "4111", "12.345.678"):
        assert secret not in out
    for tag in ("[NOME]", "[CPF]", "[TELEFONE]", "[EMAIL]", "[ENDERECO]", "[CEP]", "[CARTAO]",
                "[CNPJ]"):
        assert tag in out
    assert "R$ 299,00 em 30 dias" in out  # facts stay


def test_pairs_use_only_human_replies() -> None:
    turns = [Turn("customer", "qual o prazo pra trocar?"), Turn("assistant", BOT_TEXT),
             Turn("agent", BOT_TEXT), Turn("customer", "e se ficou grande?"),
             Turn("assistant", "Vou chamar um atendente."),
             Turn("agent", "Você pode trocar por outro tamanho em até 30 dias, sem custo."),
             Turn("customer", "oi"), Turn("agent", "Olá! Em que posso ajudar hoje?"),
             Turn("customer", "vcs tem loja no rio?"), Turn("agent", "Não sei informar isso.")]
    pairs, report = curate([("c1", turns)])
    assert [(p.question, p.answer) for p in pairs] == [
        ("e se ficou grande?", "Você pode trocar por outro tamanho em até 30 dias, sem custo.")]
    assert report.dropped == {"agent_forwarded_bot_reply": 1, "greeting_only": 1,
                              "agent_does_not_know": 1}
    assert report.excluded_messages == {"assistant": 2}


def test_curate_command_on_a_seeded_database(tmp_path, sessions, db_url) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    now = datetime.now(UTC)
    with sessions.begin() as s:
        c = Contact(name="Marcos Albuquerque", phone="5511987650000")
        s.add(c)
        s.flush()
        conv = Conversation(contact_id=c.id, instance_id=inst.id, address="5511987650000")
        s.add(conv)
        s.flush()
        script = [
            ("customer", "oi, aqui é o Marcos Albuquerque, meu CPF é 123.456.789-09. "
                         "qual o prazo de troca?"),
            ("assistant", BOT_TEXT),
            ("agent", BOT_TEXT),  # the agent only forwarded the assistant's reply
            ("customer", "o boleto vence quando? meu email é marcos@exemplo.com"),
            ("agent", "Marcos, o boleto vence em 3 dias úteis; te mandei no (11) 98765-4321."),
            ("customer", "o boleto vence quando? meu email é marcos@exemplo.com"),
            ("agent", "Marcos, o boleto vence em 3 dias úteis; te mandei no (11) 98765-4321."),
        ]
        for i, (author, text) in enumerate(script):
            s.add(Message(instance_id=inst.id, conversation_id=conv.id, author=author,
                          direction="in" if author == "customer" else "out", text=text,
                          status="answered" if author == "customer" else "sent",
                          provider_message_id=f"m{i}", sent_at=now))
    env = server_env(tmp_path / "data", ATENDE_DATABASE_URL=db_url)
    out_dir = tmp_path / "set"
    demo = ROOT / "demo" / "loja-aurora"
    subprocess.run([*ATENDE, "kb", "ingest", str(demo / "docs")], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    run = subprocess.run([*ATENDE, "finetune", "curate", "--out", str(out_dir), "--add-set",
                          str(demo), "--add-split", "none", "--json", str(tmp_path / "r.json")],
                         env={**env, "COLUMNS": "200"}, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ds = datasets.load_from_disk(str(out_dir))
    chat = [r for r in ds if r["source"] == "chat"]
    assert len(chat) == 1 and len(ds) == 1  # the set's cases are all held out ("none" split)
    everything = json.dumps(ds.to_list(), ensure_ascii=False)
    assert "assistente virtual" not in everything and "trinta dias" not in everything
    for secret in ("Marcos", "Albuquerque", "123.456.789-09", "marcos@", "98765-4321"):
        assert secret not in everything
    assert chat[0]["answer"] == "[NOME], o boleto vence em 3 dias úteis; te mandei no [TELEFONE]."
    assert chat[0]["passages"] and any("boleto" in p for p in chat[0]["passages"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dropped"] == {"agent_forwarded_bot_reply": 1, "near_duplicate": 1}
    assert report["excluded_messages"] == {"assistant": 1}
    card = (out_dir / "README.md").read_text()
    assert report["sha256"] in card and "near_duplicate" in card
    with sessions() as s:  # curation reads, never changes, the conversations
        assert len(s.scalars(select(Message)).all()) == 7
