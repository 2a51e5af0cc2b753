"""The scale path: `atende serve` without a consumer and two `atende worker` processes on one
PostgreSQL database and one Redis queue. A worker killed mid-turn is replaced by the other,
which never took the conversation while its holder lived; the customer gets one reply.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, fresh_database, server_env
from tests.fake_openai import FakeOpenAI
from tests.test_crash_restart import QUESTION, _answered_once, _journey, _wait, _write
from tests.test_message_path import _rows

QUEUE = "redis://127.0.0.1:6379/14"
LEASE_SECONDS = 3


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Server, dict[int, subprocess.Popen[bytes]],
                                            FakeOpenAI]]:
    try:
        redis.Redis.from_url(QUEUE).flushdb()
    except redis.ConnectionError:
        pytest.skip("Redis is not running at 127.0.0.1:6379 (.ci/run starts it)")
    fake = FakeOpenAI()
    models = [{"name": "gpt", "provider": "openai", "model": "gpt-fake", "base_url": fake.url,
               "api_key": "sk-test-secret-1234", "timeout_s": 120, "max_retries": 0}]
    workers: dict[int, subprocess.Popen[bytes]] = {}
    with fresh_database("postgresql", tmp_path) as url:
        shared = dict(ATENDE_DATABASE_URL=url, ATENDE_QUEUE_URL=QUEUE,
                      ATENDE_MODELS=json.dumps(models), ATENDE_LLM_DEFAULT="gpt",
                      ATENDE_LEASE_SECONDS=str(LEASE_SECONDS), ATENDE_QUEUE_WORKERS="1")
        front = tmp_path / "serve"
        front.mkdir()
        srv = Server(front, server_env(front, ATENDE_RUN_CONSUMER="false", **shared), url)
        srv.start()
        for i in range(2):
            data = tmp_path / f"worker{i}"
            data.mkdir()
            env = server_env(data, **shared)
            subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT,
                           check=True, capture_output=True)
            with (data / "worker.log").open("ab") as log:
                proc = subprocess.Popen([*ATENDE, "worker"], env=env, cwd=ROOT, stdout=log,
                                        stderr=subprocess.STDOUT)
            workers[proc.pid] = proc
        yield srv, workers, fake
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        srv.stop()
        fake.close()


def test_a_dead_workers_turn_is_taken_over_by_a_live_one(fleet) -> None:
    srv, workers, fake = fleet
    release = threading.Event()
    fake.script.append(("hold", release))
    phone = "5511940000001"
    first = _write(srv, phone, QUESTION)
    _wait("a worker to ask the model", fake.held.is_set, timeout=120)

    ((name, owner, expires),) = _rows(srv, "SELECT name, owner, expires_at FROM leases "
                                      "WHERE name LIKE ?", "conv%")
    holder = int(owner.split(":")[1])
    assert holder in workers
    # While its holder lives (and renews every second), the lease is not taken: once the holder
    # has renewed it three lease lengths past the expiry first seen (so it would have lapsed
    # twice over unrenewed, with the other worker looking every second), the other worker has
    # not asked the model.
    def renewed() -> bool:
        ((now_owner, now_expires),) = _rows(srv, "SELECT owner, expires_at FROM leases "
                                            "WHERE name=?", name)
        assert now_owner == owner, "taken while its holder lives"
        return now_expires - expires >= timedelta(seconds=3 * LEASE_SECONDS)

    _wait("the holder to renew its lease over three lease lengths", renewed, timeout=60)
    assert len(fake.requests) == 1

    workers[holder].send_signal(signal.SIGKILL)
    workers[holder].wait(10)
    _answered_once(srv, phone, first, replies=1)
    steps = _journey(srv, first)
    assert "requeued" in steps and steps.count("turn_started") == 2
    assert len(fake.requests) == 2
    release.set()
    second = _write(srv, phone, "qto custa a entrega expressa")
    _answered_once(srv, phone, second, replies=2)
    assert httpx.get(f"{srv.url}/health").status_code == 200
