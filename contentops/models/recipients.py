"""E-mail recipients, kept per channel or per audience, with their unsubscribe state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow
from .types import UTCDateTime


class Recipient(db.Model):
    """One address on one list. A list belongs to a channel or to an audience (not both)."""

    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("channel_id", "email"),
        UniqueConstraint("audience_id", "email"),
        CheckConstraint("(channel_id IS NULL) <> (audience_id IS NULL)",
                        name="one_list"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased: one person, one row per list, whatever case they typed.
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    audience_id: Mapped[int | None] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), index=True)
    # Random, unguessable: addresses this person's unsubscribe page and tracking links.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # manual | csv | config (the channel's "extra recipients" setting)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
