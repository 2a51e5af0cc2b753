"""The demo shop as `make run` serves it: its custom fields, teams and users
(``demo/loja-aurora/company.yaml``), its flow (``flow.yaml``) as the simulator number's
default. Idempotent: what exists is left as it is, so a manager's edits survive a restart.

Demo users get a random password each, made once, when the user is: it is written to
DATA_DIR/demo-logins.txt (mode 0600, beside the database it opens) for `make run` to print, and
never again; a demo with well-known passwords would be a door left open wherever it runs."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import CustomField, Instance, Team, User
from server.services import auth, contact_data, flow_store, instances, people

SIMULATOR_INSTANCE = "demo"
LOGINS = "demo-logins.txt"
LEVEL_WORDS = {"admin": "administrador", "manager": "gerente", "agent": "atendente"}


def install(sessions: sessionmaker[Session], folder: Path, public_url: str,
            data_dir: Path) -> list[str]:
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
    made = _users(sessions, company.get("users", []))
    if made:
        _write_logins(data_dir / LOGINS, public_url or "http://127.0.0.1:8000", made,
                      whole=len(made) == len(company.get("users", [])))
        done.extend(f"user {u['email']}" for u, _ in made)
    return done


def _users(sessions: sessionmaker[Session], users: list[dict[str, Any]]
           ) -> list[tuple[dict[str, Any], str]]:
    """Make the demo users that are missing, in their teams; each with its new password."""
    made = []
    with sessions.begin() as s:
        have = set(s.scalars(select(User.email)))
        for u in users:
            if u["email"] in have:
                continue
            password = secrets.token_urlsafe(9)
            user = people.create_user(s, u["name"], u["email"], u["level"])
            user.password_hash = auth.hash_password(password)
            for name in u.get("teams", []):
                team = people.get_team_by_name(s, name)
                if team is not None:
                    people.add_member(s, team.id, user.id)
            made.append((u, password))
    return made


def _write_logins(path: Path, base: str, made: list[tuple[dict[str, Any], str]],
                  whole: bool) -> None:
    """The new users' logins, readable by the owner alone: the file anew when every demo
    user was made now, else added to (the others' passwords are still those written)."""
    lines = [f"Entre em {base.rstrip('/')}/login como:\n"] if whole or not path.exists() else []
    for u, password in made:
        teams = f": {', '.join(u['teams'])}" if u.get("teams") else ""
        lines.append(f"  {u['email']:<22} senha {password}   "
                     f"({LEVEL_WORDS[u['level']]}{teams})\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if whole else os.O_APPEND), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(lines)
    path.chmod(0o600)
