"""The admin pages in Chromium: an admin creates a team (refused once for a bad hours line), an
agent who logs in with the password the page showed once, and a tag; connects a number whose
gateway (a fake Evolution API) asks to be paired and shows its QR code; a manager reads tags
and fields without a way to change them; an agent meets the no-access page. Screenshots of
every admin page at 1280 px, and of teams and numbers at phone width, go to
test-output/screens/admin-*.png."""

from __future__ import annotations

import random
import struct
import zlib
from base64 import b64encode
from collections.abc import Iterator

import pytest

from tests.gateways import fake_evolution as fe
from tests.gateways.fakehttp import FakeHTTP
from tests.web import PHONE, Web, shot


def qr_like_png(modules: int = 25, scale: int = 8) -> str:
    """A black-and-white PNG that looks like a QR code (finder squares, noise), as the data:
    URL Evolution gives; written by hand so no imaging library is needed."""
    rnd = random.Random(7)
    grid = [[rnd.random() < 0.5 for _ in range(modules)] for _ in range(modules)]
    for ox, oy in ((0, 0), (modules - 7, 0), (0, modules - 7)):
        for y in range(7):
            for x in range(7):
                ring = max(abs(x - 3), abs(y - 3))
                grid[oy + y][ox + x] = ring != 2
    side = (modules + 8) * scale
    rows = b""
    for py in range(side):
        row = bytearray([0])
        for px in range(side):
            mx, my = px // scale - 4, py // scale - 4
            dark = 0 <= mx < modules and 0 <= my < modules and grid[my][mx]
            row.append(0 if dark else 255)
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + b64encode(png).decode()


@pytest.fixture
def evolution() -> Iterator[fe.FakeEvolution]:
    with FakeHTTP() as http:
        fake = fe.FakeEvolution(http)
        fake.state, fake.qr_base64 = "close", qr_like_png()
        yield fake


def test_an_admin_creates_a_team_an_agent_and_a_tag(web: Web, browser: object) -> None:
    page = web.login(browser, "admin")
    page.goto("/admin/teams")
    shot(page, "admin-teams")
    page.click("text=Nova equipe")
    page.fill("#f-name", "Vendas")
    page.check("input[name=always][value='']")
    page.fill("#f-sab", "9h-13h")
    page.fill("#f-ter", "08:00-18:00, 1800")  # a line the editor cannot read
    page.click("button:has-text('Criar equipe')")
    error = page.locator(".field.day.invalid .error")
    assert "1800" in error.inner_text()
    assert page.locator(".field.day.invalid label").inner_text() == "Terça"
    shot(page, "admin-team-error")
    page.fill("#f-ter", "08:00-12:00, 13:00-18:00")
    page.click("button:has-text('Criar equipe')")
    page.wait_for_selector("text=Alterações salvas.")
    assert page.input_value("#f-sab") == "09:00-13:00"
    shot(page, "admin-team")

    page.goto("/admin/users/new")
    page.fill("#f-name", "Carla Nova")
    page.fill("#f-email", "carla@aurora.demo")
    page.select_option("#f-level", "agent")
    page.check("label:has-text('Vendas') input")
    shot(page, "admin-user-new")
    page.click("button:has-text('Criar usuário')")
    password = page.input_value("#once-password")
    assert len(password) >= 12
    shot(page, "admin-user-password")
    page.goto("/admin/users")
    assert page.locator("tr", has_text="Carla Nova").locator("text=Ativo").count() == 1
    shot(page, "admin-users")
    page.goto("/admin/teams")
    assert page.locator(".team-card", has_text="Vendas").locator("text=Carla Nova").count() == 1

    page.goto("/admin/tags")
    page.fill("#f-name", "Cliente VIP")
    page.fill("#f-color", "#b45309")
    page.click("button:has-text('Criar etiqueta')")
    page.wait_for_selector("text=Alterações salvas.")
    assert page.locator(".tag-chip", has_text="Cliente VIP").count() == 1
    shot(page, "admin-tags")
    page.goto("/admin/fields")
    page.fill("#f-key", "plano")
    page.fill("#f-label", "Plano")
    assert not page.is_visible("#f-choices")  # only a choice field has choices
    page.select_option("#f-type", "choice")
    page.fill("#f-choices", "Ouro\nPrata\nouro")  # one choice twice: refused, told where
    page.click("button:has-text('Criar campo')")
    assert "sem repetir" in page.locator(".field.invalid .error").inner_text()
    page.fill("#f-choices", "Ouro\nPrata")
    page.click("button:has-text('Criar campo')")
    page.wait_for_selector("text=Alterações salvas.")
    assert page.locator("tr", has_text="Plano").locator(".badge", has_text="Prata").count() == 1
    shot(page, "admin-fields")
    page.click("tr:has-text('pedido') >> text=Editar")
    shot(page, "admin-field")

    # The agent logs in with the password the page showed.
    carla = browser.new_context(base_url=web.url).new_page()  # type: ignore[attr-defined]
    carla.goto("/login")
    carla.fill("input[name=email]", "carla@aurora.demo")
    carla.fill("input[name=password]", password)
    carla.click("button[type=submit]")
    carla.wait_for_url(lambda url: "/login" not in url)
    assert "Carla Nova" in carla.locator(".topbar").inner_text()


