"""People: the company's users (agents, managers, admins) and the teams they answer in.

A user logs in with an argon2 password hash (``server.services.auth``) and sees what their level
and teams allow (``server.services.access``). A team has members, business hours (a
``flows.Schedule`` as a dict) and the messages a customer handed to it is told.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    level: Mapped[str] = mapped_column(String(16))  # admin | manager | agent
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Takes conversations now: the web app sets it at login and on the agent's toggle.
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # {"timezone": ..., "hours": {"seg-sex": ["08:00-18:00"]}, "closed": [...]}; none: always
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Told once on handoff; {team} and {agent} are filled in. Empty: the settings' default.
    handoff_message: Mapped[str | None] = mapped_column(Text)
    # Told outside business hours, at most once per ``closed_window_minutes`` per contact.
    closed_message: Mapped[str | None] = mapped_column(Text)
    closed_window_minutes: Mapped[int] = mapped_column(Integer, default=720)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """A user in a team; ``last_assigned_at`` makes the round-robin fair."""

    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column()
