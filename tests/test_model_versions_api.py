"""The admin API for model versions on the running server: a promotion through a passed gate
serves the new adapter at once, without a restart; each rollback steps one further back; the
history says what happened. The server is shared: each test leaves it as it found it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.services import model_versions as mv
from tests.conftest import ROOT, Server

ADMIN = {"Authorization": "Bearer test-admin-token"}
PASSED = {"passed": True, "target": "containment", "reasons": [], "deltas": []}
DEFAULT = mv.DEFAULT_ADAPTER.name  # what a new database serves: the bundled default


def _adapter(server: Server) -> str | None:
    """The file name of the adapter the server's local model runs with now (None: no adapter)."""
    return httpx.get(f"{server.url}/health").json()["model"]["local_adapter"]


def _post(server: Server, path: str, **kw: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/models/{path}", headers=ADMIN, timeout=60, **kw)


@pytest.fixture
def default_serving(server: Server) -> Iterator[sessionmaker[Session]]:
    """The server's database, serving its bundled default over the base model, as a new one
    does; afterwards it serves it so again, with the verdict it had, whatever the test did."""
    sessions = sessions_for(server.db_url)
    with sessions() as s:
        default = mv.get(s, DEFAULT)
        gate, first = default.gate, [None, default.id]
        assert mv.stack(s) == first, "a test before left the served model changed"
    yield sessions
    with sessions() as s:
        stack = mv.stack(s)
    if stack[:2] == first:  # promoted over the default: step back to it
        for _ in stack[2:]:
            _post(server, "rollback").raise_for_status()
    else:  # rolled back to the base model: promote the default again, judged against it
        mv.record_gate(sessions, DEFAULT, PASSED, {})
        assert _post(server, f"versions/{DEFAULT}/promote").json() == {"serving": DEFAULT}
    with sessions.begin() as s:
        mv.get(s, DEFAULT).gate = gate
        assert mv.stack(s) == first
    assert _adapter(server) == "adapter.gguf"


def test_a_promotion_serves_the_new_adapter_and_each_rollback_steps_back(
        server: Server, default_serving: sessionmaker[Session], tmp_path: Path) -> None:
    sessions, api = default_serving, f"{server.url}/api/models"
    assert httpx.get(f"{api}/versions").status_code == 401
    assert httpx.get(f"{api}/history").status_code == 401
    versions = httpx.get(f"{api}/versions", headers=ADMIN).json()
    assert [v["name"] for v in versions if v["serving"]] == [DEFAULT]
    assert _adapter(server) == "adapter.gguf"
    assert _post(server, "versions/nope/promote").status_code == 404
    # A candidate over the default: faquad-v4's weights under a file name of their own, so the
    # adapter the server runs says which version serves.
    with sessions() as s:
        base = mv.located(mv.get(s, DEFAULT).base, server.data_dir)
    own = tmp_path / "step-back-v4.gguf"
    shutil.copy(ROOT / "models" / "adapters" / "faquad-v4" / "adapter.gguf", own)
    mv.register(sessions, "step-back-v4", base=base, adapter=own)
    before = len(httpx.get(f"{api}/history", headers=ADMIN).json())
    refused = _post(server, "versions/step-back-v4/promote")
    assert refused.status_code == 409 and "has not been compared" in refused.json()["detail"]
    assert httpx.post(f"{api}/versions/step-back-v4/promote").status_code == 401
    assert _adapter(server) == "adapter.gguf"  # a refused promotion changes nothing

    mv.record_gate(sessions, "step-back-v4", PASSED, {})  # as `models compare` keeps it
    promoted = _post(server, "versions/step-back-v4/promote", json={"reason": "melhor no dev"})
    assert promoted.json() == {"serving": "step-back-v4"}
    assert _adapter(server) == "step-back-v4.gguf"  # loaded, without a restart
    versions = httpx.get(f"{api}/versions", headers=ADMIN).json()
    assert [v["name"] for v in versions if v["serving"]] == ["step-back-v4"]
    # Each rollback steps one further back: not back and forth.
    assert _post(server, "rollback").json() == {"serving": DEFAULT}
    assert _adapter(server) == "adapter.gguf"
    assert _post(server, "rollback", json={"reason": "sem adaptador"}).json() == {
        "serving": "base"}
    assert _adapter(server) is None
    r = _post(server, "rollback")
    assert r.status_code == 409 and "nothing further back" in r.json()["detail"]

    history = httpx.get(f"{api}/history", headers=ADMIN).json()
    assert len(history) == before + 3  # newest first; the refused calls left no row
    assert [(h["action"], h["version"], h["previous"], h["reason"]) for h in history[:3]] == [
        ("rollback", "base", DEFAULT, "sem adaptador"),
        ("rollback", DEFAULT, "step-back-v4", "rollback"),
        ("promote", "step-back-v4", DEFAULT, "melhor no dev")]
    assert history[-1]["action"] == "default" and history[-1]["version"] == DEFAULT
