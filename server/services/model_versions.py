"""The local model's versions: register candidates, promote through the gate, roll back.

What serves is the version of the latest row in ``model_promotions``; rows are only added, so
the history of what served when is never lost. Promotion needs a passed gate (``eval.gate``)
measured against the version serving at that moment.

Rollback walks the promotions backwards: replaying the rows in order, a promotion (or the
bundled default) stacks its version on what served before it and a rollback takes the top one
off, so each rollback steps one further back (C, B, A, then the plain base model), and a
promotion after rollbacks stacks on what serves then.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.bundled import bundled_data
from models.spec import ModelSpec
from rag.embedders import RANKER
from rag.units import LAYOUTS, SENTENCES
from server.schema import ModelPromotion, ModelVersion

DEFAULT_ADAPTER = bundled_data("adapters", "negocios-v7")

log = logging.getLogger(__name__)


class Refused(ValueError):
    """A promotion or rollback that the gate or the history does not allow; says why."""


def register(sessions: sessionmaker[Session], name: str, *, base: Path, adapter: Path | None,
             refusal_threshold: float | None = None, config: dict[str, Any] | None = None,
             data_sha256: str | None = None, metrics: dict[str, Any] | None = None,
             root: Path | None = None) -> ModelVersion:
    """Add a candidate version; names are unique. Files within ``root`` (the data folder) are
    kept relative to it, so the version still serves after the folder moves."""
    with sessions.begin() as s:
        if s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise ValueError(f"a model version named {name!r} already exists")
        v = ModelVersion(name=name, base=_kept(base, root),
                         adapter=_kept(adapter, root) if adapter else None,
                         refusal_threshold=refusal_threshold, config=config or {},
                         data_sha256=data_sha256, metrics=metrics or {})
        s.add(v)
    return v


def _kept(path: Path, root: Path | None) -> str:
    path = path.resolve()
    if root is not None and path.is_relative_to(root.resolve()):
        return str(path.relative_to(root.resolve()))
    return str(path)


def located(kept: str, root: Path | None) -> Path:
    """Where a file a version keeps is now: a relative path lies within the data folder."""
    path = Path(kept)
    return path if path.is_absolute() or root is None else root.resolve() / path


def get(s: Session, name: str) -> ModelVersion:
    v = s.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if v is None:
        raise LookupError(f"no model version named {name!r}")
    return v


def last_promotion(s: Session) -> ModelPromotion | None:
    return s.scalar(select(ModelPromotion).order_by(ModelPromotion.id.desc()).limit(1))


def serving(s: Session) -> ModelVersion | None:
    """The version serving now, or None for the plain configured local model."""
    last = last_promotion(s)
    return s.get(ModelVersion, last.version_id) if last and last.version_id else None


def listing(sessions: sessionmaker[Session]) -> tuple[list[ModelVersion], int | None]:
    """Every version, newest first, and the id of the one serving."""
    with sessions() as s:
        now = serving(s)
        rows = list(s.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))
        return rows, now.id if now else None


def record_gate(sessions: sessionmaker[Session], name: str, verdict: dict[str, Any],
                metrics: dict[str, Any]) -> None:
    """Keep a comparison's verdict (against the version serving now) with the candidate."""
    with sessions.begin() as s:
        v = get(s, name)
        now = serving(s)
        v.gate = {**verdict, "against": now.name if now else "base",
                  "against_id": now.id if now else None}
        v.metrics = {**v.metrics, **metrics}


def promote(sessions: sessionmaker[Session], name: str, *, reason: str = "",
            root: Path | None = None) -> ModelVersion:
    """Serve this version, if its gate passed against the version serving now and its files
    are there (within ``root``, the data folder, where it keeps them relative)."""
    with sessions.begin() as s:
        v = get(s, name)
        now = serving(s)
        if now is not None and now.id == v.id:
            raise Refused(f"{name} is already serving")
        gate = v.gate or {}
        if not gate:
            raise Refused(f"{name} has not been compared with the serving model; run "
                          f"`atende models compare {name} --set DIR` first")
        if gate.get("against_id") != (now.id if now else None):
            raise Refused(f"{name} was compared with {gate.get('against')}, but "
                          f"{now.name if now else 'base'} serves now; compare again")
        if not gate.get("passed"):
            raise Refused(f"{name} did not pass the gate: " + "; ".join(gate.get("reasons", [])))
        missing = [p for p in (located(f, root) for f in (v.base, v.adapter) if f)
                   if not p.is_file()]
        if missing:
            raise Refused(f"{name}: file {missing[0]} is missing")
        s.add(ModelPromotion(version_id=v.id, previous_id=now.id if now else None,
                             action="promote", reason=reason or "gate passed"))
    return v


