"""The web app's two busiest lists at a company's size: the contact filter and the inbox.

A fresh database (SQLite file, or a PostgreSQL database made for the run) is filled with
--contacts contacts (100,000) and --messages messages (1,000,000, spread over one conversation
per contact across 50 numbers and 5 teams), 20 tags (each contact 0-3, the first tags commonest)
and 3 custom fields. Then each list is asked for its first page of 50, --repeat times per case,
through the services the pages and the API call (``contact_search.search``,
``inbox.listing``), as an admin and as an agent (who sees only their team's part).

The issue's target: p95 under 100 ms for a page of 50, for a filter on two tags and one custom
field. The baseline of the same run is the plainest page: the newest 50 contacts by id, with no
filter and no scope, one SELECT; ratios divide by its p50.

Run: ``.venv/bin/python bench/lists.py [--db sqlite|postgresql|both] [--contacts N]
[--messages N] [--repeat N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ATENDE_SECRET_KEY", "tQ2oVbE3Xo1Zb0n0m3fE4v6cQ0m2n3b4v5c6x7z8a9s=")

import psycopg  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from server.db import migrate, sessions_for  # noqa: E402
from server.schema import (  # noqa: E402
    Contact,
    ContactField,
    ContactIdentity,
    ContactTag,
    Conversation,
    CustomField,
    Instance,
    Message,
    Tag,
    Team,
    TeamMember,
    User,
)
from server.services.access import Principal  # noqa: E402

PG_ADMIN = os.environ.get("ATENDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NUMBERS, TEAMS, TAGS = 50, 5, 20
CITIES = ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife", "Salvador",
          "Porto Alegre", "Fortaleza", "Manaus", "Goiânia"]
PLANS = ["bronze", "prata", "ouro"]
FIRST = ["Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Heitor", "Isabela",
         "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Tiago"]
LAST = ["Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Rodrigues",
        "Almeida", "Nascimento", "Araújo", "Ribeiro"]
BATCH = 20_000
NOW = datetime.now(UTC).replace(microsecond=0)
console = Console(stderr=True)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A new empty database of this kind, dropped (PostgreSQL) or deleted (SQLite) after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="atende-lists-") as folder:
            yield f"sqlite:///{folder}/atende.db"
        return
    name = f"atende_bench_lists_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        sessions_for(url).kw["bind"].dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _rows(s: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        s.execute(insert(table), rows[start:start + BATCH])


def fill(sessions: sessionmaker[Session], contacts: int, messages: int) -> dict[str, Any]:
    """The company: numbers, teams with an agent each, tags, fields, contacts, conversations
    and their messages. Returns the ids the cases ask about."""
    rnd = random.Random(7)
    with sessions.begin() as s:
        _rows(s, Instance, [{"name": f"loja-{i:02d}", "provider": "evolution",
                             "webhook_secret": f"segredo-{i}"} for i in range(NUMBERS)])
        _rows(s, Team, [{"name": f"equipe-{t}"} for t in range(TEAMS)])
        _rows(s, User, [{"name": f"Agente {t}", "email": f"agente{t}@loja.com", "level": "agent",
                         "active": True, "online": True} for t in range(TEAMS)])
        _rows(s, Tag, [{"name": f"tag-{t:02d}"} for t in range(TAGS)])
        _rows(s, CustomField, [
            {"key": "cidade", "label": "Cidade", "type": "text"},
            {"key": "plano", "label": "Plano", "type": "choice", "choices": PLANS},
            {"key": "pedidos", "label": "Pedidos", "type": "number"}])
        insts = list(s.scalars(select(Instance.id).order_by(Instance.id)))
        teams = list(s.scalars(select(Team.id).order_by(Team.id)))
        users = list(s.scalars(select(User.id).order_by(User.id)))
        tags = list(s.scalars(select(Tag.id).order_by(Tag.id)))
        fields = {k: i for k, i in s.execute(select(CustomField.key, CustomField.id))}
        _rows(s, TeamMember, [{"team_id": t, "user_id": u} for t, u in zip(teams, users,
                                                                           strict=True)])
    per_conversation = max(1, messages // contacts)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("contacts and messages", total=contacts)
        for start in range(0, contacts, BATCH // per_conversation):
            stop = min(contacts, start + BATCH // per_conversation)
            _chunk(sessions, rnd, range(start, stop), per_conversation, insts, teams, users,
                   tags, fields)
            bar.update(task, completed=stop)
    return {"teams": teams, "users": users, "tags": tags, "fields": fields, "instances": insts,
            "phone": f"119{contacts // 2:08d}"}  # one customer's, as an agent would type it


def _chunk(sessions: sessionmaker[Session], rnd: random.Random, numbers: range,
           per_conversation: int, insts: list[int], teams: list[int], users: list[int],
           tags: list[int], fields: dict[str, int]) -> None:
    with sessions.begin() as s:
        first = numbers.start + 1  # ids are assigned in order on a fresh table
        people = [{"id": first + i, "name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                   "phone": f"+55119{n:08d}"} for i, n in enumerate(numbers)]
        _rows(s, Contact, people)
        _rows(s, ContactIdentity, [{"contact_id": p["id"], "kind": "phone",
                                    "value": p["phone"][1:]} for p in people])
        tagged = []
        for p in people:
            for tag in {tags[min(int(rnd.expovariate(0.25)), len(tags) - 1)]
                        for _ in range(rnd.randint(0, 3))}:
                tagged.append({"contact_id": p["id"], "tag_id": tag})
        _rows(s, ContactTag, tagged)
        values = []
        for p in people:
            values.append({"contact_id": p["id"], "field_id": fields["cidade"],
                           "value": rnd.choice(CITIES)})
            if rnd.random() < 0.7:
                values.append({"contact_id": p["id"], "field_id": fields["plano"],
                               "value": rnd.choice(PLANS)})
            values.append({"contact_id": p["id"], "field_id": fields["pedidos"],
                           "value": str(rnd.randint(0, 40))})
        _rows(s, ContactField, values)
        convs, texts = [], []
        for p in people:
            team = rnd.randrange(len(teams) + 1)  # one in six: no team (the common queue)
            last = NOW - timedelta(minutes=rnd.randint(0, 180 * 24 * 60))
            status = rnd.choices(["open", "queued", "assigned", "closed"], [2, 1, 2, 5])[0]
            convs.append({"id": p["id"], "contact_id": p["id"], "instance_id": rnd.choice(insts),
                          "address": p["phone"][1:] + "@s.whatsapp.net", "mode": "ai",
                          "last_inbound_at": last, "status": status,
                          "team_id": teams[team] if team < len(teams) else None,
                          "assignee_id": (users[team] if status == "assigned"
                                          and team < len(teams) else None)})
        _rows(s, Conversation, convs)
        for c in convs:
            for k in range(per_conversation):
                inbound = k % 2 == 0
                texts.append({"instance_id": c["instance_id"], "conversation_id": c["id"],
                              "direction": "in" if inbound else "out",
                              "author": "customer" if inbound else "assistant",
                              "text": "oi, tudo bem? queria saber do meu pedido" if inbound
                              else "Olá! Seu pedido sai amanhã.",
                              "status": "answered" if inbound else "read",
                              "created_at": c["last_inbound_at"]
                              - timedelta(minutes=per_conversation - k)})
        _rows(s, Message, texts)



def cases(ids: dict[str, Any]) -> dict[str, tuple[str, Principal, Any]]:
    """name → (list, who asks, what they ask): the filters people use most, and the issue's."""
    from server.services.contact_search import ContactFilter, FieldCondition
    from server.services.inbox import InboxFilter

    admin = Principal(level="admin", user_id=None, name="bench")
    agent = Principal(level="agent", user_id=ids["users"][0], teams=frozenset(ids["teams"][:1]),
                      name="Agente 0")
    two_tags_field = ContactFilter(tags=("tag-00", "tag-01"), tag_mode="all",
                                   fields=(FieldCondition("cidade", "eq", "São Paulo"),))
    week = (NOW - timedelta(days=7)).date()
    return {
        "contacts: no filter": ("contacts", admin, ContactFilter()),
        "contacts: 2 tags (all) + 1 field": ("contacts", admin, two_tags_field),
        "contacts: 2 tags (all) + 1 field, agent": ("contacts", agent, two_tags_field),
        "contacts: tags any + number > 30": ("contacts", admin, ContactFilter(
            tags=("tag-03", "tag-07"), fields=(FieldCondition("pedidos", "gt", "30"),))),
        "contacts: no tag + plan ouro": ("contacts", admin, ContactFilter(
            tags=("tag-00",), tag_mode="none", fields=(FieldCondition("plano", "eq", "ouro"),))),
        "contacts: name search": ("contacts", admin, ContactFilter(q="Natália Ribeiro")),
        "contacts: phone search": ("contacts", admin, ContactFilter(q=ids["phone"])),
        "contacts: last 7 days, open": ("contacts", admin, ContactFilter(last_from=week,
                                                                         open=True)),
        "inbox: active, admin": ("inbox", admin, InboxFilter()),
        "inbox: active, agent": ("inbox", agent, InboxFilter()),
        "inbox: tag, agent": ("inbox", agent, InboxFilter(tag=ids["tags"][2])),
        "inbox: unread, agent": ("inbox", agent, InboxFilter(unread=True)),
        "inbox: closed, one number": ("inbox", admin, InboxFilter(status="closed",
                                                                 instance=ids["instances"][3])),
    }


