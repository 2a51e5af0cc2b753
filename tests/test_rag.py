"""Knowledge base: chunking, Portuguese lexical terms, hybrid search, ingestion rules."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from qdrant_client import QdrantClient

from rag import extractive, lexical
from rag.chunking import chunk
from rag.embedders import Embedder
from rag.index import COLLECTION_NAME, EmbedderMismatch, IngestConflict, KnowledgeBase
from rag.parsing import read_text
from tests.conftest import DEMO_DOCS

DOC = """# Trocas

## Prazo

Você pode trocar em até 30 dias. Açúcar, ç e emoji 😀 ficam como estão.

| tamanho | busto |
|---|---|
| P | 86 cm |

## Reembolso

O reembolso sai em até 5 dias úteis.
"""


def test_chunks_keep_text_headings_and_order() -> None:
    chunks = chunk(DOC)
    assert [c.headings for c in chunks] == [("Trocas", "Prazo"), ("Trocas", "Reembolso")]
    assert "Açúcar, ç e emoji 😀 ficam como estão." in chunks[0].text
    assert "| P | 86 cm |" in chunks[0].text  # a table stays whole and readable
    assert [c.position for c in chunks] == [0, 1]


def test_long_sections_are_split_under_the_word_cap() -> None:
    text = "# T\n\n" + " ".join(f"Frase número {i} sobre entregas." for i in range(150))
    chunks = chunk(text)
    assert len(chunks) > 1 and all(len(c.text.split()) <= 200 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()[2:]


def test_every_piece_of_a_long_table_carries_its_header() -> None:
    header = "| produto | linha | tamanho | preço |\n|---|:---:|---|---|"
    rows = [f"| Máscara de nutrição {i} | Cachos Livres | 300 g | R$ {i},90 |" for i in range(80)]
    chunks = chunk("# Preços\n\n" + header + "\n" + "\n".join(rows))
    assert len(chunks) > 2 and all(len(c.text.split()) <= 200 for c in chunks)
    assert all(c.text.startswith(header + "\n") for c in chunks)  # "300 g" says what it is
    found = [line for c in chunks for line in c.text.split("\n")[2:]]
    assert found == rows  # every row once, in order; only the header repeats


def test_lexical_terms_fold_accents_and_stem() -> None:
    assert lexical.tokens("Não devolução") == lexical.tokens("nao devolucao")
    assert lexical.tokens("devoluções cartões") == lexical.tokens("devolucao cartao")
    assert lexical.tokens("entregas") == lexical.tokens("entrega")
    assert lexical.tokens("vcs entregam p/ sp?", query=True) == lexical.tokens(
        "vocês entregam para São Paulo")
    assert lexical.tokens("de para com a o") == []


@pytest.mark.parametrize("question, doc", [
    ("vcs entregam em sp?", "entregas-e-frete.md"),
    ("qto tempo p/ trocar", "trocas-e-devolucoes.md"),
    ("da pra parcelar em quantas vezes no cartao", "pagamentos.md"),
    ("como lavo uma camisa de linho", "tamanhos-e-cuidados.md"),
    ("que horas vcs abrem no sabado", "atendimento-e-loja-fisica.md"),
])
def test_hybrid_search_finds_the_right_document(demo_kb, question: str, doc: str) -> None:
    assert demo_kb.search("demo", question, top_k=3)[0].doc == doc


@pytest.fixture(params=["edge", "local"])
def store(request):
    """Both embedded stores: Qdrant Edge (the default) and qdrant-client's local mode."""
    from rag.edge import EdgeClient

    return (lambda path: EdgeClient(path)) if request.param == "edge" else (
        lambda path: QdrantClient(path=path))


def test_ingest_is_idempotent_replaces_and_deletes(tmp_path, e5, store) -> None:
    kb = KnowledgeBase(store(str(tmp_path / "q")), e5)
    assert kb.ingest("c", "trocas.md", DOC).status == "added"
    assert kb.ingest("c", "trocas.md", DOC).status == "unchanged"
    changed = DOC.replace("30 dias", "45 dias")
    assert kb.ingest("c", "trocas.md", changed).status == "replaced"
    assert kb.documents("c") == {"trocas.md": 2}
    hit = kb.search("c", "prazo para trocar", top_k=1)[0]
    assert "45 dias" in hit.text
    assert kb.delete("c", "trocas.md") == 2 and kb.documents("c") == {}
    kb.client.close()


