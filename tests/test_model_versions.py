"""Model versions: the default adapter, promotion only through a passed gate, rollback (the admin
API switching the serving model without a restart is in test_model_versions_api.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import ModelPromotion, ModelVersion
from server.services import model_versions as mv

PASSED = {"passed": True, "target": "containment", "reasons": [], "deltas": []}


def adapter_dir(tmp_path: Path, name: str = "faquad-v1") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter.gguf").write_bytes(b"GGUF")
    (folder / "version.json").write_text(json.dumps({
        "name": name, "base": "base.gguf", "refusal_threshold": 0.3, "data_sha256": "ab" * 32,
        "metrics": {"dev": {"containment": 0.6}}, "config": {"lora_r": 16},
        "gate": {**PASSED, "against": "base", "against_id": None}}))
    return folder


def test_new_database_serves_the_default_adapter_once(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    mv.ensure_default(sessions, tmp_path / "other.gguf", adapter_dir(tmp_path))
    with sessions() as s:
        assert mv.serving(s) is None  # the adapter fits only the base it was trained on
    mv.ensure_default(sessions, base, tmp_path / "faquad-v1")
    mv.ensure_default(sessions, base, tmp_path / "faquad-v1")
    rows, serving = mv.listing(sessions)
    assert [v.name for v in rows] == ["faquad-v1"] and serving == rows[0].id
    assert rows[0].refusal_threshold == 0.3 and rows[0].metrics["dev"]["containment"] == 0.6
    assert [h["action"] for h in mv.history(sessions)] == ["default"]
    assert rows[0].gate["passed"] and rows[0].gate["against"] == "base"  # its verdict shows


def test_a_bundled_threshold_chosen_again_reaches_an_install_that_registered_it(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    folder = adapter_dir(tmp_path)
    mv.ensure_default(sessions, base, folder)
    meta = json.loads((folder / "version.json").read_text())
    (folder / "version.json").write_text(json.dumps({**meta, "refusal_threshold": 0.9}))
    mv.ensure_default(sessions, base, folder)  # the next start, after an upgrade
    assert mv.listing(sessions)[0][0].refusal_threshold == 0.9
    # other weights under the same name are not the bundled ones: left as they are
    (folder / "version.json").write_text(json.dumps(
        {**meta, "refusal_threshold": 0.5, "data_sha256": "cd" * 32}))
    mv.ensure_default(sessions, base, folder)
    assert mv.listing(sessions)[0][0].refusal_threshold == 0.9


def test_a_newer_bundled_adapter_waits_for_promotion_on_a_database_already_serving(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    bundled = tmp_path / "adapters"
    bundled.mkdir()
    mv.ensure_default(sessions, base, adapter_dir(bundled, "faquad-v1"))
    newer = adapter_dir(bundled, "faquad-v2")  # judged against faquad-v1 where it was built
    meta = json.loads((newer / "version.json").read_text())
    meta["gate"] = {**PASSED, "against": "faquad-v1", "against_id": 7}
    (newer / "version.json").write_text(json.dumps(meta))
    mv.ensure_default(sessions, base, newer)  # the upgrade: a new bundled default
    rows, serving = mv.listing(sessions)
    assert [v.name for v in rows] == ["faquad-v2", "faquad-v1"]
    assert serving == rows[1].id  # nothing switches by itself
    assert rows[0].gate["against_id"] == rows[1].id  # the bundled verdict holds here
    assert mv.promote(sessions, "faquad-v2").name == "faquad-v2"
    assert [h["action"] for h in mv.history(sessions)] == ["promote", "default"]  # newest first


def test_a_moved_install_serves_its_bundled_files_where_they_are_now(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    from server.settings import Settings

    old, new = tmp_path / "old", tmp_path / "new"  # the checkout and its data folder, moved
    (old / "adapters").mkdir(parents=True)
    (old / "base.gguf").write_bytes(b"GGUF")
    mv.ensure_default(sessions, old / "base.gguf", adapter_dir(old / "adapters", "faquad-v1"))
    own = old / "finetune" / "loja-v1.gguf"  # a company's own run, within the data folder
    own.parent.mkdir()
    own.write_bytes(b"GGUF")
    mv.register(sessions, "loja-v1", base=old / "base.gguf", adapter=own, root=old)
    outside = tmp_path / "runs" / "loja-v0.gguf"  # kept elsewhere: the folder did not move
    mv.register(sessions, "loja-v0", base=old / "base.gguf", adapter=outside, root=old)
    shutil.move(old, new)
    newer = adapter_dir(new / "adapters", "faquad-v2")  # the upgrade brings a new default
    meta = json.loads((newer / "version.json").read_text())
    meta["gate"] = {**PASSED, "against": "faquad-v1", "against_id": 7}
    (newer / "version.json").write_text(json.dumps(meta))
    mv.ensure_default(sessions, new / "base.gguf", newer, root=new)  # as serving starts
    with sessions() as s:
        served = mv.serving(s)
        assert served is not None and served.name == "faquad-v1"
        local = Settings(data_dir=new).local_model()
        spec = mv.spec_for(served, local, root=new)
        assert spec.path == new / "base.gguf" and spec.lora_path == new / "adapters" / \
            "faquad-v1" / "adapter.gguf"
        ours = mv.spec_for(mv.get(s, "loja-v1"), local, root=new)
        assert ours.lora_path == new / "finetune" / "loja-v1.gguf" and ours.lora_path.is_file()
        assert ours.path == new / "base.gguf"
        assert mv.spec_for(mv.get(s, "loja-v0"), local, root=new).lora_path == outside
    assert mv.promote(sessions, "faquad-v2", root=new).name == "faquad-v2"  # its verdict holds


def test_a_bundled_verdict_against_a_version_of_another_origin_is_not_kept(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    own = tmp_path / "finetune" / "faquad-v1"  # a company's own run, named as the bundled one
    own.mkdir(parents=True)
    shutil.copy(base, own / "adapter-256.gguf")
    mv.register(sessions, "faquad-v1", base=base, adapter=own / "adapter-256.gguf")
    mv.record_gate(sessions, "faquad-v1", PASSED, {})
    mv.promote(sessions, "faquad-v1")
    (tmp_path / "adapters").mkdir()
    newer = adapter_dir(tmp_path / "adapters", "faquad-v2")
    meta = json.loads((newer / "version.json").read_text())
    meta["gate"] = {**PASSED, "against": "faquad-v1", "against_id": 7}
    (newer / "version.json").write_text(json.dumps(meta))
    mv.ensure_default(sessions, base, newer)
    with pytest.raises(mv.Refused, match="has not been compared"):
        mv.promote(sessions, "faquad-v2")


def test_a_metric_over_no_cases_is_stored_as_null_on_both_databases(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    # FaQuAD has no out-of-scope cases: that figure is NaN, which PostgreSQL's JSON refuses
    folder = adapter_dir(tmp_path)
    meta = json.loads((folder / "version.json").read_text())
    meta["metrics"] = {"dev": {"containment": 0.6, "out_of_scope_ok": float("nan")}}
    (folder / "version.json").write_text(json.dumps(meta))
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    mv.ensure_default(sessions, base, folder)
    mv.record_gate(sessions, "faquad-v1", PASSED, {"eval": {"injection_ok": float("inf")}})
    rows, _ = mv.listing(sessions)
    assert rows[0].metrics["dev"] == {"containment": 0.6, "out_of_scope_ok": None}
    assert rows[0].metrics["eval"] == {"injection_ok": None}
    json.dumps(mv.as_dict(rows[0], rows[0].id), allow_nan=False)  # what the API sends


def test_promotion_needs_a_passed_gate_against_what_serves(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    mv.ensure_default(sessions, base, adapter_dir(tmp_path))
    shutil.copy(base, tmp_path / "cand.gguf")
    mv.register(sessions, "loja-v2", base=base, adapter=tmp_path / "cand.gguf",
                refusal_threshold=0.2, data_sha256="cd" * 32)
    with pytest.raises(ValueError, match="already exists"):
        mv.register(sessions, "loja-v2", base=base, adapter=None)
    with pytest.raises(mv.Refused, match="has not been compared"):
        mv.promote(sessions, "loja-v2")
    mv.record_gate(sessions, "loja-v2", {**PASSED, "passed": False,
                                          "reasons": ["containment is not better"]}, {})
    with pytest.raises(mv.Refused, match="containment is not better"):
        mv.promote(sessions, "loja-v2")
    mv.record_gate(sessions, "loja-v2", PASSED, {"eval": {"containment": 0.7}})
    mv.promote(sessions, "loja-v2", reason="better on dev")
    with sessions() as s:
        now = mv.serving(s)
        assert now is not None and now.name == "loja-v2"
        assert now.metrics["eval"]["containment"] == 0.7
    with pytest.raises(mv.Refused, match="already serving"):
        mv.promote(sessions, "loja-v2")
    assert mv.rollback(sessions).name == "faquad-v1"
    # The gate was measured against faquad-v1, which serves again: promotion is allowed again.
    mv.promote(sessions, "loja-v2")
    assert [h["action"] for h in mv.history(sessions)] == ["promote", "rollback", "promote",
                                                           "default"]


def test_gate_measured_against_another_version_is_stale(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    for name in ("a", "b"):
        mv.register(sessions, name, base=base, adapter=None)
    mv.record_gate(sessions, "a", PASSED, {})  # against the base model
    mv.record_gate(sessions, "b", PASSED, {})
    mv.promote(sessions, "a")
    with pytest.raises(mv.Refused, match="compared with base, but a serves now"):
        mv.promote(sessions, "b")
    # Rolling back the first promotion serves the plain base model again, and the gate
    # measured against the base holds again; a rollback of that rollback returns to "a".
    assert mv.rollback(sessions, reason="a misbehaves") is None
    with sessions() as s:
        assert mv.serving(s) is None
    assert [(h["version"], h["previous"]) for h in mv.history(sessions)] == [
        ("base", "a"), ("a", "base")]
    mv.promote(sessions, "b")
    assert mv.rollback(sessions) is None  # b was promoted over the base model
    with pytest.raises(mv.Refused, match="nothing further back.*every promotion before it"):
        mv.rollback(sessions)  # a rollback no longer undoes the previous one


def test_rollback_with_no_history_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(mv.Refused, match="nothing served before"):
        mv.rollback(sessions)


def _serving(sessions: sessionmaker[Session]) -> str:
    with sessions() as s:
        now = mv.serving(s)
        return now.name if now else "base"


def test_each_rollback_steps_one_further_back(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    for name in ("a", "b", "c"):
        mv.register(sessions, name, base=base, adapter=None)
        mv.record_gate(sessions, name, PASSED, {})  # against the one serving now
        mv.promote(sessions, name)
    steps = []
    for _ in range(3):
        back = mv.rollback(sessions)
        steps.append((back.name if back else "base", _serving(sessions)))
    assert steps == [("b", "b"), ("a", "a"), ("base", "base")]
    with pytest.raises(mv.Refused, match="nothing further back"):
        mv.rollback(sessions)
    # A promotion after rollbacks stacks on what serves then; rolling it back returns there.
    mv.record_gate(sessions, "c", PASSED, {})
    mv.promote(sessions, "c")
    mv.record_gate(sessions, "a", PASSED, {})
    mv.promote(sessions, "a")
    with sessions() as s:
        ids = {v.name: v.id for v in s.scalars(select(ModelVersion))}
        assert mv.stack(s) == [None, ids["c"], ids["a"]]
    assert [getattr(mv.rollback(sessions), "name", "base") for _ in range(2)] == ["c", "base"]
    with pytest.raises(mv.Refused, match="nothing further back"):
        mv.rollback(sessions)
    # The history keeps every step, newest first: nothing was rewritten.
    assert [(h["action"], h["version"], h["previous"]) for h in mv.history(sessions)] == [
        ("rollback", "base", "c"), ("rollback", "c", "a"), ("promote", "a", "c"),
        ("promote", "c", "base"), ("rollback", "base", "a"), ("rollback", "a", "b"),
        ("rollback", "b", "c"), ("promote", "c", "b"), ("promote", "b", "a"),
        ("promote", "a", "base")]


def test_rollback_steps_back_from_the_bundled_default(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    mv.ensure_default(sessions, base, adapter_dir(tmp_path))
    shutil.copy(base, tmp_path / "cand.gguf")
    mv.register(sessions, "loja-v2", base=base, adapter=tmp_path / "cand.gguf")
    mv.record_gate(sessions, "loja-v2", PASSED, {})
    mv.promote(sessions, "loja-v2")
    assert [getattr(mv.rollback(sessions), "name", "base") for _ in range(2)] == [
        "faquad-v1", "base"]
    with pytest.raises(mv.Refused, match="nothing further back"):
        mv.rollback(sessions)


def test_rollbacks_recorded_when_a_second_one_undid_the_first_still_replay(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    # Rows as rollback wrote them before it stepped back: the second one served "a" again.
    mv.register(sessions, "a", base=tmp_path / "base.gguf", adapter=None)
    with sessions.begin() as s:
        a = mv.get(s, "a").id
        s.add_all([ModelPromotion(version_id=a, previous_id=None, action="promote"),
                   ModelPromotion(version_id=None, previous_id=a, action="rollback"),
                   ModelPromotion(version_id=a, previous_id=None, action="rollback")])
    with sessions() as s:
        assert mv.stack(s) == [None, a]  # what serves is still the latest row's version
    assert _serving(sessions) == "a"
    assert mv.rollback(sessions) is None and _serving(sessions) == "base"
    with pytest.raises(mv.Refused, match="nothing further back"):
        mv.rollback(sessions)
