"""Recovery: leases that ran out (reaper), posts in doubt (reconcile: same-key re-send,
lookup, or a person), and staff tasks past their deadline. Never a blind re-send
(invariant 2).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ...channels.base import PermanentError, PublishResult, TransientError
from ...errors import N_
from ...models import Post, PublishAttempt
from ...models.scheduler import SchedulerNode
from ...reasons import encode_reason, instant_param
from .. import audit
from . import notices, staff
from .claim import outgoing_for, send_key
from .types import HEARTBEAT_STALE, AdapterFactory

LATE_RESEND_REASON = N_("Sending was interrupted at %(time)s and a re-send now would be more "
                        "than %(minutes)s minutes late; check the channel, then decide "
                        "whether to send it.")


def _stale_nodes(now: datetime, node: str, stale_after: timedelta):
    """Other scheduler nodes that stopped beating (or stopped cleanly). A node with no row
    (a dispatcher run without the runner) is never judged: its leases decide. Node clocks are
    assumed in step, as for the leases themselves (one node writes them, another compares)."""
    return select(SchedulerNode.node_id).where(
        SchedulerNode.node_id != node[:100],
        or_(SchedulerNode.last_beat_at < now - stale_after,
            SchedulerNode.stopped_at.is_not(None)))


def reap_expired(session: Session, *, now: datetime, node: str,
                 stale_after: timedelta = HEARTBEAT_STALE) -> list[int]:
    """Posts left mid-publish become `unknown` (never re-sent blindly): their lease ran out,
    or the node sending them stopped beating — a crash then costs about `stale_after`, not
    a whole lease. Both take the same path (reconcile next). A node that was merely slow
    loses nothing: its completion is fenced out, and a success it reports later is taken as
    the proof reconcile waits for."""
    gone = _stale_nodes(now, node, stale_after)
    orphaned = or_(Post.lease_expires_at < now, Post.claimed_by.in_(gone))
    rows = session.execute(select(
        Post.id, Post.claim_token, Post.claimed_by, Post.updated_at,
        Post.lease_expires_at).where(Post.status == "publishing",
                                     Post.claim_token.is_not(None), orphaned)).all()
    reaped = []
    reason = encode_reason(N_("The scheduler stopped while sending; checking whether the post "
                              "went out."))
    for post_id, token, claimed_by, claimed_at, lease_until in rows:
        # The condition again, in the update itself: a node that beat again in between keeps
        # its posts.
        stmt = (update(Post).where(Post.id == post_id, Post.status == "publishing",
                                   Post.claim_token == token, orphaned)
                .values(status="unknown", claim_token=None, lease_expires_at=None,
                        next_attempt_at=now, last_error=reason,
                        attempt_count=Post.attempt_count + 1, updated_at=now)
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount == 1:
            # The claim wrote updated_at and nothing else touches a claimed post, so it is
            # when this attempt started: reconcile measures lateness from it.
            started = min(claimed_at, now) if claimed_at is not None else now
            if lease_until is not None and lease_until < now:
                error = encode_reason(N_("Lease of %(node)s expired mid-publish."),
                                      {"node": claimed_by or "?"})
            else:
                error = encode_reason(N_("The scheduler %(node)s stopped mid-publish (no "
                                         "heartbeat for over %(seconds)s seconds)."),
                                      {"node": claimed_by or "?",
                                       "seconds": int(stale_after.total_seconds())})
            session.add(PublishAttempt(
                post_id=post_id, started_at=started, outcome="lost", error=error,
                duration_ms=int((now - started).total_seconds() * 1000), node=node[:100]))
            reaped.append(post_id)
    session.commit()
    return reaped


def _attempt_started(session: Session, post_id: int) -> datetime | None:
    """When the attempt that left the post in doubt started (its latest attempt row: the
    reaper's `lost` one, or the in-doubt send's own)."""
    return session.scalar(select(PublishAttempt.started_at).where(
        PublishAttempt.post_id == post_id).order_by(PublishAttempt.id.desc()).limit(1))


def reconcile_unknown(session: Session, *, now: datetime, node: str, adapter_for: AdapterFactory,
                      base_url: str = "", limit: int = 100) -> dict[str, int]:
    """Settle `unknown` posts: idempotent channels re-send with the same key (within the
    channel's grace window of the interrupted attempt; beyond it the post is `missed`);
    channels that can look a post up prove it; otherwise the post waits for a person
    (invariant 2). A lookup that proves publication always wins."""
    counts = {"resent": 0, "proved": 0, "not_found": 0, "person": 0, "later": 0,
              "missed": 0}
    ids = list(session.scalars(select(Post.id).where(
        Post.status == "unknown", Post.next_attempt_at <= now).limit(limit)))
    for post_id in ids:
        token = str(uuid.uuid4())
        # Claim the reconciliation itself so two nodes never settle one post twice.
        took = session.execute(
            update(Post).where(Post.id == post_id, Post.status == "unknown",
                               Post.next_attempt_at <= now)
            .values(next_attempt_at=None, claim_token=token, claimed_by=node[:100])
            .execution_options(synchronize_session=False)).rowcount
        session.commit()
        if took != 1:
            continue
        post = session.get(Post, post_id)
        session.refresh(post)
        adapter = adapter_for(post.channel)
        fence = and_(Post.id == post_id, Post.claim_token == token, Post.status == "unknown")
        caps = adapter.capabilities
        started = _attempt_started(session, post_id)
        grace = timedelta(minutes=post.channel.grace_minutes or 0)
        # A same-key re-send is a late send like any other: beyond the channel's grace window
        # a person decides (`missed`), unless a lookup proves the post went out.
        too_late = caps.idempotent and started is not None and now - started > grace
        late_reason = encode_reason(LATE_RESEND_REASON, {
            "time": instant_param(started), "minutes": post.channel.grace_minutes})
        if caps.idempotent and not too_late:
            # The receiver dedupes on the idempotency key: re-sending is safe and settles it.
            resent = encode_reason(N_("Re-sent with the same idempotency key after an "
                                      "interrupted attempt."))
            session.execute(update(Post).where(fence).values(
                status="retrying", next_attempt_at=now, claim_token=None, claimed_by=None,
                last_error=resent, updated_at=now)
                .execution_options(synchronize_session=False))
            if post.send_group:
                # The other articles of the message were in the same interrupted send: they
                # go again with it (same key, the lead's), or it would be held waiting.
                session.execute(update(Post).where(
                    Post.send_group == post.send_group, Post.status == "unknown",
                    Post.claim_token.is_(None)).values(
                    status="retrying", next_attempt_at=now, last_error=resent,
                    updated_at=now).execution_options(synchronize_session=False))
            audit.record(session, "post.reconciled", "post", post_id, actor_label=node,
                         data={"how": "resend_same_key"}, now=now)
            counts["resent"] += 1
            session.commit()
            continue
        found: PublishResult | None = None
        error: str | None = None
        if caps.can_find_existing:
            key = send_key(post)
            outgoing = outgoing_for(post, base_url, session)
            session.commit()  # no transaction held while asking the service
            t0 = time.perf_counter()
            try:
                found = adapter.find_existing(outgoing, key)
            except (TransientError, PermanentError) as exc:
                error = encode_reason(exc.message, exc.params, exc.detail)
            except Exception as exc:  # noqa: BLE001
                error = encode_reason(N_("Unexpected error while checking."),
                                      detail=type(exc).__name__)
            duration = int((time.perf_counter() - t0) * 1000)
            if found is not None:
                values: dict[str, Any] = {
                    "status": "published", "published_at": now, "external_id":
                    found.external_id, "external_url": found.url,
                    "published_version": post.piece.version, "last_error": None}
                if adapter.capabilities.sets_slug and found.external_id:
                    values["slug"] = found.external_id
                if session.execute(update(Post).where(fence).values(
                        **values, claim_token=None, claimed_by=None, updated_at=now)
                        .execution_options(synchronize_session=False)).rowcount == 1:
                    session.add(PublishAttempt(post_id=post_id, started_at=now,
                                               duration_ms=duration, outcome="reconciled",
                                               node=node[:100]))
                    counts["proved"] += 1
                session.commit()
                continue
            if error is not None:
                session.execute(update(Post).where(fence).values(
                    next_attempt_at=now + timedelta(minutes=1), claim_token=None,
                    claimed_by=None).execution_options(synchronize_session=False))
                counts["later"] += 1
                session.commit()
                continue
            counts["not_found"] += 1
        if too_late:
            if session.execute(update(Post).where(fence).values(
                    status="missed", claim_token=None, claimed_by=None, next_attempt_at=None,
                    last_error=late_reason, updated_at=now)
                    .execution_options(synchronize_session=False)).rowcount == 1:
                audit.record(session, "post.missed", "post", post_id, actor_label=node,
                             data={"reason": "interrupted_beyond_grace"}, now=now)
                notices.notify_problem(session, [post_id], "missed")
                counts["missed"] += 1
            session.commit()
            continue
        # Nobody can prove the outcome: a person decides (mark published / retry / cancel).
        session.execute(update(Post).where(fence).values(
            claim_token=None, claimed_by=None, updated_at=now,
            last_error=encode_reason(N_("It is not known whether this post went out. Check "
                                        "the channel, then mark it as published, retry or "
                                        "cancel it.")))
            .execution_options(synchronize_session=False))
        notices.notify_problem(session, [post_id], "unknown")
        counts["person"] += 1
        session.commit()
    return counts


def expire_staff_tasks(session: Session, *, now: datetime,
                       signing_key: bytes | None = None) -> list[int]:
    """Manual posts whose deadline passed: published when at least one assignee confirmed
    (the others are named to the editor and told), else `missed` — the rule the WeCom staff
    channel's final verdict follows too. (Tracked ones — with a `check_at` — get that verdict
    in handoff.track_due instead.)"""
    rows = session.execute(select(Post.id, Post.progress, Post.staff_confirmed).where(
        Post.status == "awaiting_staff", Post.next_attempt_at <= now,
        Post.check_at.is_(None))).all()
    missed, published = [], []
    for post_id, progress, confirmed in rows:
        progress = progress if isinstance(progress, dict) else {}
        someone = any(isinstance(s, dict) and s.get("status") == "sent"
                      for s in progress.get("staff") or [])
        values: dict[str, Any] = {"next_attempt_at": None, "updated_at": now}
        if someone:
            values.update(status="published", published_at=now, last_error=None)
        else:
            values.update(status="missed", last_error=staff.missing_reason(progress))
        # A confirmation that lands after the read changes staff_confirmed: this verdict is
        # then not written (the next pass judges the new progress).
        same = (Post.staff_confirmed.is_(None) if confirmed is None
                else Post.staff_confirmed == confirmed)
        if session.execute(update(Post).where(
                Post.id == post_id, Post.status == "awaiting_staff",
                Post.next_attempt_at <= now, Post.check_at.is_(None), same)
                .values(**values).execution_options(synchronize_session=False)).rowcount == 1:
            (published if someone else missed).append(post_id)
    if missed:
        notices.notify_problem(session, missed, "missed")
    for post_id in missed + published:
        staff.notify_deadline(session, post_id, signing_key=signing_key)
    session.commit()
    return missed + published
