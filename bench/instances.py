"""Many numbers at once: nothing lost, nothing stored twice, and how fast, per database.

``--instances`` Evolution numbers (made through the admin API with ``ai_enabled: false``, each
with its fake gateway from ``tests/gateways/fake_evolution.py`` for the connection checks) get
``--messages`` messages each from their own customers (``--customers`` per number, so a
customer writes several; a share of them in bursts of 2 to 5 back to back), all numbers mixed
and posted with ``--concurrency`` in flight. A share of the ids (``--dup-share``, every one by
default) is delivered a second time at a random later point, as a gateway retrying does.
Afterwards the database must hold each id once (as many rows as distinct ids), one contact per
customer and one conversation per customer and number.

Each database runs on a fresh ``atende serve`` (SQLite; PostgreSQL on a new database created as
``tests/conftest.py``'s ``fresh_database`` does); the baseline is a bare FastAPI endpoint that
reads the body and answers 200, given the same deliveries (the first ``--bare-sample``) in the
same run.

Run: ``.venv/bin/python bench/instances.py [--instances 50] [--messages 200]
[--db sqlite postgresql] [--concurrency 32] [--dup-share 1.0] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import (  # noqa: E402  (after the path is set)
    ADMIN,
    Post,
    Run,
    atende_server,
    bare_server,
    drive,
    load,
    phone_of,
    rows,
)


@dataclass
class Number:
    name: str
    url: str  # its webhook URL, token included
    stop: Any


def make_numbers(base_url: str, count: int, tag: str) -> list[Number]:
    """``count`` Evolution numbers through the admin API, assistant off."""
    import httpx

    from tests.gateways import fake_evolution as evo
    from tests.gateways.fakehttp import FakeHTTP

    out = []
    with httpx.Client(timeout=60) as client:
        for i in range(count):
            name = f"{tag}-{i:03d}"
            fake = FakeHTTP().start()
            evo.FakeEvolution(fake, instance=name)
            r = client.post(f"{base_url}/api/instances", headers=ADMIN, json={
                "name": name, "provider": "evolution", "api_url": fake.url,
                "api_key": evo.API_KEY, "options": {"instance": name}, "ai_enabled": False})
            r.raise_for_status()
            out.append(Number(name, f"{base_url}/webhooks/evolution/{name}"
                              f"?token={r.json()['webhook_secret']}", fake.stop))
    return out


@dataclass
class Plan:
    posts: list[Post]  # every delivery, in the order sent
    ids: set[str]  # distinct message ids
    customers: int
    pairs: int  # distinct (customer, number)


def plan(numbers: list[Number], messages: int, customers: int, burst_share: float,
         dup_share: float, seed: int) -> Plan:
    """Each number's messages from its own customers, some in bursts; the numbers mixed at
    random (each number's own order kept); then the repeats, each at a random later point."""
    from tests.gateways import fake_evolution as evo

    rng = random.Random(seed)
    queues: list[list[Post]] = []
    pairs = 0
    phones: set[str] = set()
    for n_idx, num in enumerate(numbers):
        own = [phone_of(n_idx * customers + c) for c in range(customers)]
        seq: list[str] = []
        while len(seq) < messages:
            who = rng.choice(own)
            size = rng.randint(2, 5) if rng.random() < burst_share else 1
            seq += [who] * min(size, messages - len(seq))
        pairs += len(set(seq))
        phones |= set(seq)
        q = []
        for j, phone in enumerate(seq):
            mid = f"3EB0{n_idx:03d}{j:05d}{rng.getrandbits(32):08X}"
            body = evo.message(mid, phone, f"msg {j} para {num.name}", instance=num.name,
                               name=f"Cliente {phone[-4:]}")
            q.append(Post(num.url, body, {"Content-Type": "application/json"}, mid))
        queues.append(q)
    order: list[Post] = []
    live = [q[::-1] for q in queues]
    while live:
        q = rng.choice(live)
        order.append(q.pop())
        if not q:
            live.remove(q)
    # Each repeat goes at a random point after its first delivery.
    keyed = [(float(i), p) for i, p in enumerate(order)]
    keyed += [(rng.uniform(i + 0.5, len(order)), Post(p.url, p.body, p.headers, p.mid))
              for i, p in enumerate(order) if rng.random() < dup_share]
    keyed.sort(key=lambda kp: kp[0])
    return Plan([kp[1] for kp in keyed], {p.mid for p in order}, len(phones), pairs)


def check(db_url: str, tag: str, p: Plan, run: Run) -> dict[str, Any]:
    """What the database holds of the run's numbers, and whether each id is stored once."""
    found = dict(rows(db_url, "SELECT m.provider_message_id, COUNT(*) FROM messages m "
                      "JOIN instances i ON i.id = m.instance_id WHERE i.name LIKE ? "
                      "GROUP BY m.provider_message_id", f"{tag}-%"))
    convs = rows(db_url, "SELECT COUNT(*), COUNT(DISTINCT c.contact_id) FROM conversations c "
                 "JOIN instances i ON i.id = c.instance_id WHERE i.name LIKE ?", f"{tag}-%")[0]
    contacts = rows(db_url, "SELECT COUNT(*) FROM contacts")[0][0]
    stored = sum(a.get("stored", 0) for a in run.answers.values())
    dups = sum(a.get("duplicates", 0) for a in run.answers.values())
    return {
        "deliveries": len(p.posts), "distinct_ids": len(p.ids),
        "acked": run.statuses.get(200, 0),
        "rows": sum(found.values()), "ids_stored": len(found),
        "missing": len(p.ids - found.keys()), "stored_twice": sum(v > 1 for v in found.values()),
        "answered_stored": stored, "answered_duplicate": dups,
        "conversations": convs[0], "expected_conversations": p.pairs,
        "contacts": contacts, "expected_contacts": p.customers,
        "contacts_in_conversations": convs[1],
    }


def drive_all(posts: list[Post], concurrency: int) -> Run:
    """One run; ``answers`` keyed per delivery (the same id twice is two answers)."""
    keyed = [Post(q.url, q.body, q.headers, f"{q.mid}#{i}") for i, q in enumerate(posts)]
    return drive(keyed, concurrency)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200, help="messages per number")
    ap.add_argument("--customers", type=int, default=40, help="customers per number")
    ap.add_argument("--burst-share", type=float, default=0.3,
                    help="share of a customer's turns that are bursts of 2 to 5 messages")
    ap.add_argument("--dup-share", type=float, default=1.0,
                    help="share of the ids delivered a second time")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"],
                    choices=["sqlite", "postgresql"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bare-sample", type=int, default=4000,
                    help="deliveries given to the bare endpoint (its rate is what counts)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    folder = Path(tempfile.mkdtemp(prefix="instances-bench-"))
    result: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "load_before": load()},
                              "args": {k: v for k, v in vars(args).items() if k != "json"},
                              "runs": {}}
    figures: dict[str, tuple[Run, dict[str, Any], float]] = {}
    last_plan: Plan | None = None
    for db in args.db:
        console.print(f"[bold]{db}[/]: {args.instances} numbers x {args.messages} messages "
                      f"(load {load()})")
        with atende_server(folder, db) as a:
            tag = "n"
            t = time.perf_counter()
            numbers = make_numbers(a.srv.url, args.instances, tag)
            setup = time.perf_counter() - t
            try:
                p = plan(numbers, args.messages, args.customers, args.burst_share,
                         args.dup_share, args.seed)
                run = drive_all(p.posts, args.concurrency)
                ck = check(a.db_url, tag, p, run)
            finally:
                for n in numbers:
                    n.stop()
        last_plan = p
        figures[db] = (run, ck, setup)
        console.print(f"  {len(p.posts)} deliveries in {run.wall_s:.1f} s: "
                      f"{run.requests / run.wall_s:.0f}/s, p99 {run.pct(0.99) * 1000:.0f} ms, "
                      f"statuses {run.statuses}; {ck} (load {load()})")

    assert last_plan is not None
    console.print(f"[bold]bare FastAPI endpoint[/], the same deliveries (load {load()})")
    with bare_server(folder) as b:
        base_posts = [Post(f"{b.url}/webhooks/evolution/x", q.body, q.headers, q.mid)
                      for q in last_plan.posts[:args.bare_sample]]
        bare = drive_all(base_posts, args.concurrency)
    bare_rate = bare.requests / bare.wall_s

    table = Table(title=f"{args.instances} numbers x {args.messages} messages, "
                  f"{args.dup_share:.0%} delivered twice, {args.concurrency} in flight, "
                  f"{os.cpu_count()} cores, load before {result['machine']['load_before']}")
    for col in ("database", "deliveries", "wall s", "webhooks/s", "vs bare", "new msgs/s",
                "p50 ms", "p99 ms", "ids stored once", "lost", "twice", "contacts",
                "conversations"):
        table.add_column(col, justify="left" if col == "database" else "right")
    for db, (run, ck, setup) in figures.items():
        rate = run.requests / run.wall_s
        ok = (ck["missing"] == 0 and ck["stored_twice"] == 0 and ck["rows"] == ck["distinct_ids"]
              and ck["answered_stored"] == ck["distinct_ids"])
        table.add_row(db, str(run.requests), f"{run.wall_s:.1f}", f"{rate:.0f}",
                      f"{rate / bare_rate:.2f}x", f"{ck['distinct_ids'] / run.wall_s:.0f}",
                      f"{run.pct(0.5) * 1000:.0f}", f"{run.pct(0.99) * 1000:.0f}",
                      f"{ck['ids_stored']}/{ck['distinct_ids']}" + ("" if ok else " [red]![/]"),
                      str(ck["missing"]), str(ck["stored_twice"]),
                      f"{ck['contacts']}/{ck['expected_contacts']}",
                      f"{ck['conversations']}/{ck['expected_conversations']}")
        result["runs"][db] = {**run.figures(), "webhooks_per_s": rate,
                              "vs_bare": rate / bare_rate, "setup_s": setup, "check": ck}
    table.add_row("bare endpoint", str(bare.requests), f"{bare.wall_s:.1f}", f"{bare_rate:.0f}",
                  "1.00x", "", f"{bare.pct(0.5) * 1000:.0f}", f"{bare.pct(0.99) * 1000:.0f}",
                  "", "", "", "", "")
    result["bare"] = bare.figures()
    if len(figures) == 2:
        (_, (r1, _, _)), (_, (r2, _, _)) = figures.items()
        result["postgresql_vs_sqlite"] = (r2.requests / r2.wall_s) / (r1.requests / r1.wall_s)
    console.print(table)
    result["machine"]["load_after"] = load()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(folder, ignore_errors=True)  # kept, with the servers' logs, on failure


if __name__ == "__main__":
    main()
