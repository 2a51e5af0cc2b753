"""A curated set on disk: a Hugging Face dataset, its content hash and a dataset card."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from finetune.curate import Pair, Report


def load_pairs(folder: Path) -> list[Pair]:
    """The pairs of a curated dataset saved by ``save``."""
    import datasets

    return [Pair(**row) for row in datasets.load_from_disk(str(folder))]


def content_hash(pairs: list[Pair]) -> str:
    """Hash of the examples themselves, so a trained model can name the data it saw."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps(asdict(p), ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


def save(pairs: list[Pair], report: Report, out: Path, **meta: object) -> str:
    """Write the dataset (``datasets.save_to_disk``) and its card; returns the data hash."""
    import datasets

    digest = content_hash(pairs)
    rows = [asdict(p) for p in pairs]
    features = datasets.Features({
        "question": datasets.Value("string"), "answer": datasets.Value("string"),
        "source": datasets.Value("string"), "conversation": datasets.Value("string"),
        "passages": datasets.Sequence(datasets.Value("string")),
        "docs": datasets.Sequence(datasets.Value("string"))})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(out))
    sources = Counter(p.source for p in pairs)
    dropped = "\n".join(f"| {why} | {n} |"
                        for why, n in report.dropped.most_common()) or "| - | 0 |"
    excluded = ", ".join(f"{who}: {n}" for who, n in report.excluded_messages.items()) or "none"
    (out / "README.md").write_text(f"""# Atende curated training set

Question-answer pairs for supervised fine-tuning of the local model: customer turns paired with
the human agent's reply and the passages the knowledge base retrieves for them.

- examples: {len(pairs)} ({", ".join(f"{k}: {v}" for k, v in sorted(sources.items()))})
- data sha256: `{digest}`
- messages never used (written by the assistant, a bot or a flow): {excluded}
- personal data (names of known contacts, phones, e-mails, CPF, CNPJ, CEP, card numbers,
  addresses) replaced by placeholders such as [NOME], [TELEFONE], [CPF]
- settings: {json.dumps(meta, ensure_ascii=False, default=str)}

| dropped because | pairs |
|---|---|
{dropped}
""")
    (out / "curation.json").write_text(json.dumps(
        {"kept": report.kept, "dropped": dict(report.dropped),
         "excluded_messages": dict(report.excluded_messages), "sha256": digest, **meta},
        ensure_ascii=False, indent=2, default=str))
    return digest
