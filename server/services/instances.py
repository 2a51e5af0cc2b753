"""Connected numbers: creating, finding, changing and removing instances.

What each gateway needs is checked here, once, so an instance that is saved can be used: a
gateway URL and key for Evolution and WAHA, the phone number id, access token, app secret and
verify token for the Cloud API. The secret that authenticates webhooks is made here when the
admin gives none (Evolution signs nothing: its webhook URL carries it), and shown once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Connection, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import PROVIDERS, InstanceConfig
from server.schema import Conversation, Instance, utcnow
from server.services import flow_store
from server.services.contact_data import Invalid

CLOUD_API = "https://graph.facebook.com"
# What each provider needs before it can work, beyond a name.
REQUIRED: dict[str, tuple[str, ...]] = {
    "evolution": ("api_url", "api_key"),
    "waha": ("api_url", "api_key"),
    "cloud": ("api_key", "webhook_secret", "verify_token", "options.phone_number_id"),
    "simulator": (),
}
OPTIONS: dict[str, frozenset[str]] = {
    "evolution": frozenset({"instance"}),
    "waha": frozenset({"session"}),
    "cloud": frozenset({"phone_number_id", "api_version"}),
    "simulator": frozenset(),
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # it goes into the webhook's path
MIN_SECRET = 8
GATEWAY_FIELDS = ("provider", "api_url", "api_key", "webhook_secret", "verify_token", "options",
                  "send_interval_s", "daily_cap")


class Configured(Protocol):
    """What ``config`` reads: an ``Instance``, or the few columns a webhook loads (``Number``)."""

    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def webhook_secret(self) -> str: ...
    @property
    def api_url(self) -> str | None: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def options(self) -> dict[str, Any] | None: ...
    @property
    def verify_token(self) -> str | None: ...


@dataclass(frozen=True)
class Number:
    """A live instance as a webhook needs it: read with one Core SELECT of these columns
    (``for_webhook``) instead of the whole ORM row, on every webhook."""

    id: int
    name: str
    provider: str
    webhook_secret: str
    api_url: str | None
    api_key: str | None
    options: dict[str, Any] | None
    verify_token: str | None
    ai_enabled: bool


_T = Instance.__table__.c
# Built once: a statement made per call costs its cache key (a walk of it) on every webhook.
_NUMBER = select(*(_T[k] for k in Number.__annotations__)).where(
    _T.deleted_at.is_(None), _T.name == bindparam("name"))


def for_webhook(c: Connection, name: str) -> Number | None:
    """The live instance of this name, read afresh for every webhook: a removed number or a
    rotated secret refuses the very next one (nothing is cached)."""
    row = c.execute(_NUMBER, {"name": name}).first()
    return None if row is None else Number(*row)


def config(inst: Configured) -> InstanceConfig:
    """What the instance's adapter needs, credentials unsealed."""
    options = dict(inst.options or {})
    if inst.verify_token:
        options["verify_token"] = inst.verify_token
    api_url = inst.api_url or (CLOUD_API if inst.provider == "cloud" else None)
    return InstanceConfig(name=inst.name, webhook_secret=inst.webhook_secret, api_url=api_url,
                          api_key=inst.api_key, options=options)


def redact(text: str, cfg: InstanceConfig) -> str:
    """``text`` (a gateway's words) with the instance's credentials blanked out: a gateway or a
    proxy may echo what we sent it in an error, and those words are kept and shown."""
    for secret in (cfg.api_key, cfg.webhook_secret, cfg.options.get("verify_token")):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


@dataclass(frozen=True)
class Created:
    instance: Instance
    webhook_secret: str | None  # made here: shown once, never again


def ensure_simulator(sessions: sessionmaker[Session], name: str, public_url: str) -> Instance:
    """The simulator instance ``name``, created with fresh secrets if missing."""
    try:
        with sessions.begin() as s:
            inst = s.scalar(select(Instance).where(Instance.name == name))
            if inst is None:
                inst = Instance(name=name, provider="simulator",
                                webhook_secret=secrets.token_urlsafe(32),
                                api_key=secrets.token_urlsafe(24))
                s.add(inst)
            inst.api_url = public_url
            # No ban to fear on a phone in this process: no pacing, and always linked.
            inst.send_interval_s, inst.connection_state = 0.0, "connected"
            return inst
    except IntegrityError:  # created by a concurrent start
        with sessions() as s:
            return s.scalars(select(Instance).where(Instance.name == name)).one()


def create(sessions: sessionmaker[Session], fields: dict[str, Any]) -> Created:
    """A new instance from validated fields; a ValueError says what is missing or wrong (a
    taken name too; ``flow_store.UnknownFlow`` for a default flow that is not stored)."""
    provider = fields.get("provider")
    if not NAME.match(str(fields.get("name") or "")):
        raise Invalid(f"name {fields.get('name')!r}: letters, digits, _ . and -, up to 64, "
                      "starting with a letter or digit", "name")
    if provider not in PROVIDERS or provider == "simulator":
        raise Invalid(f"provider must be one of {sorted(set(PROVIDERS) - {'simulator'})}",
                      "provider")
    made = None
    if not fields.get("webhook_secret"):
        if provider == "cloud":
            raise Invalid("webhook_secret (the Meta app secret) is required for the Cloud API",
                          "webhook_secret")
        made = fields["webhook_secret"] = secrets.token_urlsafe(32)
    _check(provider, fields)
    try:
        with sessions.begin() as s:
            flow_store.require(s, fields.get("default_flow"))
            inst = Instance(**{k: v for k, v in fields.items() if v is not None})
            s.add(inst)
            s.flush()
    except IntegrityError:
        raise Invalid(f"an instance named {fields.get('name')!r} exists", "name") from None
    return Created(inst, made)