def test_collection_refuses_another_embedder(tmp_path, e5, store) -> None:
    from rag.embedders import load_embedder

    path = str(tmp_path / "q")
    kb = KnowledgeBase(store(path), e5)
    kb.ingest("c", "a.md", DOC)
    kb.client.close()
    minilm = load_embedder("sentence-transformers")
    other = KnowledgeBase(store(path), minilm)
    with pytest.raises(EmbedderMismatch, match="atende kb reindex"):
        other.search("c", "prazo")
    # The sentence-transformers backend serves a collection of its own.
    other.ingest("mini", "a.md", DOC)
    assert other.search("mini", "reembolso em quantos dias", top_k=1)[0].heading.endswith(
        "Reembolso")
    other.client.close()


def test_extractive_answer_is_a_sentence_of_the_passages(demo_kb, e5) -> None:
    passages = demo_kb.search("demo", "o boleto vence qndo?", top_k=3)
    answer = extractive.best_sentence(e5, "o boleto vence qndo?", passages)
    assert answer and "3 dias úteis" in answer
    assert any(answer.rstrip("…") in p.text.replace("**", "") for p in passages)


def test_extractive_answer_is_never_a_table_header_row(demo_kb, e5) -> None:
    # It was "Forma de pagamento | Como o valor é devolvido", sent as the guard's fallback.
    question = "em qnto tempo cai o reembolso?"
    answer = extractive.best_sentence(e5, question, demo_kb.search("demo", question, top_k=4))
    assert answer and "Forma de pagamento" not in answer and "5 dias úteis" in answer


def test_demo_documents_parse() -> None:
    for f in DEMO_DOCS.glob("*.md"):
        assert len(chunk(read_text(f))) >= 2


def test_reindex_re_embeds_and_resumes_after_interruption(tmp_path, e5, store) -> None:
    from rag.embedders import load_embedder

    path = str(tmp_path / "q")
    kb = KnowledgeBase(store(path), e5)
    kb.ingest("c", "trocas.md", DOC)
    kb.client.close()
    minilm = KnowledgeBase(store(path), load_embedder("sentence-transformers"))
    with pytest.raises(EmbedderMismatch):
        minilm.search("c", "reembolso")
    assert minilm.reindex("c") == 2
    assert minilm.search("c", "em quantos dias sai o reembolso", top_k=1)[0].heading.endswith(
        "Reembolso")
    meta = minilm.client.get_collection("c").config.metadata or {}
    assert meta["embedder"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["dim"] == 384
    assert not minilm.client.collection_exists("c__reindex")
    # Interrupted after the side collection was finished and the original dropped: resumes.
    from qdrant_client import models as qm

    minilm.ingest("d", "trocas.md", DOC)
    minilm._create("d__reindex", complete=True)
    pts, _ = minilm.client.scroll("d", limit=10, with_payload=True, with_vectors=True)
    minilm.client.upsert("d__reindex", [qm.PointStruct(id=p.id, payload=p.payload,
                                                           vector=p.vector) for p in pts])
    minilm.client.delete_collection("d")
    assert minilm.reindex("d") == 2 and minilm.documents("d") == {"trocas.md": 2}
    minilm.client.close()


def test_a_second_process_is_refused_by_the_edge_store(tmp_path) -> None:
    from rag.edge import EdgeClient

    first = EdgeClient(str(tmp_path / "q"))
    with pytest.raises(RuntimeError, match="already accessed by another process"):
        EdgeClient(str(tmp_path / "q"))
    first.close()
    EdgeClient(str(tmp_path / "q")).close()  # free again once the first is closed


def _manual(version: int, sections: int) -> str:
    """A document of ``sections`` passages, different in each version."""
    return "# Manual\n\n" + "".join(
        f"## Seção {i}\n\nVersão {version}: o item {i} custa {i * 7 + version} reais e chega "
        f"em {i + version} dias.\n\n" for i in range(sections))


class _GatedEmbedder:
    """The real embedder; it waits at ``gate`` before embedding, so that the test can overlap
    operations with the embedding as they overlapped on the server (seconds there)."""

    def __init__(self, inner: Embedder, gate: Callable[[], object]) -> None:
        self.inner, self.name, self.dim, self.gate = inner, inner.name, inner.dim, gate
        self.embedding = threading.Event()

    def passages(self, texts: list[str]) -> np.ndarray:
        self.embedding.set()
        assert self.gate() is not False, "gate timed out"
        return self.inner.passages(texts)

    def query(self, text: str) -> np.ndarray:
        return self.inner.query(text)


def test_two_uploads_of_one_document_at_once_leave_one_version(tmp_path, e5, store) -> None:
    # Both read the (empty) old passages, embedded, and each removed only what it had seen:
    # 12 + 12 passages, both versions answering. The gate has both embed at the same time.
    both = threading.Barrier(2)
    kb = KnowledgeBase(store(str(tmp_path / "q")), _GatedEmbedder(e5, lambda: both.wait(30)))
    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda v: kb.ingest("c", "manual.md", _manual(v, 12)).status,
                                   [1, 2]))
    assert statuses == ["added", "replaced"]  # the last one to write wins
    assert kb.documents("c") == {"manual.md": 12}
    hashes = {(p.payload or {})["hash"] for p in kb._all_points("c", vectors=False)}
    assert len(hashes) == 1  # one version, whole
    kb.client.close()


