"""Feedback: events (reads, likes, comments, shares, clicks), hourly buckets for charts,
the web channel's own likes and comments, and the per-channel key for signed inbound hooks."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from .types import UTCDateTime

FEEDBACK_KINDS: tuple[str, ...] = ("read", "like", "comment", "share", "click")
# Event kind -> the Post column (and bucket column) it adds to.
KIND_METRIC: dict[str, str] = {
    "read": "reads", "like": "likes", "comment": "comments", "share": "shares",
    "click": "clicks",
}
COMMENT_STATES: tuple[str, ...] = ("pending", "approved", "rejected")


class FeedbackEvent(db.Model):
    __tablename__ = "feedback_events"
    __table_args__ = (
        # Narrow on purpose: every batch inserts into it at random places (events arrive for
        # any post), and a (post_id, occurred_at) index doubled what each ingest batch writes.
        # It serves the post's events (CSV export) and ON DELETE CASCADE from posts.
        Index("ix_feedback_events_post_id", "post_id"),
        # Comments with their time, for the piece page: a few percent of the events.
        Index("ix_feedback_events_comments", "post_id", "occurred_at",
              sqlite_where=sql_text("kind = 'comment'"),
              postgresql_where=sql_text("kind = 'comment'")),
    )

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
    # Where it came from: api, hook, csv, web, pull.
    source: Mapped[str] = mapped_column(String(10), default="api")


class MetricBucket(db.Model):
    """Per post and UTC hour, what the post gained: the time series behind every chart.

    Upserted with `x = x + :n` alongside the post's totals, so charts never scan raw events.
    """

    __tablename__ = "metric_buckets"
    __table_args__ = (
        UniqueConstraint("post_id", "hour"),
        Index("ix_metric_buckets_hour", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    reads: Mapped[int] = mapped_column(Integer, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class WebLike(db.Model):
    """One like per visitor on a public page; deleting the row is the undo."""

    __tablename__ = "web_likes"
    __table_args__ = (UniqueConstraint("post_id", "visitor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    # Keyed hash of the visitor cookie (never an IP address).
    visitor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebComment(db.Model):
    """A comment left on a public page; shown only once a person approved it."""

    __tablename__ = "web_comments"
    __table_args__ = (
        Index("ix_web_comments_post_status", "post_id", "status"),
        Index("ix_web_comments_status_created", "status", "created_at"),
        Index("ix_web_comments_visitor_created", "visitor", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    visitor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    post = relationship("Post")
    moderated_by = relationship("User")


class FeedbackHookKey(db.Model):
    """The shared secret a service signs its pushed events with, one per channel.

    Stored encrypted (Fernet, like channel secrets): the server must recompute the HMAC.
    """

    __tablename__ = "feedback_hook_keys"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    key_encrypted: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelDailyStats(db.Model):
    """A channel's own figures for one day as the service reports them for the whole account
    (公众号 getbizsummary), beside the per-post numbers. Written by the daily statistics job;
    a later pull of the same day replaces the row (the service's figures only get fuller)."""

    __tablename__ = "channel_daily_stats"
    __table_args__ = (UniqueConstraint("channel_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)  # in the service's calendar (Beijing for 公众号)
    reads: Mapped[int] = mapped_column(Integer, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    # The service's own named figures (e.g. zaikan_user, collection_user).
    figures: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
