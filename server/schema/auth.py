"""Access: who is logged in (web sessions) and who tried to (login attempts).

Both tables are append-only in spirit: a session ends by ``revoked_at`` (logout) or by
``expires_at`` passing, and is never deleted, so an admin can tell who was in and when. Only
the SHA-256 of a session's cookie is kept: a database dump opens no session. Login attempts
are what throttling counts (``server.services.auth``), by e-mail and by address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class WebSession(Base):
    """A logged-in browser: the cookie holds a random token, the table its hash."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()  # logout


class LoginAttempt(Base):
    """One try at logging in, as given (the e-mail need not be a user's); never rewritten."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_email_at", "email", "at"),
                      Index("ix_login_attempts_ip_at", "ip", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)
