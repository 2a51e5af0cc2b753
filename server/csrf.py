"""CSRF protection for the web app: starlette-csrf's double-submit cookie, and where it applies.

A browser sends the session cookie with any request, a forged one from another site included;
it does not let that site read our cookies. So a state-changing request that carries the
session cookie must also carry the ``csrftoken`` cookie's value, in the ``X-CSRFToken`` header
(the pages' scripts) or in a ``csrftoken`` form field (a plain HTML form, as the login page's).
starlette-csrf signs the token (itsdangerous) and compares the two; this module adds two things
it lacks: the form field, and the token made before the route runs (``request.state.csrf_token``)
so a page rendered on a first visit can put it in its form. A token signed with another key (the
key rotated) is replaced on the next page, instead of refusing forever.

Requests without the session cookie are not checked (bearer-token clients). Gateway webhooks
(/webhooks), the OpenAI-compatible endpoint (/v1) and the simulator (/simulator: a development
tool that posts JSON from its own page) are passed through untouched, cookie or not. Logging in is
always checked (``required_urls``), cookie or not, so another site cannot log a browser in as
someone else.
"""

from __future__ import annotations

import http.cookies
import re
from urllib.parse import parse_qs

from itsdangerous import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette_csrf import CSRFMiddleware

FIELD = "csrftoken"  # the cookie's name, and the form field's
FORM = "application/x-www-form-urlencoded"
MAX_FORM = 64_000  # a form of ours is a few fields; a larger one is not read for the token
EXEMPT = [re.compile(r"^/(webhooks|v1)/"), re.compile(r"^/simulator(/|$)")]
REQUIRED = [re.compile(r"^/auth/login$")]


class CSRF(CSRFMiddleware):
    """starlette-csrf, reading a form's hidden field too, and making the token up front."""

    def __init__(self, app: ASGIApp, secret: str, session_cookie: str, secure: bool) -> None:
        super().__init__(app, secret, required_urls=REQUIRED, exempt_urls=EXEMPT,
                         sensitive_cookies={session_cookie}, cookie_name=FIELD,
                         cookie_secure=secure, cookie_samesite="lax")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope)
        if self._url_is_exempt(request.url):  # no check, no cookie: a webhook costs nothing more
            await self.app(scope, receive, send)
            return
        given = request.cookies.get(self.cookie_name)
        token = given if given and self._signed(given) else self._generate_csrf_token()
        scope.setdefault("state", {})["csrf_token"] = token
        if (request.method not in self.safe_methods and self.header_name not in request.headers
                and request.headers.get("content-type", "").split(";")[0].strip() == FORM):
            body, receive = await _buffered(receive)
            field = parse_qs(body.decode("latin-1")).get(FIELD, [""])[0] if body else ""
            if field:
                scope = {**scope, "headers": [*scope["headers"],
                                              (self.header_name.encode(), field.encode())]}
        await super().__call__(scope, receive, send)

    async def send(self, message: Message, send: Send, scope: Scope) -> None:
        """Set the cookie when the request had none, or one this key did not sign."""
        token = scope.get("state", {}).get("csrf_token")
        if (token and message["type"] == "http.response.start"
                and Request(scope).cookies.get(self.cookie_name) != token):
            cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            cookie[self.cookie_name] = token
            cookie[self.cookie_name]["path"] = self.cookie_path
            cookie[self.cookie_name]["samesite"] = self.cookie_samesite
            if self.cookie_secure or scope.get("scheme") == "https":
                cookie[self.cookie_name]["secure"] = True
            MutableHeaders(scope=message).append("set-cookie", cookie.output(header="").strip())
        await send(message)

    def _signed(self, token: str) -> bool:
        try:
            self.serializer.loads(token)
        except BadSignature:
            return False
        return True


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The request's body (None past MAX_FORM), and a receive that gives it to the app again."""
    messages: list[Message] = []
    size, more = 0, True
    while more and size <= MAX_FORM:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return (None if more or size > MAX_FORM else body), replay
