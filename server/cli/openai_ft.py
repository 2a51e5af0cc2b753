"""``atende finetune openai-*``: fine-tune a model on OpenAI instead of locally."""

from __future__ import annotations

from pathlib import Path

import typer

from server.cli.common import console, fail
from server.cli.finetune import app


@app.command("openai-export")
def openai_export(
    dataset: Path = typer.Argument(..., help="Curated dataset folder."),
    out: Path = typer.Option(..., help="JSONL file to write (OpenAI chat fine-tuning format)."),
) -> None:
    """Write the curated set as OpenAI chat fine-tuning JSONL (the serving prompt included)."""
    from finetune.dataset import load_pairs
    from finetune.openai_ft import to_jsonl

    try:
        pairs = load_pairs(dataset)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"{dataset} is not a curated dataset: {exc}")
    console.print(f"Wrote {to_jsonl(pairs, out)} examples to {out}.")


@app.command("openai-start")
def openai_start(
    jsonl: Path = typer.Argument(..., help="JSONL from `finetune openai-export`."),
    model: str = typer.Option("gpt-4o-mini-2024-07-18", help="Base model to fine-tune."),
    suffix: str = typer.Option(None, help="Suffix of the resulting model's name."),
    epochs: int = typer.Option(None, help="Epochs (default: OpenAI chooses)."),
    wait: bool = typer.Option(True, help="Poll until the job ends."),
    poll: float = typer.Option(10.0, help="Seconds between polls."),
) -> None:
    """Upload the file and start an OpenAI fine-tuning job (OPENAI_API_KEY, OPENAI_BASE_URL);
    with --wait, follow it to the end and print the resulting model's name."""
    import openai

    from finetune import openai_ft

    if not jsonl.is_file():
        fail(f"{jsonl} does not exist")
    try:
        client = openai.OpenAI()
        job = openai_ft.start(client, jsonl, model, suffix=suffix, epochs=epochs)
        console.print(f"Job {job.id} created ({job.status}).")
        if wait:
            with console.status("Waiting for the job...") as status:
                job = openai_ft.wait(client, job.id, poll_s=poll, on_status=lambda j: status.update(
                    f"Job {j.id}: {j.status} (trained tokens: {j.trained_tokens or 0})"))
    except openai.OpenAIError as exc:
        fail(f"OpenAI: {exc}")
    if job.status == "failed":
        fail(f"job {job.id} failed: {job.error.message if job.error else 'no reason given'}")
    console.print(f"Job {job.id}: {job.status}"
                  + (f"; model {job.fine_tuned_model}" if job.fine_tuned_model else ""))