def baseline(s: Session, _who: Principal, _what: Any) -> Any:
    """The plainest page: the newest 50 contacts, one SELECT, no filter, no scope."""
    return s.execute(select(Contact.id, Contact.name, Contact.phone)
                     .order_by(Contact.id.desc()).limit(50)).all()


def ask(kind: str) -> Callable[[Session, Principal, Any], Any]:
    from server.services import contact_search, inbox

    if kind == "contacts":
        return lambda s, who, f: contact_search.search(s, who, f, limit=50).rows
    return lambda s, who, f: inbox.listing(s, who, f, limit=50)


def measure(sessions: sessionmaker[Session], ids: dict[str, Any], repeat: int
            ) -> list[dict[str, Any]]:
    """Each case ``repeat`` times, interleaved with the baseline (load falls on both alike);
    each call in its own session, as a request's."""
    todo = {"baseline: newest 50 contacts": (baseline, None, None)}
    todo.update({name: (ask(kind), who, what) for name, (kind, who, what) in cases(ids).items()})
    times: dict[str, list[float]] = {name: [] for name in todo}
    found: dict[str, int] = {}
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("asking", total=repeat)
        for _ in range(repeat):
            for name, (fn, who, what) in todo.items():
                with sessions() as s:
                    t0 = time.perf_counter_ns()
                    rows = fn(s, who, what)  # type: ignore[operator]
                    times[name].append((time.perf_counter_ns() - t0) / 1e6)
                found[name] = len(rows)
            bar.advance(task)
    base = statistics.median(times["baseline: newest 50 contacts"])
    out = []
    for name, t in times.items():
        t.sort()
        p50, p95 = statistics.median(t), t[int(0.95 * (len(t) - 1))]
        out.append({"case": name, "rows": found[name], "p50_ms": round(p50, 2),
                    "p95_ms": round(p95, 2), "p50_ratio": round(p50 / base, 1)})
    return out


