"""Audiences, styles, campaigns and channels: first-class, editable records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow
from .types import UTCDateTime


class Audience(db.Model):
    """A private-domain segment (新会员, 沉睡用户 …)."""

    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Style(db.Model):
    """A tone of voice (亲切, 专业 …) with guidelines for writers."""

    __tablename__ = "styles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    guidelines: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    goal: Mapped[str] = mapped_column(Text, default="")
    # Optional numeric target for reach, compared against reads in reports.
    goal_reads: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Channel(db.Model):
    """An adapter kind plus its configuration. Secrets live encrypted in `secrets`."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    color: Mapped[str] = mapped_column(String(7), default="#0d6efd")
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Non-secret configuration, shown and returned by the API.
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    # Fernet token of a JSON object with the secret fields; never rendered back.
    secrets: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Quotas and pacing (None = no limit).
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    per_minute_limit: Mapped[int | None] = mapped_column(Integer)
    grace_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_retries: Mapped[int] = mapped_column(Integer, default=5)
    conflict_window_minutes: Mapped[int] = mapped_column(Integer, default=120)
    requires_two_approvals: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
