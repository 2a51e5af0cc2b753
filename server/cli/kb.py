"""``atende kb``: ingest, list, delete and re-embed knowledge-base documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.index import KnowledgeBase
from server.cli.common import collection_option, console, fail, json_option, write_out
from server.settings import Settings, get_settings

app = typer.Typer(help="Knowledge base: ingest, list, delete and reindex documents.",
                  no_args_is_help=True)
COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
           TimeElapsedColumn())


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            fail(f"{p}: no such file or folder")
    return found


def _open(settings: Settings) -> KnowledgeBase:
    from server.runtime import StoreBusy, open_kb

    try:
        return open_kb(settings)
    except (StoreBusy, ValueError) as exc:
        fail(str(exc))


def _ingest_here(kb: KnowledgeBase, collection: str, path: Path) -> dict[str, object]:
    from rag.parsing import DocumentError, read_text

    try:
        res = kb.ingest(collection, path.name, read_text(path))
    except DocumentError as exc:
        return {"doc": path.name, "status": "error", "error": str(exc)}
    return {"doc": path.name, "status": res.status, "chunks": res.chunks}


def _ingest_there(server: str, token: str, collection: str, path: Path) -> dict[str, object]:
    """Through the running server's admin API (Qdrant local mode allows one process)."""
    try:
        resp = httpx.post(f"{server}/api/kb/{collection}/documents", timeout=600,
                          headers={"Authorization": f"Bearer {token}"},
                          files=[("files", (path.name, path.read_bytes()))])
    except httpx.HTTPError as exc:
        return {"doc": path.name, "status": "error", "error": f"server: {type(exc).__name__}"}
    if resp.status_code not in (200, 422):
        return {"doc": path.name, "status": "error", "error": f"server answered "
                f"{resp.status_code}: {resp.text[:200]}"}
    return dict(resp.json()[0])


@app.command("ingest")
def kb_ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.md, .txt) to ingest."),
    collection: str = collection_option("Knowledge base; default ATENDE_KB_COLLECTION."),
    json_out: Path = json_option("Also write the results to this file."),
) -> None:
    """Add or update documents; unchanged files are skipped, changed ones replaced."""
    from server.runtime import StoreBusy, open_kb

    settings = get_settings()
    name = collection or settings.kb_collection
    files = _files(paths)
    send: Callable[[Path], dict[str, object]]
    try:
        kb = open_kb(settings)
        send = partial(_ingest_here, kb, name)
    except StoreBusy as exc:
        if settings.admin_token is None:
            fail(f"{exc}; set ATENDE_ADMIN_TOKEN to send the files to the running server")
        kb = None
        server = settings.public_url or "http://127.0.0.1:8000"
        console.print(f"The server is running: sending the files to {server}.")
        send = partial(_ingest_there, server, settings.admin_token.get_secret_value(), name)
    except ValueError as exc:
        fail(str(exc))
    results: list[dict[str, object]] = []
    with Progress(*COLUMNS, console=console) as progress:
        task = progress.add_task(f"Ingesting into {name}", total=len(files))
        for f in files:
            results.append(send(f))
            progress.advance(task)
    if kb is not None:
        kb.client.close()
    table = Table("document", "status", "passages")
    for r in results:
        table.add_row(str(r["doc"]), str(r["status"]), str(r.get("chunks", r.get("error"))))
    console.print(table)
    if json_out:
        write_out(json_out, json.dumps(results, ensure_ascii=False, indent=2))
    if any(r["status"] == "error" for r in results):
        raise typer.Exit(1)


@app.command("reindex")
def kb_reindex(collection: str = collection_option("Knowledge base; default the configured.")
               ) -> None:
    """Re-embed every passage with the configured embedder (after changing ATENDE_EMBEDDER)."""
    settings = get_settings()
    name = collection or settings.kb_collection
    kb = _open(settings)
    if not kb.client.collection_exists(name):
        fail(f"no knowledge base {name!r}")
    total = kb.client.count(name).count
    with Progress(*COLUMNS, console=console) as progress:
        task = progress.add_task(f"Re-embedding {name} with {kb.embedder.name}", total=total)
        done = kb.reindex(name, tick=lambda n: progress.advance(task, n))
    kb.client.close()
    console.print(f"{name}: {done} passages re-embedded with {kb.embedder.name}.")


@app.command("list")
def kb_list(collection: str = collection_option("Knowledge base; default the configured.")
            ) -> None:
    """List the documents of a knowledge base with their passage counts."""
    settings = get_settings()
    kb = _open(settings)
    docs = kb.documents(collection or settings.kb_collection)
    kb.client.close()
    table = Table("document", "passages")
    for doc, n in sorted(docs.items()):
        table.add_row(doc, str(n))
    console.print(table)


@app.command("delete")
def kb_delete(doc: str = typer.Argument(..., help="Document name, as `kb list` shows it."),
              collection: str = collection_option("Knowledge base; default the configured.")
              ) -> None:
    """Remove a document and its passages from a knowledge base."""
    settings = get_settings()
    kb = _open(settings)
    removed = kb.delete(collection or settings.kb_collection, doc)
    kb.client.close()
    if not removed:
        fail(f"no document {doc!r}")
    console.print(f"Removed {doc} ({removed} passages).")