def run(kind: str, contacts: int, messages: int, repeat: int) -> dict[str, Any]:
    with database(kind) as url:
        migrate(url)
        sessions = sessions_for(url)
        t0 = time.perf_counter()
        ids = fill(sessions, contacts, messages)
        filled = time.perf_counter() - t0
        with sessions.begin() as s:  # fresh statistics, as autovacuum would have by now
            s.connection().exec_driver_sql("ANALYZE")
        console.log(f"{kind}: {contacts:,} contacts and {messages:,} messages in {filled:.0f} s")
        return {"db": kind, "contacts": contacts, "messages": messages, "repeat": repeat,
                "fill_s": round(filled, 1), "cases": measure(sessions, ids, repeat)}


def show(results: list[dict[str, Any]]) -> None:
    for r in results:
        table = Table(title=f"{r['db']}: {r['contacts']:,} contacts, {r['messages']:,} "
                      f"messages, {r['repeat']} calls each; target p95 < 100 ms")
        for col in ("case", "rows", "p50 ms", "p95 ms", "p50 / baseline"):
            table.add_column(col, justify="left" if col == "case" else "right")
        for c in r["cases"]:
            table.add_row(c["case"], str(c["rows"]), f"{c['p50_ms']:.1f}", f"{c['p95_ms']:.1f}",
                          f"{c['p50_ratio']:.1f}x")
        Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40, help="calls per case")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = [run(k, args.contacts, args.messages, args.repeat) for k in kinds]
    show(results)
    if args.json:
        args.json.write_text(json.dumps({
            "bench": "lists", "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "results": results},
            indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
