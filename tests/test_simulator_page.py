"""The simulator page in a real headless Chromium: a person types, the reply shows up."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import TimeoutError as PageTimeout

from tests.conftest import Server
from tests.test_message_path import ADMIN, _rows


def _why_no_reply(server: Server, phone: str) -> str:
    """What the server did with the customer's message: its journey and the log's tail, so a
    reply that never came says where it stopped."""
    found = _rows(server, "SELECT m.id FROM messages m JOIN conversations c ON "
                          "c.id=m.conversation_id WHERE c.address=? AND m.direction='in' "
                          "ORDER BY m.id DESC LIMIT 1", phone)
    journey = (httpx.get(f"{server.url}/api/messages/{found[0][0]}", headers=ADMIN).json()
               .get("journey") if found else "no message stored")
    tail = server.log.read_text(errors="replace").splitlines()[-40:]
    return f"journey: {journey}\nserver log:\n" + "\n".join(tail)


def test_customer_types_and_sees_the_reply(server: Server, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(locale="pt-BR")
    page.goto(f"{server.url}/simulator")
    assert page.title().startswith("Simulador de WhatsApp")
    page.fill("#phone", "5511955550001")
    page.fill("#text", "o boleto vence qndo?")
    page.click("button[type=submit]")
    page.wait_for_selector(".msg.in", timeout=10_000)
    try:
        reply = page.wait_for_selector(".msg.out", timeout=60_000)
    except PageTimeout:
        raise AssertionError("no reply in 60 s\n" + _why_no_reply(server, "5511955550001")) \
            from None
    assert reply is not None and reply.inner_text().strip()
    assert page.locator(".msg.in").inner_text() == "o boleto vence qndo?"
    assert page.input_value("#text") == ""  # the box is cleared for the next message
    page.screenshot(path=str(Path(server.data_dir) / "simulator.png"), full_page=True)
    page.close()
