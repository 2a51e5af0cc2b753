"""A client that hangs up on a streamed `/v1/chat/completions` reply: the model behind it stops
writing, and what it wrote is charged, so a budget cannot be spent by hanging up."""

from __future__ import annotations

import json
import socket
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from eval.answers import CHECKED, MODEL
from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, serve_mode, server_env
from tests.fake_openai import FakeOpenAI

ADMIN = {"Authorization": "Bearer test-admin-token"}


def _words(n: int) -> str:
    """n different words with no digits, so the guard passes them (no loop, no number)."""
    letters = string.ascii_lowercase
    return " ".join("pal" + letters[i // 26 % 26] + letters[i % 26] for i in range(n))


@pytest.fixture(params=[MODEL])
def api(request: pytest.FixtureRequest,
        tmp_path: Path) -> Iterator[tuple[Server, FakeOpenAI, str]]:
    fake = FakeOpenAI()
    models = [{"name": "gpt", "provider": "openai", "model": "gpt-fake", "base_url": fake.url,
               "api_key": "sk-test-secret-1234", "price_in_per_1k": 0.5,
               "price_out_per_1k": 1.5, "max_retries": 0}]
    env = server_env(tmp_path, ATENDE_MODELS=json.dumps(models), ATENDE_LLM_DEFAULT="gpt")
    subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    srv = Server(tmp_path, env, f"sqlite:///{tmp_path / 'atende.db'}")
    srv.start()
    if request.param != CHECKED:  # model-checked is what a knowledge base gets by default
        serve_mode(sessionmaker(create_engine(srv.db_url)), "default", request.param)
    out = subprocess.run([*ATENDE, "tokens", "create", "crm", "--collection", "default"],
                         env={**env, "COLUMNS": "200"}, cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    yield srv, fake, next(w for w in out.split() if w.startswith("atd_"))
    srv.stop()
    fake.close()


def _api_usage(srv: Server) -> list[dict[str, object]]:
    rows = httpx.get(f"{srv.url}/api/reports/usage", headers=ADMIN).json()["rows"]
    return [r for r in rows if r["purpose"] == "api"]


def test_hanging_up_stops_the_model_and_charges_what_it_wrote(api) -> None:
    srv, fake, token = api
    fake.script.append(("drip", _words(400), 0.05))  # 400 chunks: 20 s if nobody stops it
    got = []
    with httpx.Client(timeout=60) as client, client.stream(
            "POST", f"{srv.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            json={"model": "default", "stream": True,
                  "messages": [{"role": "user", "content": "vcs entregam em sp?"}]}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                got.append(json.loads(line[6:])["choices"][0]["delta"].get("content"))
            if len([g for g in got if g]) >= 3:
                break  # the client hangs up here
    hung_up = time.monotonic()
    assert fake.hung_up.wait(10), "the model went on writing for a reader who had gone"
    assert time.monotonic() - hung_up < 3
    assert fake.dripped < 100
    deadline = time.monotonic() + 10
    while not (rows := _api_usage(srv)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rows, "a reply the client hung up on was not charged"
    (row,) = rows
    assert row["model"] == "gpt" and row["calls"] == 1
    assert row["prompt_tokens"] > 50 and row["completion_tokens"] > 0  # type: ignore[operator]
    assert row["cost_usd"] > 0  # type: ignore[operator]


@pytest.mark.parametrize("api", [CHECKED], indirect=True)
def test_hanging_up_while_the_model_decides_still_charges_the_decision(api) -> None:
    """Model-checked (the default): the model decides before anything is streamed; a client
    gone by then does not make the decision free."""
    srv, fake, token = api
    release = threading.Event()
    fake.script.append(("hold", release))  # the model is caught deciding
    body = json.dumps({"model": "default", "stream": True, "messages": [
        {"role": "user", "content": "o boleto vence em quantos dias?"}]}).encode()
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert fake.held.wait(30), "the model was never asked"
    release.set()  # the client has hung up; the model answers now, to no one
    deadline = time.monotonic() + 15
    while not (rows := _api_usage(srv)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(fake.requests) == 1
    assert rows and rows[0]["model"] == "gpt" and rows[0]["calls"] == 1, rows
