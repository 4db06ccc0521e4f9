"""Handoff: posts the service or staff finish after the send call returned.

A 公众号 freepublish is accepted at once and published minutes later; a 企业微信 customer
broadcast is created by the company and sent only when each staff member confirms on the
phone. `publish()` then answers `publishing` (service still working) or `awaiting_staff`
(people must act) with an external id; the post's claim is released (the reaper leaves it
alone) and `track_due` asks the adapter where it stands every `check_after_s`, until it is
published, fails, or — for staff — its deadline passes (the adapter's `final` verdict).

Each look is taken by one node with a conditional update on `check_at` (the same rule as the
claim: rowcount == 1 wins), and every change of state writes an attempt row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from ...channels.base import PermanentError, PublishResult, TransientError
from ...errors import N_
from ...models import Post, PublishAttempt
from ...reasons import encode_reason
from . import notices, staff
from .claim import outgoing_for
from .types import AdapterFactory

log = logging.getLogger(__name__)

HANDOFF_STATES: tuple[str, ...] = ("publishing", "awaiting_staff")
DEFAULT_CHECK_S = 30.0
# How long one node holds a look (a track() call) before another may take it over.
LOOK_LEASE_S = 120.0
# A service that cannot answer right now is asked again after this long.
RETRY_CHECK_S = 60.0
DEFAULT_DEADLINE_HOURS = 24.0


def deadline_for(result: PublishResult, config: dict[str, Any], now: datetime) -> datetime:
    """When staff must have acted: the adapter's own deadline, else the channel's hours."""
    if result.deadline_s is not None:
        return now + timedelta(seconds=result.deadline_s)
    hours = float(config.get("deadline_hours") or DEFAULT_DEADLINE_HOURS)
    return now + timedelta(hours=hours)


def next_check(result: PublishResult, now: datetime, deadline: datetime | None
               ) -> datetime | None:
    """The next look, never later than the staff deadline (the final verdict is due then)."""
    if result.check_after_s is None and result.status == "awaiting_staff":
        return None  # not tracked: a person confirms in the app (manual channel)
    when = now + timedelta(seconds=result.check_after_s or DEFAULT_CHECK_S)
    return min(when, deadline) if deadline is not None else when


STAFF_COLUMNS: tuple[str, ...] = ("staff_confirmed", "staff_total", "reached")


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def staff_values(progress: Mapping[str, Any] | None) -> dict[str, Any]:
    """The post's "sent by staff" columns (staff_confirmed, staff_total, reached) from a staff
    progress ({"confirmed", "total", "staff": [{"id", "status", "reached"?}, …]}), which the
    post list and analytics read instead of the JSON. {} for progress that is not about staff
    (a 公众号 publish job), so those posts keep None = "not handed to staff"."""
    if not isinstance(progress, Mapping) or not isinstance(progress.get("staff"), list):
        return {}
    staff = [s for s in progress["staff"] if isinstance(s, Mapping)]
    counted = [s for s in staff if s.get("status") != "invalid"]
    confirmed = progress.get("confirmed")
    total = progress.get("total")
    reached = progress.get("reached")
    return {
        "staff_confirmed": _count(confirmed) if confirmed is not None else sum(
            1 for s in counted if s.get("status") == "sent"),
        "staff_total": _count(total) if total is not None else len(counted),
        "reached": _count(reached) if reached is not None else sum(
            _count(s.get("reached")) for s in counted)}


def handoff_values(result: PublishResult, config: dict[str, Any], now: datetime
                   ) -> dict[str, Any]:
    """Columns of a post just handed off (the send call answered publishing/awaiting_staff)."""
    deadline = deadline_for(result, config, now) if result.status == "awaiting_staff" else None
    progress = dict(result.progress) if result.progress is not None else None
    if deadline is not None and progress is not None and "staff" in progress:
        # Kept with the progress: the card shows it (and who missed it) after the post ends.
        progress["deadline"] = deadline.isoformat()
    return {"status": result.status, "next_attempt_at": deadline,
            "external_id": result.external_id, "external_url": result.url,
            "check_at": next_check(result, now, deadline),
            "progress": progress, **staff_values(progress)}


@dataclass
class TrackStats:
    looked: int = 0
    published: int = 0
    failed: int = 0
    missed: int = 0
    waiting: int = 0
    later: int = 0


def _due(now: datetime):
    return and_(Post.status.in_(HANDOFF_STATES), Post.claim_token.is_(None),
                Post.check_at <= now)


def track_due(session: Session, *, now: datetime, node: str, adapter_for: AdapterFactory,
              base_url: str = "", limit: int = 50) -> TrackStats:
    """Ask the adapters about handed-off posts whose next look is due."""
    stats = TrackStats()
    rows = session.execute(select(Post.id, Post.check_at).where(_due(now))
                           .order_by(Post.check_at, Post.id).limit(limit)).all()
    session.commit()
    for post_id, check_at in rows:
        held_until = now + timedelta(seconds=LOOK_LEASE_S)
        took = session.execute(
            update(Post).where(Post.id == post_id, Post.check_at == check_at, _due(now))
            .values(check_at=held_until)
            .execution_options(synchronize_session=False)).rowcount
        session.commit()
        if took != 1:
            continue  # another node is looking
        stats.looked += 1
        _look(session, post_id, held_until, now=now, node=node, adapter_for=adapter_for,
              base_url=base_url, stats=stats)
    return stats


def _look(session: Session, post_id: int, held_until: datetime, *, now: datetime, node: str,
          adapter_for: AdapterFactory, base_url: str, stats: TrackStats) -> None:
    post = session.get(Post, post_id)
    session.refresh(post)
    status = post.status
    final = status == "awaiting_staff" and post.next_attempt_at is not None and (
        post.next_attempt_at <= now)
    adapter = adapter_for(post.channel)
    outgoing = outgoing_for(post, base_url, session)
    external_id, progress = post.external_id or "", post.progress
    session.commit()  # no transaction held while asking the service
    # Only this look may write: a person's action (cancel, mark published) in between wins.
    fence = and_(Post.id == post_id, Post.status == status, Post.check_at == held_until)
    t0 = time.perf_counter()
    try:
        result = adapter.track(outgoing, external_id, progress, final=final)
    except TransientError as exc:
        session.execute(update(Post).where(fence).values(
            check_at=now + timedelta(seconds=exc.retry_after or RETRY_CHECK_S),
            last_error=encode_reason(exc.message, exc.params, exc.detail), updated_at=now)
            .execution_options(synchronize_session=False))
        session.commit()
        stats.later += 1
        return
    except PermanentError as exc:
        _settle(session, fence, post_id, now, node, t0, outcome="permanent",
                state="missed" if final else "failed",
                reason=encode_reason(exc.message, exc.params, exc.detail), stats=stats)
        return
    except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not stop tracking
        log.exception("adapter %s crashed tracking post %s", adapter.kind, post_id)
        session.execute(update(Post).where(fence).values(
            check_at=now + timedelta(seconds=RETRY_CHECK_S), updated_at=now,
            last_error=encode_reason(N_("Unexpected error while checking."),
                                     detail=type(exc).__name__))
            .execution_options(synchronize_session=False))
        session.commit()
        stats.later += 1
        return
    new_progress = dict(result.progress) if result.progress is not None else progress
    if result.status == "published":
        values: dict[str, Any] = {
            "status": "published", "published_at": now, "check_at": None,
            "next_attempt_at": None, "last_error": None, "progress": new_progress,
            "external_url": result.url or post.external_url,
            "external_id": result.external_id or post.external_id,
            **staff_values(new_progress)}
        if session.execute(update(Post).where(fence).values(**values, updated_at=now)
                           .execution_options(synchronize_session=False)).rowcount == 1:
            _attempt(session, post_id, now, node, t0, "published", None)
            stats.published += 1
            if final:
                # Published with some senders missing: the editor hears who.
                staff.notify_deadline(session, post_id,
                                      signing_key=getattr(adapter, "signing_key", None))
        session.commit()
        return
    if final:
        # The adapter kept waiting past the deadline: the deadline still ends it.
        _settle(session, fence, post_id, now, node, t0, outcome="permanent", state="missed",
                reason=staff.missing_reason(new_progress), stats=stats, progress=new_progress)
        return
    deadline = post.next_attempt_at if result.status == "awaiting_staff" else None
    session.execute(update(Post).where(fence).values(
        status=result.status, progress=new_progress, last_error=None, updated_at=now,
        next_attempt_at=deadline if result.status == "awaiting_staff" else None,
        check_at=next_check(result, now, deadline) or deadline,
        external_id=result.external_id or post.external_id, **staff_values(new_progress))
        .execution_options(synchronize_session=False))
    if result.status != status:
        _attempt(session, post_id, now, node, t0, "published", None)
    session.commit()
    stats.waiting += 1


def _attempt(session: Session, post_id: int, now: datetime, node: str, t0: float,
             outcome: str, error: str | None) -> None:
    session.add(PublishAttempt(post_id=post_id, started_at=now, outcome=outcome, error=error,
                               duration_ms=int((time.perf_counter() - t0) * 1000),
                               node=node[:100]))


def _settle(session: Session, fence, post_id: int, now: datetime, node: str, t0: float, *,
            outcome: str, state: str, reason: str, stats: TrackStats,
            progress: Any = None) -> None:
    values: dict[str, Any] = {"status": state, "last_error": reason, "check_at": None,
                              "next_attempt_at": None, "updated_at": now}
    if progress is not None:
        values["progress"] = progress
        values.update(staff_values(progress))
    if session.execute(update(Post).where(fence).values(**values)
                       .execution_options(synchronize_session=False)).rowcount == 1:
        _attempt(session, post_id, now, node, t0, outcome, reason)
        notices.notify_problem(session, [post_id], "failed" if state == "failed" else "missed")
        setattr(stats, state, getattr(stats, state) + 1)
    session.commit()

