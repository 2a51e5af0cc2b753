"""The simulator page in a real headless Chromium: a person types, the reply shows up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (`make test` installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_customer_types_and_sees_the_reply(server: Server, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(locale="pt-BR")
    page.goto(f"{server.url}/")
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