def update(sessions: sessionmaker[Session], name: str, changes: dict[str, Any], *,
           models: set[str]) -> Instance:
    """Change a number: how the assistant works on it, or its gateway settings; ``models`` are
    the configured ones (an unknown model is a ValueError, an unknown instance a LookupError,
    an unknown ``default_flow`` a ``flow_store.UnknownFlow``; null returns it to AI mode).
    ``ai_enabled: null`` leaves it as it is: it has no default to return to."""
    for model in [changes.get("model")] + (changes.get("fallback_models") or []):
        if model is not None and model not in models:
            raise ValueError(f"unknown model {model!r}; configured: {sorted(models)}")
    with sessions.begin() as s:
        inst = _get(s, name)
        if "default_flow" in changes:
            flow_store.require(s, changes["default_flow"])
        for key in ("ai_enabled", "send_interval_s", "daily_cap", "webhook_secret"):
            if key in changes and changes[key] is None:
                changes.pop(key)  # no default to return to
        if "options" in changes:
            changes["options"] = {**(inst.options or {}), **(changes["options"] or {})}
        merged = {k: getattr(inst, k) for k in GATEWAY_FIELDS} | changes
        _check(inst.provider, merged)
        for key, value in changes.items():
            setattr(inst, key, value)
        if {"api_url", "api_key", "options"} & changes.keys():
            inst.connection_state, inst.connection_detail = "unknown", "gateway settings changed"
        s.flush()
        return inst


def rotate_secret(sessions: sessionmaker[Session], name: str) -> tuple[Instance, str]:
    """A new webhook secret for a number, shown once (the gateway must be told it)."""
    fresh = secrets.token_urlsafe(32)
    with sessions.begin() as s:
        inst = _get(s, name)
        inst.webhook_secret = fresh
        s.flush()
        return inst, fresh


def remove(sessions: sessionmaker[Session], name: str) -> bool:
    """Remove a number: gone if it never talked, else kept out of sight with its history (its
    name freed for a new one) so no conversation loses its messages. True if it is gone."""
    with sessions.begin() as s:
        inst = _get(s, name)
        if not s.scalar(select(exists().where(Conversation.instance_id == inst.id))):
            s.delete(inst)
            return True
        inst.deleted_at = utcnow()
        inst.name = f"{inst.name[:40]}~removed-{inst.id}"
        return False


def live(s: Session) -> list[Instance]:
    """The numbers not removed, by name."""
    return list(s.scalars(select(Instance).where(Instance.deleted_at.is_(None))
                          .order_by(Instance.name)))


def get(s: Session, name: str) -> Instance:
    """A live instance by name; LookupError if there is none."""
    return _get(s, name)


def _get(s: Session, name: str) -> Instance:
    inst = s.scalar(select(Instance).where(Instance.name == name, Instance.deleted_at.is_(None)))
    if inst is None:
        raise LookupError(f"no instance {name!r}")
    return inst


def webhook_url(inst: Instance, base: str, token: str | None = None) -> str:
    """Where the number's gateway posts, to paste into it. Evolution signs nothing, so its URL
    carries the secret: the real one only when just made (``token``), else a placeholder."""
    url = f"{base.rstrip('/')}/webhooks/{inst.provider}/{inst.name}"
    if inst.provider == "evolution":
        url += f"?token={token or '<webhook_secret>'}"
    return url


def _check(provider: str, fields: dict[str, Any]) -> None:
    options = fields.get("options") or {}
    unknown = set(options) - OPTIONS[provider]
    if unknown:
        raise Invalid(f"unknown options for {provider}: {sorted(unknown)}; "
                      f"known: {sorted(OPTIONS[provider])}", "options")
    missing = [f for f in REQUIRED[provider]
               if not (options.get(f[8:]) if f.startswith("options.") else fields.get(f))]
    if missing:
        raise Invalid(f"{provider} needs {', '.join(missing)}", missing[0])
    url = fields.get("api_url")
    if url and not _is_url(url):
        raise Invalid(f"api_url {url!r} is not an http(s) URL with a host", "api_url")
    secret = fields.get("webhook_secret")
    if secret is not None and len(secret) < MIN_SECRET:
        raise Invalid(f"webhook_secret has at least {MIN_SECRET} characters", "webhook_secret")
    pace, cap = fields.get("send_interval_s"), fields.get("daily_cap")
    if pace is not None and not (_number(pace) and 0 <= pace <= 3600):
        raise Invalid("send_interval_s is a number of seconds, 0 to 3600", "send_interval_s")
    if cap is not None and not (_number(cap) and isinstance(cap, int) and cap >= 1):
        raise Invalid("daily_cap is a whole number, 1 or more", "daily_cap")


def _is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        return (parts.scheme in ("http", "https") and bool(parts.hostname)
                and not any(c.isspace() for c in text) and (parts.port or 0) >= 0)
    except ValueError:  # a port that is no number, a broken IPv6 address
        return False


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
