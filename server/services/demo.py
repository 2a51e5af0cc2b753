"""The demo shop as `make run` serves it: its custom fields and teams
(``demo/loja-aurora/company.yaml``), its flow (``flow.yaml``) as the simulator number's
default. Idempotent: what exists is left as it is, so a manager's edits survive a restart."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import CustomField, Instance, Team
from server.services import contact_data, flow_store, instances, people

SIMULATOR_INSTANCE = "demo"


def install(sessions: sessionmaker[Session], folder: Path, public_url: str) -> list[str]:
    """Create what the demo lacks; returns what was done, in words."""
    company = yaml.safe_load((folder / "company.yaml").read_text(encoding="utf-8")) or {}
    flow = flow_store.parse_yaml((folder / "flow.yaml").read_text(encoding="utf-8"))
    done: list[str] = []
    instances.ensure_simulator(sessions, SIMULATOR_INSTANCE, public_url)
    with sessions.begin() as s:
        have = set(s.scalars(select(CustomField.key)))
        for f in company.get("fields", []):
            if f["key"] not in have:
                contact_data.create_field(s, f["key"], f["label"], f["type"], f.get("choices"))
                done.append(f"field {f['key']}")
        teams = {n.lower() for n in s.scalars(select(Team.name))}
        for t in company.get("teams", []):
            if t["name"].lower() not in teams:
                people.create_team(s, t["name"], hours=t.get("hours"))
                done.append(f"team {t['name']}")
    with sessions.begin() as s:
        if flow_store.get(s, flow.id) is None:
            flow_store.save(s, flow)
            done.append(f"flow {flow.id}")
        inst = s.scalars(select(Instance).where(Instance.name == SIMULATOR_INSTANCE)).one()
        if inst.default_flow is None:
            inst.default_flow = flow.id
            done.append(f"{SIMULATOR_INSTANCE} starts {flow.id}")
    return done
