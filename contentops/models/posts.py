"""Posts (piece × channel × time) and their publish attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from .content import ContentPiece
from .taxonomy import Channel
from .types import UTCDateTime

# Publishing states (DESIGN.md §3).
POST_STATES: tuple[str, ...] = (
    "unscheduled", "scheduled", "publishing", "published", "retrying", "failed",
    "unknown", "awaiting_staff", "missed", "cancelled",
)
METRICS: tuple[str, ...] = ("reads", "likes", "comments", "shares", "clicks")


class Post(db.Model):
    __tablename__ = "posts"
    __table_args__ = (
        # Dispatcher: due scheduled/retrying posts.
        Index("ix_posts_status_scheduled_at", "status", "scheduled_at"),
        Index("ix_posts_status_next_attempt_at", "status", "next_attempt_at"),
        # Calendar and post list by time, optionally per channel.
        Index("ix_posts_scheduled_at", "scheduled_at", "id"),
        Index("ix_posts_channel_scheduled_at", "channel_id", "scheduled_at"),
        Index("ix_posts_channel_external_id", "channel_id", "external_id"),
        # Post list sorted by each metric; the id makes the order total so pages are stable
        # and PostgreSQL can walk the index for "ORDER BY reads DESC, id DESC LIMIT n".
        Index("ix_posts_reads", "reads", "id"),
        Index("ix_posts_likes", "likes", "id"),
        Index("ix_posts_comments", "comments", "id"),
        Index("ix_posts_shares", "shares", "id"),
        Index("ix_posts_clicks", "clicks", "id"),
        Index("ix_posts_published_at", "published_at", "id"),
        # Handoff tracking: posts the service or staff finish later, due for a look.
        Index("ix_posts_check_at", "check_at"),
        # Members of a multi-article send (公众号 头条 + 次条).
        Index("ix_posts_send_group", "send_group"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    piece_id: Mapped[int] = mapped_column(
        ForeignKey("content_pieces.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="RESTRICT"))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="unscheduled")
    # Optional per-channel variant of the piece's text.
    title_override: Mapped[str | None] = mapped_column(String(200))
    body_override: Mapped[str | None] = mapped_column(Text)
    # Claim / lease (DESIGN.md §4).
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The piece version this post went out (or will go out) with.
    published_version: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(255))
    external_url: Mapped[str | None] = mapped_column(String(1000))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Posts handed to the service or to staff (PublishResult.status publishing/awaiting_staff):
    # when the tracker looks next, and where the staff stand ({"confirmed", "total", …}).
    check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress: Mapped[dict | None] = mapped_column(JSON)
    # A multi-article send (公众号: up to 8 articles in one message): posts of one channel at
    # one time share this key and go out as one send; `group_position` orders them, 1 being
    # the 头条 (lead article). None = sent on its own. See services/publishing/groups.py.
    send_group: Mapped[str | None] = mapped_column(String(36))
    group_position: Mapped[int | None] = mapped_column(Integer)
    # Public page address for the web channel (/p/<slug>).
    slug: Mapped[str | None] = mapped_column(String(100), unique=True)
    # Denormalised metric totals so the post list never aggregates raw events.
    reads: Mapped[int] = mapped_column(Integer, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    # Handed to staff (manual, wecom_customer): how many of them sent it, and how many
    # customers or groups it reached, from `progress` (the post list's "sent by staff" column
    # and analytics read these; None = not a staff channel's post).
    staff_confirmed: Mapped[int | None] = mapped_column(Integer)
    staff_total: Mapped[int | None] = mapped_column(Integer)
    reached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    piece: Mapped[ContentPiece] = relationship(back_populates="posts")
    channel: Mapped[Channel] = relationship()

    @property
    def title(self) -> str:
        return self.title_override or self.piece.title

    @property
    def body(self) -> str:
        return self.body_override if self.body_override is not None else self.piece.body

    @property
    def engagement_rate(self) -> float | None:
        if not self.reads:
            return None
        return (self.likes + self.comments + self.shares) / self.reads


class PublishAttempt(db.Model):
    """One try at publishing a post: when, how long, how it ended (invariant 3)."""

    __tablename__ = "publish_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # published | transient | permanent | lost | reconciled
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(100))