def stack(s: Session) -> list[int | None]:
    """What rollbacks return to, oldest first, ending with what serves now (None: the plain
    base model, always at the bottom), replayed from the history."""
    ids: list[int | None] = [None]
    for p in s.scalars(select(ModelPromotion).order_by(ModelPromotion.id)):
        if p.action != "rollback":  # promote, default
            ids.append(p.version_id)
            continue
        if len(ids) > 1:
            ids.pop()
        if ids[-1] != p.version_id:
            # A rollback recorded when a rollback returned to what the previous row replaced
            # (a second one undid the first), or two at once: it serves its own version.
            back = [i for i, v in enumerate(ids) if v == p.version_id]
            ids = ids[:back[-1] + 1] if back else [*ids, p.version_id]
    return ids


def rollback(sessions: sessionmaker[Session], *, reason: str = "") -> ModelVersion | None:
    """Step one promotion back: serve what served before the current version was promoted (or,
    for the bundled default, the plain base model: None). Each rollback goes one further back;
    refused once the plain base model serves with nothing further back."""
    with sessions.begin() as s:
        ids = stack(s)
        if len(ids) < 2:
            raise Refused("nothing further back to roll back to: the base model serves and "
                          + ("nothing served before it" if last_promotion(s) is None
                             else "every promotion before it was rolled back"))
        back, now = ids[-2], ids[-1]
        s.add(ModelPromotion(version_id=back, previous_id=now, action="rollback",
                             reason=reason or "rollback"))
        return s.get(ModelVersion, back) if back else None


def ensure_default(sessions: sessionmaker[Session], base: Path,
                   adapter_dir: Path = DEFAULT_ADAPTER, root: Path | None = None) -> None:
    """Serve the bundled adapter on a new database (when its base is the model configured); on
    one that already serves something, only register it, so an admin can promote it. A bundled
    version registered before takes the refusal threshold its files now give."""
    meta = _meta(adapter_dir)
    if not meta:
        return
    if base.name != meta["base"]:
        return  # an adapter only fits the base it was trained on
    with sessions.begin() as s:
        _follow_move(s, base, adapter_dir.parent, root)
        v = s.scalar(select(ModelVersion).where(ModelVersion.name == meta["name"]))
        if v is None:
            v = ModelVersion(name=meta["name"], base=_kept(base, root),
                             adapter=str(adapter_dir / "adapter.gguf"),
                             refusal_threshold=meta.get("refusal_threshold"),
                             config=meta.get("config", {}), data_sha256=meta.get("data_sha256"),
                             metrics=meta.get("metrics", {}),
                             gate=_bundled_gate(s, meta, adapter_dir))
            s.add(v)
            s.flush()
        elif (v.data_sha256 == meta.get("data_sha256")
              and v.refusal_threshold != meta.get("refusal_threshold")):
            # The same bundled weights with a threshold chosen again (as when the evidence rule
            # in front of it changed): the install follows its bundled files.
            log.info("model version %s: refusal threshold %s -> %s, as bundled", v.name,
                     v.refusal_threshold, meta.get("refusal_threshold"))
            v.refusal_threshold = meta.get("refusal_threshold")
        if last_promotion(s) is None:
            s.add(ModelPromotion(version_id=v.id, previous_id=None, action="default",
                                 reason="bundled default adapter"))


def _follow_move(s: Session, base: Path, bundled: Path, root: Path | None) -> None:
    """Point versions at the bundled files where this install keeps them now: a checkout or
    data folder moved elsewhere still serves (and keeps its verdicts) instead of failing to
    start on a path that is gone. Only a missing file is followed, and only to the same one:
    the bundled base by name, a bundled adapter by name and training data."""
    for v in s.scalars(select(ModelVersion)):
        old, here = located(v.adapter or "", root), bundled / v.name / "adapter.gguf"
        if (v.adapter and old != here and old.parts[-2:] == here.parts[-2:]
                and not old.is_file() and here.is_file()
                and _meta(here.parent).get("data_sha256") == v.data_sha256):
            log.info("model version %s: adapter moved from %s to %s", v.name, old, here)
            v.adapter = str(here)
        was = located(v.base, root)
        if was != base and was.name == base.name and not was.is_file():
            log.info("model version %s: base moved from %s to %s", v.name, v.base, base)
            v.base = _kept(base, root)


