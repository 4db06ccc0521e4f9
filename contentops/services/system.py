"""Scheduler heartbeats and the health figures shown by /api/v1/health and the banner."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import N_
from ..models import Post, PublishAttempt
from ..models.scheduler import JobRun, SchedulerNode
from ..timeutil import isoformat
from . import publishing

# A scheduler that has not beaten for this long counts as gone (banner, health), and other
# nodes reap the posts it was sending; one value for all three (publishing/types.py).
HEARTBEAT_STALE = publishing.HEARTBEAT_STALE

# Why /api/v1/health says `degraded`: a code for machines, a message (msgid + params) for
# people, translated by the reader.
SCHEDULER_DOWN = "scheduler_down"
SCHEDULER_DOWN_SINCE = N_("No scheduler is running (the last heartbeat was at %(time)s) and "
                          "%(due)s posts are due: they will not go out until one starts.")
SCHEDULER_NEVER_RAN = N_("No scheduler is running (none has ever checked in) and %(due)s "
                         "posts are due: they will not go out until one starts.")


def new_node_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def heartbeat(session: Session, node_id: str, *, now: datetime) -> None:
    """Record that `node_id` is alive (creates its row on the first beat). Commits."""
    updated = session.execute(
        update(SchedulerNode).where(SchedulerNode.node_id == node_id)
        .values(last_beat_at=now, stopped_at=None)
        .execution_options(synchronize_session=False)).rowcount
    if not updated:
        session.add(SchedulerNode(node_id=node_id, hostname=socket.gethostname()[:255],
                                  pid=os.getpid(), started_at=now, last_beat_at=now))
    session.commit()


def node_stopped(session: Session, node_id: str, *, now: datetime) -> None:
    session.execute(update(SchedulerNode).where(SchedulerNode.node_id == node_id)
                    .values(stopped_at=now).execution_options(synchronize_session=False))
    session.commit()


def last_heartbeat(session: Session) -> datetime | None:
    return session.scalar(select(func.max(SchedulerNode.last_beat_at))
                          .where(SchedulerNode.stopped_at.is_(None)))


def _fresh(beat: datetime | None, now: datetime) -> bool:
    return beat is not None and now - beat <= HEARTBEAT_STALE


def scheduler_alive(session: Session, *, now: datetime) -> bool:
    """Some scheduler beat within HEARTBEAT_STALE (the banner and health agree on this)."""
    return _fresh(last_heartbeat(session), now)


def live_nodes(session: Session, *, now: datetime) -> list[SchedulerNode]:
    """Nodes that beat within HEARTBEAT_STALE and did not stop; a killed node drops out
    once its heartbeat is stale."""
    return list(session.scalars(select(SchedulerNode).where(
        SchedulerNode.stopped_at.is_(None),
        SchedulerNode.last_beat_at >= now - HEARTBEAT_STALE).order_by(SchedulerNode.node_id)))


def due_count(session: Session, *, now: datetime) -> int:
    """Posts due now or overdue that only a scheduler moves (sends, or marks missed)."""
    return session.scalar(select(func.count(Post.id)).where(
        Post.status.in_(publishing.CLAIMABLE_STATES), publishing.due_clause(now))) or 0


def _problem(session: Session, beat: datetime | None, due: int, now: datetime
             ) -> dict[str, Any] | None:
    """None while a scheduler is alive or nothing is due; else {"code", "message",
    "params"} (the message a msgid for the reader's language)."""
    if _fresh(beat, now) or not due:
        return None
    # The last sign of life from any node, one that stopped cleanly included.
    seen = session.scalar(select(func.max(SchedulerNode.last_beat_at)))
    if seen is None:
        return {"code": SCHEDULER_DOWN, "message": SCHEDULER_NEVER_RAN,
                "params": {"due": due}}
    return {"code": SCHEDULER_DOWN, "message": SCHEDULER_DOWN_SINCE,
            "params": {"due": due, "time": isoformat(seen)}}


def health(session: Session, *, now: datetime) -> dict[str, Any]:
    """Scheduler liveness, queue depth, next due time, failures in the last 24 hours, and
    `problems`: what makes the service degraded (see _problem)."""
    beat = last_heartbeat(session)
    depth = due_count(session, now=now)
    counts = dict(session.execute(select(Post.status, func.count(Post.id)).where(
        Post.status.in_(("scheduled", "retrying", "publishing", "unknown", "awaiting_staff",
                         "failed", "missed"))).group_by(Post.status)).all())
    failures = session.scalar(select(func.count(PublishAttempt.id)).where(
        PublishAttempt.outcome.in_(("transient", "permanent", "lost")),
        PublishAttempt.started_at >= now - timedelta(hours=24))) or 0
    return {
        "scheduler": {
            "alive": _fresh(beat, now),
            "last_heartbeat": isoformat(beat),
            "nodes": len(live_nodes(session, now=now)),
            "stale_after_seconds": int(HEARTBEAT_STALE.total_seconds()),
        },
        "queue": {
            "due": depth,
            "scheduled": counts.get("scheduled", 0),
            "retrying": counts.get("retrying", 0),
            "in_flight": counts.get("publishing", 0),
            "unknown": counts.get("unknown", 0),
            "awaiting_staff": counts.get("awaiting_staff", 0),
            "next_due": isoformat(publishing.next_due_at(session)),
        },
        "failures_24h": failures,
        "failed": counts.get("failed", 0),
        "missed": counts.get("missed", 0),
        "problems": [p for p in (_problem(session, beat, depth, now),) if p is not None],
    }


def claim_period(session: Session, job: str, period: str, node_id: str, *,
                 now: datetime) -> bool:
    """True for exactly one node per (job, period): a unique row insert decides."""
    try:
        with session.begin_nested():
            session.add(JobRun(job=job, period=period, node_id=node_id, started_at=now))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def release_period(session: Session, job: str, period: str) -> None:
    """Give a claimed (job, period) back so a later run, on any node, claims it again (the
    work failed or the service's data was not ready). Commits."""
    session.execute(delete(JobRun).where(JobRun.job == job, JobRun.period == period))
    session.commit()