def test_an_admin_connects_a_number_and_pairs_it_with_its_qr_code(
        web: Web, browser: object, evolution: fe.FakeEvolution) -> None:
    page = web.login(browser, "admin")
    page.goto("/admin/instances/new")
    page.fill("#f-name", "vendas-01")
    page.fill("#f-api_url", "evo.aurora.demo")  # no scheme: refused beside the field
    page.fill("#f-api_key", fe.API_KEY)
    page.click("button:has-text('Conectar')")
    assert "http://" in page.locator(".field.invalid .error").inner_text()
    assert page.input_value("#f-api_key") == ""  # a credential is never drawn back
    shot(page, "admin-instance-error")
    page.select_option("#f-provider", "waha")  # the fields follow the gateway (htmx)
    page.wait_for_selector("#f-options\\.session")
    page.select_option("#f-provider", "evolution")
    page.wait_for_selector("#f-options\\.instance")
    page.fill("#f-api_url", evolution.url)
    page.fill("#f-api_key", fe.API_KEY)
    page.fill("#f-options\\.instance", fe.INSTANCE)
    shot(page, "admin-instance-new")
    page.click("button:has-text('Conectar')")
    url = page.input_value("#once-url")
    assert "/webhooks/evolution/vendas-01?token=" + page.input_value("#once-secret") in url
    shot(page, "admin-instance-secret")
    page.click("text=Pronto")
    page.wait_for_selector(".qr-image")  # asked of the gateway, which starts pairing
    page.click("button:has-text('Verificar agora')")
    page.wait_for_selector(".badge.warn:has-text('Pareando')")
    assert "Aguardando pareamento" in page.locator(".flash.error").first.inner_text()
    page.wait_for_selector(".qr-image")
    shot(page, "admin-instance-pairing")
    page.goto("/admin/instances")
    assert page.locator(".number-card", has_text="vendas-01").locator(".alert-line").count() == 1
    shot(page, "admin-instances")

    phone = web.login(browser, "admin", viewport=PHONE)
    for path, name in (("/admin/instances", "admin-instances-phone"),
                       ("/admin/instances/vendas-01", "admin-instance-phone"),
                       ("/admin/teams", "admin-teams-phone")):
        phone.goto(path)
        phone.wait_for_load_state("networkidle")
        shot(phone, name)
    phone.click(".team-card:has-text('atendimento')")
    shot(phone, "admin-team-phone")

    evolution.state = "open"  # scanned: the next check finds it linked, the QR goes away
    page.goto("/admin/instances/vendas-01")
    page.click("button:has-text('Verificar agora')")
    page.wait_for_selector(".badge.ok:has-text('Conectado')")
    page.wait_for_selector(".qr-done")
    assert page.locator(".qr-image").count() == 0


def test_a_manager_reads_tags_and_fields_and_an_agent_has_no_access(
        web: Web, browser: object) -> None:
    manager = web.login(browser, "manager")
    manager.goto("/admin/fields")
    assert manager.locator("code", has_text="pedido").count() == 1
    assert manager.locator("form[action='/admin/fields']").count() == 0
    shot(manager, "admin-fields-manager")
    manager.goto("/admin/tags")
    assert manager.locator("form[action='/admin/tags']").count() == 0
    assert "só administradores" in manager.locator(".readonly-note").inner_text()
    refused = manager.request.post(f"{web.url}/admin/tags", form={"name": "x"}, headers={
        "X-CSRFToken": next(c["value"] for c in manager.context.cookies()
                            if c["name"] == "csrftoken")})
    assert refused.status == 403
    assert manager.goto("/admin/teams").status == 403  # type: ignore[union-attr]
    agent = web.login(browser, "agent")
    for path in ("/admin/tags", "/admin/fields", "/admin/teams", "/admin/users",
                 "/admin/instances"):
        answer = agent.goto(path)
        assert answer.status == 403, path  # type: ignore[union-attr]
        assert agent.locator("text=Sem acesso").count() == 1
    shot(agent, "admin-agent-no-access")