def _meta(folder: Path) -> dict[str, Any]:
    meta = folder / "version.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _bundled_gate(s: Session, meta: dict[str, Any], adapter_dir: Path) -> dict[str, Any] | None:
    """The bundled verdict, where it holds here: against the plain base model, or against an
    adapter bundled beside this one (the same files wherever it is installed)."""
    gate = meta.get("gate")
    if not gate or "against_id" not in gate:
        return None
    if gate["against_id"] is None:
        return dict(gate)  # judged against the plain base model
    rival = s.scalar(select(ModelVersion).where(ModelVersion.name == gate.get("against")))
    if rival is None or rival.adapter != str(adapter_dir.parent / rival.name / "adapter.gguf"):
        return None
    return {**gate, "against_id": rival.id}


def as_dict(v: ModelVersion, serving_id: int | None) -> dict[str, Any]:
    """A version as the API and ``--json`` show it."""
    return {"name": v.name, "serving": v.id == serving_id, "base": Path(v.base).name,
            "adapter": Path(v.adapter).name if v.adapter else None,
            "refusal_threshold": v.refusal_threshold, "data_sha256": v.data_sha256,
            "config": v.config, "metrics": v.metrics, "gate": v.gate,
            "created_at": v.created_at.isoformat()}


def history(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Promotions and rollbacks, newest first."""
    with sessions() as s:
        names = dict(s.execute(select(ModelVersion.id, ModelVersion.name)).tuples().all())
        base = "base"  # a row without a version: the plain base model
        return [{"version": names.get(p.version_id or -1, base),
                 "previous": names.get(p.previous_id or -1, base),
                 "action": p.action, "reason": p.reason, "at": p.at.isoformat()}
                for p in s.scalars(select(ModelPromotion).order_by(ModelPromotion.id.desc()))]


def spec_for(version: ModelVersion | None, local: ModelSpec,
             root: Path | None = None) -> ModelSpec:
    """The local model's spec with a version's adapter, refusal threshold and prompt layout
    (its files found within ``root``, the data folder, where it keeps them relative)."""
    if version is None:
        return local
    units = version.config.get("focus_units", SENTENCES)  # trained before the key: sentences
    if units not in LAYOUTS:  # model_copy does not validate; a version's config is data
        raise ValueError(f"model version {version.name}: focus_units {units!r} is none of "
                         f"{', '.join(LAYOUTS)}")
    return local.model_copy(update={"path": located(version.base, root),
                                    "lora_path": located(version.adapter, root)
                                    if version.adapter else None,
                                    "refusal_threshold": version.refusal_threshold,
                                    "prompt_sentences": version.config.get("sentences", 0),
                                    "prompt_passages": version.config.get("passages", 0),
                                    # every version so far was trained on single questions
                                    "prompt_history": version.config.get("history", False),
                                    # versions trained before the key ranked by e5 alone
                                    "prompt_terms": version.config.get("focus_terms", 0.0),
                                    # versions trained before the key ranked with RANKER
                                    "prompt_ranker": version.config.get("focus_embedder",
                                                                        RANKER),
                                    "prompt_units": units})


def resolve(sessions: sessionmaker[Session], settings: Any, name: str) -> ModelSpec:
    """A model to evaluate, by name: ``serving``, ``base`` (the local GGUF alone), a version,
    a configured model (ATENDE_MODELS) or a GGUF file."""
    from server.runtime import LOCAL, local_spec, serving_spec

    local = local_spec(settings)
    if name == "base":
        return local
    if name == "serving":
        return serving_spec(settings)[0]
    with sessions() as s:
        v = s.scalar(select(ModelVersion).where(ModelVersion.name == name))
        if v is not None:
            return spec_for(v, local, settings.data_dir).model_copy(update={"name": v.name})
    for spec in settings.models:
        if spec.name == name:
            return spec
    if name.endswith(".gguf"):
        return local.model_copy(update={"name": Path(name).stem, "path": Path(name)})
    raise LookupError(f"unknown model {name!r}: not 'serving', 'base', a model version, a "
                      f"configured model ({', '.join([LOCAL, *(m.name for m in settings.models)])})"
                      f" nor a .gguf file")
