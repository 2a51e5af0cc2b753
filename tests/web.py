"""The web app as a browser meets it: a real ``atende serve`` with the demo company (its teams,
fields and flow), one user of each level with a known password, and a logged-in Chromium page.

Users (all with password ``PASSWORD``):
- ``admin@aurora.demo`` (admin), ``gerente@aurora.demo`` (manager of atendimento and trocas),
  ``agente@aurora.demo`` (agent in atendimento), ``trocas@aurora.demo`` (agent in trocas only).

Screenshots go to ``test-output/screens/`` (kept after the run, for people to look at).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ATENDE, ROOT, Server, fresh_database, server_env

PASSWORD = "senha-de-teste-123"
SCREENS = ROOT / "test-output" / "screens"
USERS = {"admin": "admin@aurora.demo", "manager": "gerente@aurora.demo",
         "agent": "agente@aurora.demo", "other": "trocas@aurora.demo"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


class Web(Server):
    """The server, plus logging a browser in as one of the users."""

    def login(self, browser: Any, who: str, viewport: dict[str, int] = DESKTOP,
              language: str = "pt-BR") -> Any:
        """A new browser context logged in as ``who`` (a key of USERS), on the inbox."""
        context = browser.new_context(viewport=viewport, base_url=self.url,
                                      locale="pt-BR" if language == "pt-BR" else "en-US")
        if language != "pt-BR":
            context.add_cookies([{"name": "lang", "value": language, "url": self.url}])
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=email]", USERS[who])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return page


def shot(page: Any, name: str) -> Path:
    """Keep what the page shows now, whole, under test-output/screens/NAME.png."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _atende(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([*ATENDE, *args], env=env, cwd=ROOT, input=stdin, text=True, check=True,
                   capture_output=True)


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """The demo company on SQLite, its users' passwords set to PASSWORD, served."""
    data = tmp_path_factory.mktemp("web")
    with fresh_database("sqlite", data) as url:
        env = server_env(data, ATENDE_DATABASE_URL=url)
        _atende(env, "db", "upgrade")
        _atende(env, "demo", "install")
        _atende(env, "users", "create", "--email", USERS["other"], "--name", "Agente de Trocas",
                "--level", "agent", "--password-stdin", stdin=PASSWORD + "\n")
        for who in ("admin", "manager", "agent"):
            _atende(env, "users", "password", USERS[who], "--password-stdin",
                    stdin=PASSWORD + "\n")
        _add_to_team(url, USERS["other"], "trocas")
        srv = Web(data, env, url)
        srv.start()
        yield srv
        srv.stop()


def _add_to_team(url: str, email: str, team: str) -> None:
    from sqlalchemy import select

    from server.db import sessions_for
    from server.schema import User
    from server.services import people

    with sessions_for(url).begin() as s:
        user = s.scalars(select(User).where(User.email == email)).one()
        found = people.get_team_by_name(s, team)
        assert found is not None, team
        people.add_member(s, found.id, user.id)