def test_a_delete_while_an_upload_embeds_sticks(tmp_path, e5, store) -> None:
    # DELETE answered "removed 3", then the re-upload that was embedding finished "replaced"
    # with 80 passages: the document came back.
    kb = KnowledgeBase(store(str(tmp_path / "q")), e5)
    assert kb.ingest("c", "manual.md", _manual(1, 3)).chunks == 3
    deleted = threading.Event()
    gated = kb.embedder = _GatedEmbedder(e5, lambda: deleted.wait(30))
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(kb.ingest, "c", "manual.md", _manual(2, 80))
        assert gated.embedding.wait(timeout=30)
        assert kb.delete("c", "manual.md") == 3  # not kept waiting for the embedding
        deleted.set()
        with pytest.raises(IngestConflict, match="deleted while this upload"):
            upload.result(timeout=60)
    assert kb.documents("c") == {}
    # Uploaded again afterwards, it goes in.
    assert kb.ingest("c", "manual.md", _manual(2, 80)).status == "added"
    kb.client.close()


def test_a_knowledge_base_name_is_at_most_200_bytes(tmp_path, e5) -> None:
    # 64 emoji are 64 characters but 256 bytes, over a file name's 255: every use of that
    # knowledge base was a 500 (File name too long).
    from typing import Annotated

    from pydantic import Field, TypeAdapter, ValidationError

    from rag.edge import EdgeClient

    # The routes and settings check the name with pydantic, the CLI with re.
    checked = TypeAdapter(Annotated[str, Field(pattern=COLLECTION_NAME)])
    for name in ["😀" * 64, "😀" * 51, "x" * 50 + "😀", "a" * 65, ".a", "a/b"]:
        assert not re.fullmatch(COLLECTION_NAME, name), name
        with pytest.raises(ValidationError):
            checked.validate_python(name)
    longest = ["😀" * 50, "a" * 64, "ção" * 21 + "é", "中" * 64]
    for name in longest:
        assert re.fullmatch(COLLECTION_NAME, name) and checked.validate_python(name) == name
        assert len(name.encode()) <= 200
    kb = KnowledgeBase(EdgeClient(str(tmp_path / "q")), e5)
    for name in longest:  # each works as a collection, its reindex side folder too
        kb.ingest(name, "trocas.md", DOC)
        assert kb.documents(name) == {"trocas.md": 2}
        assert kb.reindex(name) == 2
    with pytest.raises(ValueError, match="invalid collection name"):  # not an OSError
        kb.client.collection_exists("😀" * 64)
    kb.client.close()
