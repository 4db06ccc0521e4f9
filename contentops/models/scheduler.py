"""Scheduler bookkeeping: node heartbeats, per-channel rate buckets, once-per-period job runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow
from .types import UTCDateTime


class SchedulerNode(db.Model):
    """One running scheduler process; `last_beat_at` is its heartbeat (health, banner)."""

    __tablename__ = "scheduler_nodes"

    node_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelBucket(db.Model):
    """Token bucket for a channel's per-minute limit, shared by every scheduler node.

    Lives in the database (not in process memory) so three schedulers on one PostgreSQL
    together stay under the limit; it is read and written inside the claim transaction.
    """

    __tablename__ = "channel_buckets"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(db.Model):
    """Periodic work that must run once per period across nodes: a unique (job, period) row,
    inserted with ON CONFLICT DO NOTHING; the node whose insert wins does the work."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
