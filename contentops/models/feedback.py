"""Feedback events (reads, likes, comments, shares, clicks) that feed the post's totals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow
from .types import UTCDateTime

FEEDBACK_KINDS: tuple[str, ...] = ("read", "like", "comment", "share", "click")


class FeedbackEvent(db.Model):
    __tablename__ = "feedback_events"
    __table_args__ = (Index("ix_feedback_events_post_occurred", "post_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Idempotency key (invariant 5): the same event id is counted once.
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    count: Mapped[int] = mapped_column(Integer, default=1)
    text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
