"""Connection checks of many numbers run at once: one slow gateway costs one wait, not one per
number, so a dead socket is still seen within a minute with 50 numbers on one server."""

from __future__ import annotations

import time

import httpx
from sqlalchemy.orm import Session, sessionmaker

from server.services import connection, instances
from tests.gateways.fake_evolution import API_KEY, FakeEvolution
from tests.gateways.fakehttp import FakeHTTP, Reply

NUMBERS = 8
SLOW = 1.5  # seconds the gateway takes to answer each check


def test_slow_gateway_checks_of_many_numbers_overlap(sessions: sessionmaker[Session]) -> None:
    with FakeHTTP() as http:
        FakeEvolution(http)
        for i in range(NUMBERS):
            instances.create(sessions, {"name": f"vendas-{i}", "provider": "evolution",
                                        "api_url": http.url, "api_key": API_KEY,
                                        "options": {"instance": f"vendas-{i}"}})
            state = "open" if i % 2 else "close"  # half of them lost their socket
            http.fail(Reply(200, {"instance": {"instanceName": f"vendas-{i}", "state": state}},
                            delay=SLOW), path=f"/instance/connectionState/vendas-{i}$")
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            states = connection.check_all(client, sessions)
        took = time.monotonic() - started
    assert states == {f"vendas-{i}": "connected" if i % 2 else "disconnected"
                      for i in range(NUMBERS)}
    assert took < SLOW * 3, f"{NUMBERS} checks took {took:.1f} s: they ran one after another"
