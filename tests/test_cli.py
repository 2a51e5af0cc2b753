"""`atende kb` on the command line: ingest with a bad file among good ones, list, delete."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.conftest import ATENDE, ROOT, server_env

ADMIN = {"Authorization": "Bearer test-admin-token"}


def _atende(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATENDE, *args], env={**env, "COLUMNS": "200"}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_kb_ingest_list_delete(tmp_path) -> None:
    env = server_env(tmp_path / "data")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "horario.md").write_text("# Horário\n\nAtendemos de segunda a sexta, das 8h às 18h.")
    (docs / "vazio.md").write_text("  \n")
    out = _atende(env, "kb", "ingest", str(docs), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 1  # one file failed; the good one still went in
    results = {r["doc"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert results["horario.md"]["status"] == "added"
    assert results["vazio.md"]["status"] == "error" and "empty" in results["vazio.md"]["error"]
    again = _atende(env, "kb", "ingest", str(docs / "horario.md"))
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert "horario.md" in _atende(env, "kb", "list").stdout
    assert _atende(env, "kb", "delete", "horario.md").returncode == 0
    assert "horario.md" not in _atende(env, "kb", "list").stdout
    gone = _atende(env, "kb", "delete", "horario.md")
    assert gone.returncode == 2 and "no document" in gone.stderr
    missing = _atende(env, "kb", "ingest", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    hidden = _atende(env, "kb", "ingest", str(docs), "--collection", ".oculta")
    assert hidden.returncode == 2 and "knowledge base name" in hidden.stderr
    assert _atende(env, "kb", "delete", "horario.md", "--collection", "outra").returncode == 2


def test_kb_commands_while_the_server_runs(server, tmp_path) -> None:
    """Qdrant local mode allows one process: ingest goes through the server, list says why."""
    doc = tmp_path / "garantia.md"
    doc.write_text("# Garantia\n\nTodos os produtos têm garantia de 90 dias.")
    env = {**server.env, "ATENDE_PUBLIC_URL": server.url}
    try:
        out = _atende(env, "kb", "ingest", str(doc), "--collection", "extra")
        assert out.returncode == 0, out.stderr
        assert "sending the files" in out.stdout and "added" in out.stdout
        served = httpx.get(f"{server.url}/api/kb/extra/documents", headers=ADMIN).json()
        assert served == {"garantia.md": 1}  # it went into the running server's store
        busy = _atende(env, "kb", "list")
        assert busy.returncode == 2 and "in use by another process" in busy.stderr
        no_token = {k: v for k, v in env.items() if k != "ATENDE_ADMIN_TOKEN"}
        refused = _atende(no_token, "kb", "ingest", str(doc))
        assert refused.returncode == 2 and "ATENDE_ADMIN_TOKEN" in refused.stderr
    finally:  # the server is shared: its knowledge bases hold what they held
        httpx.delete(f"{server.url}/api/kb/extra/documents/garantia.md", headers=ADMIN)


def test_serving_beyond_loopback_needs_a_word_on_the_simulator(tmp_path) -> None:
    """The simulator lets whoever reaches it write as any customer: not exposed by default."""
    env = server_env(tmp_path / "data")
    env.pop("ATENDE_SIMULATOR_ENABLED", None)
    out = _atende(env, "serve", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2 and "ATENDE_SIMULATOR_ENABLED=false" in out.stderr
    assert not (tmp_path / "data" / "atende.db").exists()  # refused before anything started


def test_an_unwritable_json_file_is_refused_before_the_work(tmp_path) -> None:
    """``--json FILE`` that cannot be written is a bad argument: said plainly, exit 2, and
    before the command works (it was a traceback once the work was done)."""
    env = server_env(tmp_path / "data")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "horario.md").write_text("# Horário\n\nAtendemos de segunda a sexta.")
    for args, why in [(["kb", "ingest", str(docs)], "No such file or directory"),
                      (["models", "list"], "No such file or directory"),
                      (["users", "list"], "Is a directory")]:
        target = str(tmp_path) if why == "Is a directory" else "/nonexistent/dir/out.json"
        out = _atende(env, *args, "--json", target)
        assert out.returncode == 2, out.stderr
        assert f"Error: cannot write --json {target}: {why}" in out.stderr
        assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "data").exists()  # nothing was ingested, nothing opened
    out = _atende(env, "kb", "ingest", str(docs), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr  # a writable one is written, as before
    assert json.loads((tmp_path / "r.json").read_text())[0]["status"] == "added"
