"""The language model's side: what each call cost and the budgets it crossed, the API tokens
(the OpenAI-compatible endpoint's, and integrations' bound to a level), the local model's
versions and promotions, and the answer mode the gate chose for each knowledge base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class LlmUsage(Base):
    """One model call: tokens and cost, what the budgets and reports add up."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    purpose: Mapped[str] = mapped_column(String(16))  # reply | api
    model: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)


class BudgetAlert(Base):
    """A budget crossed its alert share or its limit; recorded once per scope and period."""

    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("scope", "period", "period_start", "level",
                                       name="uq_budget_alert"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))  # total | instance:<id>
    period: Mapped[str] = mapped_column(String(8))  # day | month
    period_start: Mapped[str] = mapped_column(String(10))
    level: Mapped[str] = mapped_column(String(8))  # alert | exceeded
    spent: Mapped[float] = mapped_column(Float)
    limit: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A token for an integration; only its hash is stored. Either bound to a knowledge base
    for the OpenAI-compatible endpoint (``level`` None), or bound to a level (admin, manager,
    agent) for the API under /api (``collection`` empty)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    collection: Mapped[str] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class ModelVersion(Base):
    """A version of the local model: the base GGUF, optionally with a LoRA adapter (GGUF).

    Versions are never deleted; the one serving is the last promotion's (``ModelPromotion``).
    """

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base: Mapped[str] = mapped_column(Text)  # base GGUF file
    adapter: Mapped[str | None] = mapped_column(Text)  # LoRA adapter GGUF file
    refusal_threshold: Mapped[float | None] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_sha256: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gate: Mapped[dict[str, Any] | None] = mapped_column()  # last comparison with the serving one
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelPromotion(Base):
    """Which version serves from when: promotions and rollbacks, in order, never rewritten."""

    __tablename__ = "model_promotions"
    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the plain base model (no adapter), as before the first promotion.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback | default
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerMode(Base):
    """The answer mode the gate chose for a knowledge base (``server.services.answer_modes``):
    model, extraction, model+extraction or model-checked, and why. Rows are only added, so
    what answered a company's customers when is never lost; the latest of a collection is its
    mode."""

    __tablename__ = "answer_modes"
    __table_args__ = (Index("ix_answer_modes_collection", "collection", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    collection: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(64))  # the model version measured
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)  # each mode's verdict and figures
    at: Mapped[datetime] = mapped_column(default=utcnow)
