"""The simulator page in a real headless Chromium: a person types, the reply shows up."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Server


def test_customer_types_and_sees_the_reply(server: Server, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(locale="pt-BR")
    page.goto(f"{server.url}/simulator")
    assert page.title().startswith("Simulador de WhatsApp")
    page.fill("#phone", "5511955550001")
    page.fill("#text", "o boleto vence qndo?")
    page.click("button[type=submit]")
    page.wait_for_selector(".msg.in", timeout=10_000)
    reply = page.wait_for_selector(".msg.out", timeout=60_000)
    assert reply is not None and reply.inner_text().strip()
    assert page.locator(".msg.in").inner_text() == "o boleto vence qndo?"
    assert page.input_value("#text") == ""  # the box is cleared for the next message
    page.screenshot(path=str(Path(server.data_dir) / "simulator.png"), full_page=True)
    page.close()
