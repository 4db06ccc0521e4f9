"""The publishing engine (DESIGN.md §3–§4): claim due posts, publish outside the claim
transaction, fence completion with the claim token, retry, reap, reconcile.

Everything here takes a session (or a session factory), `now` and adapters as arguments so
tests inject a clock and fakes. No Flask.

State machine (what this module moves):
  scheduled/retrying --claim--> publishing --fenced completion--> published | awaiting_staff
                                                              \\-> retrying (transient) | failed
  publishing --lease expired (reaper)--> unknown --reconcile--> published | retrying | (a person)
  scheduled/retrying --due while unapproved / beyond grace / over quota--> missed
  awaiting_staff --deadline--> missed
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from ..channels.base import (
    ChannelAdapter,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
)
from ..errors import N_, DomainError, ValidationError
from ..models import AuditEvent, Channel, ContentPiece, Post, PublishAttempt, User
from ..models.scheduler import ChannelBucket
from ..timeutil import as_utc, isoformat
from . import audit, notifications

log = logging.getLogger(__name__)

CLAIMABLE_STATES: tuple[str, ...] = ("scheduled", "retrying")
# Defaults; the runner passes values from the app config.
DEFAULT_LEASE_SECONDS = 120
DEFAULT_WORKERS = 16

_POSTS = Post.__table__
_ATTEMPTS = PublishAttempt.__table__

AdapterFactory = Callable[[Channel], ChannelAdapter]
SessionFactory = Callable[[], Session]


# --- Reasons: stored as msgid + params so every viewer reads them in their language --------

def encode_reason(message: str, params: Mapping[str, Any] | None = None,
                  detail: str | None = None) -> str:
    """A readable reason as stored in posts.last_error / publish_attempts.error."""
    data: dict[str, Any] = {"msg": message}
    if params:
        data["params"] = {k: v for k, v in params.items()}
    if detail:
        data["detail"] = detail[:500]
    return json.dumps(data, ensure_ascii=False)


def decode_reason(text: str | None) -> tuple[str, dict[str, Any], str | None]:
    """(msgid, params, detail); plain text written by anything else comes back as the msgid."""
    if not text:
        return "", {}, None
    if text.startswith("{"):
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("msg"), str):
                return data["msg"], dict(data.get("params") or {}), data.get("detail")
        except ValueError:
            pass
    return text, {}, None


def reason_text(text: str | None, translate: Callable[[str, dict], str] | None = None) -> str:
    """Render a stored reason, translated when a translate(msgid, params) is given."""
    msg, params, detail = decode_reason(text)
    if not msg:
        return ""
    if translate is not None:
        out = translate(msg, params)
    else:
        try:
            out = msg % params if params else msg
        except (KeyError, ValueError, TypeError):
            out = msg
    return f"{out} ({detail})" if detail else out


# --- Which posts may go out --------------------------------------------------------------

def approved_as_is_clause():
    """Posts whose piece is approved at exactly its current version (invariant 1).

    A correlated EXISTS: one primary-key probe per post, so the per-row conditional claim
    on SQLite stays O(1) however many pieces there are."""
    cp = ContentPiece.__table__
    return exists().where(cp.c.id == Post.piece_id, cp.c.status == "approved",
                          cp.c.approved_version == cp.c.version)


def approval_clause():
    """The approval half of "claimable". The review service owns what "approved" means
    (versions, two-approver channels, holds); when it exposes `claimable_clause()` that is
    used, so the rule lives in one place."""
    from . import review

    hook = getattr(review, "claimable_clause", None)
    return hook() if hook is not None else approved_as_is_clause()


def claimable_clause():
    """Only scheduled/retrying posts of an approved piece at the approved version."""
    return and_(Post.status.in_(CLAIMABLE_STATES), approval_clause())


def due_clause(now: datetime):
    return or_(and_(Post.status == "scheduled", Post.scheduled_at <= now),
               and_(Post.status == "retrying", Post.next_attempt_at <= now))


def next_due_at(session: Session) -> datetime | None:
    """The earliest time anything becomes due. Two index-only MIN() lookups: cheap enough
    to poll every half second from every scheduler, so a post scheduled or moved by any
    process (web, API, another node) re-arms the dispatch timer without any signalling."""
    a = session.scalar(select(func.min(Post.scheduled_at)).where(Post.status == "scheduled"))
    b = session.scalar(select(func.min(Post.next_attempt_at)).where(Post.status == "retrying"))
    times = [t for t in (a, b) if t is not None]
    return min(times) if times else None


def idempotency_key(post: Post) -> str:
    """Stable for the post across attempts, restarts and nodes; distinct across databases
    reusing ids because the creation instant is part of it."""
    created = post.created_at
    stamp = int(created.timestamp() * 1000) if created else 0
    return f"contentops-post-{post.id}-{stamp}"


# --- Retry policy ------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    factor: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None
              ) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so a crowd of
        posts failing together does not come back together. A service's Retry-After wins
        when it asks for longer."""
        raw = min(self.cap_seconds, self.base_seconds * self.factor ** max(0, attempt - 1))
        delay = raw / 2 + rng.uniform(0, raw / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_seconds))
        return delay


# --- Claim ---------------------------------------------------------------------------------

@dataclass
class Job:
    """A claimed post, detached from the ORM so a worker thread can publish it."""

    post_id: int
    claim_token: str
    channel_id: int
    version: int
    attempt_count: int
    max_retries: int
    key: str
    outgoing: OutgoingPost
    adapter: ChannelAdapter


@dataclass
class Decision:
    claim: list[int] = field(default_factory=list)
    # post id -> reason (encoded) for posts that become `missed` instead.
    missed: dict[int, str] = field(default_factory=dict)
    # Earliest time a rate-limited channel has a token again.
    wake_at: datetime | None = None


def _claim_rows(session: Session, now: datetime, limit: int, node: str, lease_until: datetime,
                decide: Callable[[list[Post]], Decision]) -> tuple[dict[int, str], Decision]:
    """Claim up to `limit` due posts; returns ({post_id: claim_token}, decision).

    The only place that knows the dialect:
    - PostgreSQL: lock a batch with SELECT … FOR UPDATE SKIP LOCKED (other nodes skip these
      rows instead of waiting), then UPDATE them in the same short transaction.
    - SQLite: read candidates, then claim each with a conditional UPDATE that still demands a
      claimable, due state; a claim counts only when rowcount == 1, so a concurrent claimer
      or an edit in between simply wins.
    The caller commits.
    """
    query = (select(Post).where(claimable_clause(), due_clause(now))
             # Oldest first; retries were scheduled earlier than anything newly due. A plain
             # column keeps the (status, scheduled_at) index usable for the ordered scan.
             .order_by(Post.scheduled_at, Post.id)
             .limit(limit))
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=Post)
    candidates = list(session.scalars(query))
    decision = decide(candidates)
    claimed: dict[int, str] = {}
    if postgres and decision.claim:
        # The rows are locked by this transaction: one UPDATE claims the whole batch. Each
        # post still gets its own token (batch prefix + id), so fencing stays per post.
        prefix = uuid.uuid4().hex[:16]
        rows = session.execute(
            update(_POSTS).where(_POSTS.c.id.in_(decision.claim))
            .values(status="publishing",
                    claim_token=func.concat(prefix, "-", _POSTS.c.id),
                    claimed_by=node[:100], lease_expires_at=lease_until, updated_at=now)
            .returning(_POSTS.c.id, _POSTS.c.claim_token)).all()
        claimed = {post_id: token for post_id, token in rows}
    elif decision.claim:
        # One Core statement compiled once, run per row: rowcount == 1 means this node won.
        stmt = (update(_POSTS).where(_POSTS.c.id == bindparam("p_id"),
                                     claimable_clause(), due_clause(now))
                .values(status="publishing", claim_token=bindparam("p_token"),
                        claimed_by=node[:100], lease_expires_at=lease_until, updated_at=now))
        conn = session.connection()
        for post_id in decision.claim:
            token = str(uuid.uuid4())
            if conn.execute(stmt, {"p_id": post_id, "p_token": token}).rowcount == 1:
                claimed[post_id] = token
    for post_id, reason in decision.missed.items():
        stmt = (update(Post).where(Post.id == post_id, Post.status.in_(CLAIMABLE_STATES))
                .values(status="missed", last_error=reason, next_attempt_at=None,
                        updated_at=now)
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount != 1:
            decision.missed.pop(post_id, None)
    return claimed, decision


def _day_start(now: datetime, tz_name: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz_name))
    return as_utc(local.replace(hour=0, minute=0, second=0, microsecond=0))


def _take_tokens(session: Session, channel: Channel, limit: int, wanted: int, now: datetime
                 ) -> tuple[int, datetime | None]:
    """Token bucket for a per-minute limit: capacity `limit`, refilled at limit/60 per second.
    Returns (tokens granted, when the next token arrives if short)."""
    bucket = session.scalar(select(ChannelBucket).where(ChannelBucket.channel_id == channel.id)
                            .with_for_update())
    if bucket is None:
        try:
            with session.begin_nested():
                session.add(ChannelBucket(channel_id=channel.id, tokens=float(limit),
                                          updated_at=now))
        except IntegrityError:
            pass  # another node created it first
        bucket = session.scalar(select(ChannelBucket)
                                .where(ChannelBucket.channel_id == channel.id)
                                .with_for_update())
    rate = limit / 60.0
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
    tokens = min(float(limit), bucket.tokens + elapsed * rate)
    granted = min(wanted, int(tokens))
    tokens -= granted
    bucket.tokens = tokens
    bucket.updated_at = now
    wake = None
    if granted < wanted:
        wake = now + timedelta(seconds=(1.0 - tokens) / rate)
    return granted, wake


def _decide(session: Session, candidates: list[Post], now: datetime, team_tz: str,
            adapter_caps: Callable[[Channel], Any]) -> Decision:
    """Misfire grace, inactive channels, daily quotas and per-minute limits, per channel."""
    decision = Decision()
    by_channel: dict[int, list[Post]] = {}
    for post in candidates:
        by_channel.setdefault(post.channel_id, []).append(post)
    for channel_id, posts in by_channel.items():
        channel = session.get(Channel, channel_id)
        caps = adapter_caps(channel)
        ready: list[Post] = []
        for post in posts:
            overdue = (now - post.scheduled_at) if post.scheduled_at else timedelta(0)
            if not channel.active:
                decision.missed[post.id] = encode_reason(
                    N_("The channel %(channel)s is switched off."), {"channel": channel.name})
            elif (post.status == "scheduled"
                  and overdue > timedelta(minutes=channel.grace_minutes or 0)):
                decision.missed[post.id] = encode_reason(
                    N_("No scheduler was running at %(time)s and the post is more than "
                       "%(minutes)s minutes late; decide whether to send it."),
                    {"time": isoformat(post.scheduled_at), "minutes": channel.grace_minutes})
            else:
                ready.append(post)
        quota = min([q for q in (channel.daily_quota, caps.daily_quota) if q], default=None)
        if quota and ready:
            used = session.scalar(select(func.count(Post.id)).where(
                Post.channel_id == channel_id,
                or_(Post.status == "publishing",
                    Post.published_at >= _day_start(now, channel.timezone or team_tz)))) or 0
            room = max(0, quota - used)
            for post in ready[room:]:
                decision.missed[post.id] = encode_reason(
                    N_("The daily quota of %(quota)s posts on %(channel)s was used up."),
                    {"quota": quota, "channel": channel.name})
            ready = ready[:room]
        per_minute = min([q for q in (channel.per_minute_limit, caps.per_minute) if q],
                         default=None)
        if per_minute and ready:
            granted, wake = _take_tokens(session, channel, per_minute, len(ready), now)
            ready = ready[:granted]
            if wake is not None and (decision.wake_at is None or wake < decision.wake_at):
                decision.wake_at = wake
        decision.claim.extend(p.id for p in ready)
    return decision


def mark_unapproved_missed(session: Session, now: datetime) -> list[int]:
    """Due posts whose piece is not approved as is (or that are on hold) become `missed`,
    with the reason: never sent late without a person deciding."""
    ids = list(session.scalars(select(Post.id).where(
        Post.status.in_(CLAIMABLE_STATES), due_clause(now), ~approval_clause())))
    reason = encode_reason(N_("The time came while the content was not approved in its "
                              "current version; approve it, then retry or reschedule."))
    missed = []
    for post_id in ids:
        stmt = (update(Post).where(Post.id == post_id, Post.status.in_(CLAIMABLE_STATES),
                                   due_clause(now), ~approval_clause())
                .values(status="missed", last_error=reason, next_attempt_at=None,
                        updated_at=now)
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount == 1:
            missed.append(post_id)
    return missed


def outgoing_for(post: Post, base_url: str = "", session: Session | None = None
                 ) -> OutgoingPost:
    if session is not None:
        # The full picture, resolved right before sending: e-mail recipients (so an
        # unsubscribe is honoured at the next send) and the piece's web page for links.
        from .channels import outgoing_post

        return outgoing_post(session, post, base_url=base_url)
    piece = post.piece
    return OutgoingPost(
        post_id=post.id, piece_id=piece.id, version=piece.version, title=post.title,
        body_markdown=post.body, summary=piece.summary or "",
        audience=piece.audience.name if piece.audience else None,
        style=piece.style.name if piece.style else None,
        campaign=piece.campaign.name if piece.campaign else None,
        tags=tuple(t.name for t in piece.tags), scheduled_at=post.scheduled_at,
        channel_id=post.channel_id, channel_name=post.channel.name,
        public_url=(f"{base_url}/p/{post.slug}" if post.slug and base_url else None),
        base_url=base_url)


def claim_due(session: Session, *, now: datetime, node: str, limit: int,
              adapter_for: AdapterFactory, lease_seconds: float = DEFAULT_LEASE_SECONDS,
              team_tz: str = "Asia/Shanghai", base_url: str = "", triage: bool = True
              ) -> tuple[list[Job], Decision]:
    """Claim up to `limit` due posts in one short transaction (committed here). With
    `triage`, due posts of unapproved pieces are first marked `missed`."""
    adapters: dict[int, ChannelAdapter] = {}

    def adapter(channel: Channel) -> ChannelAdapter:
        if channel.id not in adapters:
            adapters[channel.id] = adapter_for(channel)
        return adapters[channel.id]

    missed_unapproved = mark_unapproved_missed(session, now) if triage else []
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed, decision = _claim_rows(
        session, now, limit, node, lease_until,
        lambda posts: _decide(session, posts, now, team_tz,
                              lambda ch: adapter(ch).capabilities))
    jobs: list[Job] = []
    if claimed:
        posts = session.scalars(
            select(Post).where(Post.id.in_(list(claimed)))
            .options(joinedload(Post.piece).selectinload(ContentPiece.tags),
                     joinedload(Post.piece).joinedload(ContentPiece.audience),
                     joinedload(Post.piece).joinedload(ContentPiece.style),
                     joinedload(Post.piece).joinedload(ContentPiece.campaign),
                     joinedload(Post.channel))
            .execution_options(populate_existing=True))
        for post in posts:
            jobs.append(Job(
                post_id=post.id, claim_token=claimed[post.id], channel_id=post.channel_id,
                version=post.piece.version, attempt_count=post.attempt_count or 0,
                max_retries=post.channel.max_retries, key=idempotency_key(post),
                outgoing=outgoing_for(post, base_url, session),
                adapter=adapter(post.channel)))
    missed_ids = list(decision.missed) + missed_unapproved
    if missed_ids:
        _notify_problem(session, missed_ids, "missed")
    session.commit()
    jobs.sort(key=lambda j: j.post_id)
    return jobs, decision


# --- Publish (outside any transaction) ---------------------------------------------------

@dataclass
class Outcome:
    job: Job
    kind: str  # published | transient | permanent
    started_at: datetime
    duration_ms: int
    result: PublishResult | None = None
    reason: str | None = None  # encoded
    retry_after: float | None = None


def run_publish(job: Job, clock: Callable[[], datetime]) -> Outcome:
    """Call the adapter. Never raises: every ending becomes an Outcome (and an attempt row)."""
    started = clock()
    t0 = time.perf_counter()
    try:
        result = job.adapter.publish(job.outgoing, job.key)
        kind, reason, retry_after = "published", None, None
    except TransientError as exc:
        result, kind, retry_after = None, "transient", exc.retry_after
        reason = encode_reason(exc.message, exc.params, exc.detail)
    except PermanentError as exc:
        result, kind, retry_after = None, "permanent", None
        reason = encode_reason(exc.message, exc.params, exc.detail)
    except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the run
        log.exception("adapter %s crashed publishing post %s", job.adapter.kind, job.post_id)
        result, kind, retry_after = None, "transient", None
        reason = encode_reason(N_("Unexpected error while sending; it will be retried."),
                               detail=type(exc).__name__)
    return Outcome(job, kind, started, int((time.perf_counter() - t0) * 1000), result,
                   reason, retry_after)


# --- Complete (fenced) -------------------------------------------------------------------

def _fenced_completion():
    """UPDATE … WHERE id = ? AND claim_token = ? AND status = 'publishing' (DESIGN.md §4).
    Columns a failure must not clear keep their value through COALESCE."""
    keep = ("published_at", "external_id", "external_url", "published_version", "slug")
    values: dict[str, Any] = {c: func.coalesce(bindparam(f"v_{c}"), _POSTS.c[c]) for c in keep}
    values.update({c: bindparam(f"v_{c}") for c in
                   ("status", "next_attempt_at", "last_error", "attempt_count", "updated_at")})
    values.update(claim_token=None, claimed_by=None, lease_expires_at=None)
    return (update(_POSTS).where(_POSTS.c.id == bindparam("f_id"),
                                 _POSTS.c.claim_token == bindparam("f_token"),
                                 _POSTS.c.status == "publishing").values(values))


_COMPLETION_KEYS = ("published_at", "external_id", "external_url", "published_version", "slug",
                    "status", "next_attempt_at", "last_error", "attempt_count", "updated_at")


def _completion_values(outcome: Outcome, now: datetime, policy: RetryPolicy,
                       rng: random.Random) -> dict[str, Any]:
    job = outcome.job
    attempts = job.attempt_count + 1
    values: dict[str, Any] = dict.fromkeys(_COMPLETION_KEYS)
    values.update(attempt_count=attempts, updated_at=now)
    if outcome.kind == "published":
        result = outcome.result or PublishResult()
        values["published_version"] = job.version
        if result.status == "awaiting_staff":
            hours = float(job.adapter.config.get("deadline_hours") or 24)
            values.update(status="awaiting_staff", next_attempt_at=now + timedelta(hours=hours))
        else:
            values.update(status="published", published_at=now,
                          external_id=result.external_id, external_url=result.url)
            if getattr(job.adapter, "sets_slug", False) and result.external_id:
                values["slug"] = result.external_id
    elif outcome.kind == "transient" and attempts <= job.max_retries:
        delay = policy.delay(attempts, rng, outcome.retry_after)
        values.update(status="retrying", next_attempt_at=now + timedelta(seconds=delay),
                      last_error=outcome.reason)
    else:
        reason = outcome.reason
        if outcome.kind == "transient":
            reason = encode_reason(
                N_("Gave up after %(attempts)s attempts. Last error: %(error)s"),
                {"attempts": attempts, "error": reason_text(outcome.reason)})
        values.update(status="failed", last_error=reason)
    return values


def complete_batch(session: Session, outcomes: list[Outcome], *, now: datetime, node: str,
                   policy: RetryPolicy, rng: random.Random) -> list[str]:
    """Record the attempts and move the posts, each fenced by its claim token. Returns the
    new state per outcome, or "lost" when that lease was lost (the reaper or another node
    took over). The caller commits."""
    conn = session.connection()
    all_values = [_completion_values(o, now, policy, rng) for o in outcomes]
    fenced = _apply_fenced(conn, outcomes, all_values)
    states: list[str] = []
    attempt_rows: list[dict[str, Any]] = []
    failed: list[int] = []
    for outcome, vals in zip(outcomes, all_values, strict=True):
        job = outcome.job
        fenced_ok = job.post_id in fenced
        state = vals["status"]
        error = outcome.reason
        if not fenced_ok:
            state = "lost"
            if outcome.kind == "published":
                # The send worked but the lease had expired. If the reaper parked the post as
                # `unknown`, this attempt is the proof reconcile is waiting for.
                proof = {k: v for k, v in vals.items() if v is not None}
                proof.update(claim_token=None, claimed_by=None, lease_expires_at=None,
                             next_attempt_at=vals["next_attempt_at"])
                took = conn.execute(update(_POSTS).where(
                    _POSTS.c.id == job.post_id, _POSTS.c.status == "unknown")
                    .values(proof)).rowcount
                state = vals["status"] if took else "lost"
            error = encode_reason(N_("The lease expired before this attempt finished; the "
                                     "result was recorded but the post had been taken over."),
                                  detail=reason_text(outcome.reason) or outcome.kind)
        attempt_rows.append({
            "post_id": job.post_id, "started_at": outcome.started_at,
            "duration_ms": outcome.duration_ms,
            "outcome": outcome.kind if fenced_ok else "lost", "error": error,
            "node": node[:100]})
        states.append(state)
        if state == "failed":
            failed.append(job.post_id)
        elif state == "awaiting_staff":
            _notify_assignees(session, job)
    if attempt_rows:
        conn.execute(insert(_ATTEMPTS), attempt_rows)
    if failed:
        _notify_problem(session, failed, "failed")
    return states


# PostgreSQL batch completion: one statement, arrays as parameters (cached, one round trip).
_PG_COMPLETION = text("""
UPDATE posts AS p SET
  status = v.status, next_attempt_at = v.next_attempt_at, last_error = v.last_error,
  attempt_count = v.attempt_count, updated_at = v.updated_at,
  published_at = COALESCE(v.published_at, p.published_at),
  external_id = COALESCE(v.external_id, p.external_id),
  external_url = COALESCE(v.external_url, p.external_url),
  published_version = COALESCE(v.published_version, p.published_version),
  slug = COALESCE(v.slug, p.slug),
  claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL
FROM unnest(CAST(:f_id AS integer[]), CAST(:f_token AS varchar[]),
            CAST(:status AS varchar[]), CAST(:next_attempt_at AS timestamptz[]),
            CAST(:last_error AS text[]), CAST(:attempt_count AS integer[]),
            CAST(:updated_at AS timestamptz[]), CAST(:published_at AS timestamptz[]),
            CAST(:external_id AS varchar[]), CAST(:external_url AS varchar[]),
            CAST(:published_version AS integer[]), CAST(:slug AS varchar[]))
  AS v(id, token, status, next_attempt_at, last_error, attempt_count, updated_at,
       published_at, external_id, external_url, published_version, slug)
WHERE p.id = v.id AND p.claim_token = v.token AND p.status = 'publishing'
RETURNING p.id
""")


def _apply_fenced(conn, outcomes: list[Outcome], all_values: list[dict[str, Any]]) -> set[int]:
    """Run the fenced completion updates; returns the ids whose fence held.

    PostgreSQL: one UPDATE … FROM (VALUES …) RETURNING for the whole batch (one round trip).
    Elsewhere: the same fenced UPDATE per row, where rowcount == 1 means the fence held.
    """
    if not outcomes:
        return set()
    if conn.dialect.name == "postgresql":
        params: dict[str, list] = {"f_id": [o.job.post_id for o in outcomes],
                                   "f_token": [o.job.claim_token for o in outcomes]}
        for k in _COMPLETION_KEYS:
            params[k] = [v[k] for v in all_values]
        return set(conn.execute(_PG_COMPLETION, params).scalars())
    stmt = _fenced_completion()
    held = set()
    for outcome, vals in zip(outcomes, all_values, strict=True):
        params = {f"v_{k}": v for k, v in vals.items()}
        params.update(f_id=outcome.job.post_id, f_token=outcome.job.claim_token)
        if conn.execute(stmt, params).rowcount == 1:
            held.add(outcome.job.post_id)
    return held


def complete(session: Session, outcome: Outcome, *, now: datetime, node: str,
             policy: RetryPolicy, rng: random.Random) -> str:
    """complete_batch for one outcome."""
    return complete_batch(session, [outcome], now=now, node=node, policy=policy, rng=rng)[0]


# --- Notifications ---------------------------------------------------------------------------

def people_to_tell(session: Session, piece: ContentPiece) -> list[User]:
    """The author and everyone who approved the piece (from the audit trail)."""
    ids = {piece.author_id}
    ids.update(session.scalars(select(AuditEvent.actor_id).where(
        AuditEvent.object_type == "piece", AuditEvent.object_id == piece.id,
        AuditEvent.action.like("%approv%"), AuditEvent.actor_id.is_not(None))))
    return list(session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True))))


def _notify_problem(session: Session, post_ids: Iterable[int], what: str) -> None:
    for post_id in post_ids:
        post = session.get(Post, post_id)
        if post is None:
            continue
        session.refresh(post)
        users = people_to_tell(session, post.piece)
        message = (N_("“%(title)s” could not be published on %(channel)s: %(reason)s")
                   if what == "failed" else
                   N_("“%(title)s” was not published on %(channel)s: %(reason)s"))
        notifications.notify(session, users, "publish_failed", message,
                             {"title": post.title, "channel": post.channel.name,
                              # The stored reason, so each reader gets it in their language;
                              # "reason" is its English text for anything that cannot.
                              "reason": reason_text(post.last_error),
                              "reason_code": post.last_error, "post_id": post.id,
                              "state": post.status},
                             link=f"/publishing/posts/{post.id}")


def _notify_assignees(session: Session, job: Job) -> None:
    emails = [e.lower() for e in (job.adapter.config.get("assignees") or [])]
    users = list(session.scalars(select(User).where(func.lower(User.email).in_(emails),
                                                    User.active.is_(True)))) if emails else []
    if not users:
        post = session.get(Post, job.post_id)
        users = people_to_tell(session, post.piece) if post else []
    notifications.notify(session, users, "assigned",
                         N_("Please post “%(title)s” on %(channel)s by hand, then confirm "
                            "with the link."),
                         {"title": job.outgoing.title, "channel": job.outgoing.channel_name,
                          "post_id": job.post_id},
                         link=f"/publishing/posts/{job.post_id}")


# --- Reaper, reconcile, deadlines ------------------------------------------------------------

def reap_expired(session: Session, *, now: datetime, node: str) -> list[int]:
    """Posts whose lease ran out mid-publish become `unknown` (never re-sent blindly)."""
    rows = session.execute(select(Post.id, Post.claim_token, Post.claimed_by).where(
        Post.status == "publishing", Post.lease_expires_at < now)).all()
    reaped = []
    reason = encode_reason(N_("The scheduler stopped while sending; checking whether the post "
                              "went out."))
    for post_id, token, claimed_by in rows:
        stmt = (update(Post).where(Post.id == post_id, Post.status == "publishing",
                                   Post.claim_token == token)
                .values(status="unknown", claim_token=None, lease_expires_at=None,
                        next_attempt_at=now, last_error=reason,
                        attempt_count=Post.attempt_count + 1, updated_at=now)
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount == 1:
            session.add(PublishAttempt(post_id=post_id, started_at=now, outcome="lost",
                                       error=encode_reason(
                                           N_("Lease of %(node)s expired mid-publish."),
                                           {"node": claimed_by or "?"}),
                                       node=node[:100]))
            reaped.append(post_id)
    session.commit()
    return reaped


def reconcile_unknown(session: Session, *, now: datetime, node: str, adapter_for: AdapterFactory,
                      base_url: str = "", limit: int = 100) -> dict[str, int]:
    """Settle `unknown` posts: idempotent channels re-send with the same key; channels that
    can look a post up prove it; otherwise the post waits for a person (invariant 2)."""
    counts = {"resent": 0, "proved": 0, "not_found": 0, "person": 0, "later": 0}
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
        if caps.idempotent:
            # The receiver dedupes on the idempotency key: re-sending is safe and settles it.
            session.execute(update(Post).where(fence).values(
                status="retrying", next_attempt_at=now, claim_token=None, claimed_by=None,
                last_error=encode_reason(N_("Re-sent with the same idempotency key after an "
                                            "interrupted attempt.")), updated_at=now)
                .execution_options(synchronize_session=False))
            audit.record(session, "post.reconciled", "post", post_id, actor_label=node,
                         data={"how": "resend_same_key"}, now=now)
            counts["resent"] += 1
            session.commit()
            continue
        found: PublishResult | None = None
        error: str | None = None
        if caps.can_find_existing:
            key = idempotency_key(post)
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
                if getattr(adapter, "sets_slug", False) and found.external_id:
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
        # Nobody can prove the outcome: a person decides (mark published / retry / cancel).
        session.execute(update(Post).where(fence).values(
            claim_token=None, claimed_by=None, updated_at=now,
            last_error=encode_reason(N_("It is not known whether this post went out. Check "
                                        "the channel, then mark it as published, retry or "
                                        "cancel it.")))
            .execution_options(synchronize_session=False))
        _notify_problem(session, [post_id], "unknown")
        counts["person"] += 1
        session.commit()
    return counts


def expire_staff_tasks(session: Session, *, now: datetime) -> list[int]:
    """Manual posts nobody confirmed by their deadline become `missed`."""
    ids = list(session.scalars(select(Post.id).where(
        Post.status == "awaiting_staff", Post.next_attempt_at <= now)))
    reason = encode_reason(N_("Nobody confirmed posting it by the deadline."))
    done = []
    for post_id in ids:
        if session.execute(update(Post).where(
                Post.id == post_id, Post.status == "awaiting_staff",
                Post.next_attempt_at <= now)
                .values(status="missed", last_error=reason, next_attempt_at=None,
                        updated_at=now)
                .execution_options(synchronize_session=False)).rowcount == 1:
            done.append(post_id)
    if done:
        _notify_problem(session, done, "missed")
    session.commit()
    return done


# --- The dispatcher --------------------------------------------------------------------------

@dataclass
class DispatchStats:
    claimed: int = 0
    published: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0
    awaiting_staff: int = 0
    missed: int = 0
    wake_at: datetime | None = None


class Dispatcher:
    """Claims due posts and publishes them on a bounded thread pool.

    Only as many posts are claimed as there are free workers, so no claimed post waits in a
    queue while its lease runs down; completions are written in batches (one transaction for
    many fenced updates), which keeps SQLite fast and PostgreSQL round trips few.
    """

    def __init__(self, session_factory: SessionFactory, adapter_for: AdapterFactory, *,
                 node: str, clock: Callable[[], datetime], workers: int = DEFAULT_WORKERS,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 policy: RetryPolicy | None = None, team_tz: str = "Asia/Shanghai",
                 base_url: str = "", rng: random.Random | None = None) -> None:
        self.session_factory = session_factory
        self.adapter_for = adapter_for
        self.node = node
        self.clock = clock
        self.workers = max(1, workers)
        self.lease_seconds = lease_seconds
        self.policy = policy or RetryPolicy()
        self.team_tz = team_tz
        self.base_url = base_url
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="contentops-publish")
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming; let in-flight sends finish and record them (a run in progress
        drains its in-flight posts and returns), then release the pool."""
        self._stopping.set()
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
        self._pool.shutdown(wait=True)

    def run(self) -> DispatchStats | None:
        """Publish everything due now. Returns None when another run is in progress."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._run()
        finally:
            self._lock.release()

    def _run(self) -> DispatchStats:
        stats = DispatchStats()
        inflight: dict[Future, Job] = {}
        exhausted = False
        triage = True
        # Keep the pool fed: up to two posts per worker claimed at a time (the second waits
        # milliseconds, far inside its lease), claimed in batches of at least `workers`.
        capacity = 2 * self.workers
        while True:
            free = capacity - len(inflight)
            if not exhausted and not self._stopping.is_set() and (
                    free >= self.workers or not inflight):
                jobs, decision = self._claim(free, triage)
                triage = False
                stats.claimed += len(jobs)
                stats.missed += len(decision.missed)
                if decision.wake_at is not None:
                    stats.wake_at = decision.wake_at
                if len(jobs) < free:
                    exhausted = True  # nothing more due (or rate-limited) right now
                for job in jobs:
                    # A claimed post that cannot be submitted keeps its lease; the reaper
                    # and reconcile settle it, so nothing is lost on a racing shutdown.
                    try:
                        inflight[self._pool.submit(run_publish, job, self.clock)] = job
                    except RuntimeError:
                        log.warning("pool closed; post %s left to the reaper", job.post_id)
            if not inflight:
                break
            done, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
            if not done:
                continue
            # Gather a few more completions so they share one transaction.
            if len(done) < len(inflight):
                more, _ = wait([f for f in inflight if f not in done], timeout=0.003,
                               return_when=FIRST_COMPLETED)
                done = set(done) | set(more)
            outcomes = [f.result() for f in done]
            for f in done:
                inflight.pop(f)
            self._complete(outcomes, stats)
            if exhausted and not inflight:
                # Posts may have become due while the last ones were sending: look again
                # (an empty claim then ends the run).
                exhausted = False
        return stats

    def _claim(self, limit: int, triage: bool) -> tuple[list[Job], Decision]:
        session = self.session_factory()
        try:
            return claim_due(session, now=self.clock(), node=self.node, limit=limit,
                             adapter_for=self.adapter_for, lease_seconds=self.lease_seconds,
                             team_tz=self.team_tz, base_url=self.base_url, triage=triage)
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    def _complete(self, outcomes: list[Outcome], stats: DispatchStats) -> None:
        session = self.session_factory()
        try:
            states = complete_batch(session, outcomes, now=self.clock(), node=self.node,
                                    policy=self.policy, rng=self.rng)
            session.commit()
            for state in states:
                if hasattr(stats, state):
                    setattr(stats, state, getattr(stats, state) + 1)
        except Exception:
            session.rollback()
            log.exception("recording %d publish outcomes failed; their leases will expire "
                          "and reconcile settles them", len(outcomes))
        finally:
            session.close()


# --- What people do on the Publishing page and through the API ------------------------------

def _require_approved(post: Post) -> None:
    if not post.piece.is_approved_as_is:
        raise DomainError(N_("Approve the current version of the content first."),
                          code="not_approved")


def _state_error(post: Post) -> DomainError:
    return DomainError(N_("A post that is %(status)s cannot do that."),
                       {"status": post.status}, code="invalid_state")


def publish_now(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    """Send as soon as a scheduler picks it up (within about a second)."""
    if post.status not in ("unscheduled", "scheduled", "missed", "failed", "cancelled"):
        raise _state_error(post)
    _require_approved(post)
    old = post.scheduled_at
    post.scheduled_at = now
    post.status = "scheduled"
    post.next_attempt_at = None
    post.last_error = None
    post.updated_at = now
    audit.record(session, "post.publish_now", "post", post.id, actor=actor, now=now,
                 data={"from": isoformat(old)})
    return post


def retry_post(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    """Failed, missed or unknown → try again now, with a fresh retry budget."""
    if post.status not in ("failed", "missed", "unknown"):
        raise _state_error(post)
    _require_approved(post)
    old = post.status
    post.status = "retrying"
    post.next_attempt_at = now
    post.attempt_count = 0
    post.claim_token = None
    post.last_error = None
    post.updated_at = now
    audit.record(session, "post.retry", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def cancel_post(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    if post.status in ("published", "publishing", "cancelled"):
        raise _state_error(post)
    old = post.status
    post.status = "cancelled"
    post.next_attempt_at = None
    post.claim_token = None
    post.updated_at = now
    audit.record(session, "post.cancelled", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def unschedule_post(session: Session, post: Post, *, actor: User | None, now: datetime
                    ) -> Post:
    if post.status not in ("scheduled", "retrying", "missed", "failed", "cancelled"):
        raise _state_error(post)
    old = post.status
    post.status = "unscheduled"
    post.scheduled_at = None
    post.next_attempt_at = None
    post.updated_at = now
    audit.record(session, "post.unscheduled", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def mark_published(session: Session, post: Post, *, url: str | None, actor: User | None,
                   now: datetime) -> Post:
    """A person confirms it went out (manual channels, or an `unknown` post they checked)."""
    if post.status not in ("unknown", "awaiting_staff", "missed", "failed"):
        raise _state_error(post)
    url = (url or "").strip() or None
    if url is not None and (len(url) > 1000 or not url.lower().startswith(("http://",
                                                                           "https://"))):
        raise ValidationError({"url": [N_("Enter a full URL starting with http:// or "
                                          "https://.")]})
    old = post.status
    post.status = "published"
    post.published_at = now
    post.external_url = url or post.external_url
    post.published_version = post.published_version or post.piece.version
    post.claim_token = None
    post.next_attempt_at = None
    post.last_error = None
    post.updated_at = now
    session.add(PublishAttempt(post_id=post.id, started_at=now, duration_ms=0,
                               outcome="reconciled", node=None,
                               error=encode_reason(N_("Confirmed by %(name)s."),
                                                   {"name": actor.name if actor else "?"})))
    audit.record(session, "post.marked_published", "post", post.id, actor=actor, now=now,
                 data={"from": old, "url": url})
    return post


def reschedule(session: Session, post: Post, when: datetime, *, actor: User | None,
               now: datetime) -> list:
    """Move to a new time through the scheduling service (quotas, conflicts)."""
    from . import scheduling

    return scheduling.schedule_post(session, post, when, actor=actor, now=now)


# --- Read side -------------------------------------------------------------------------------

PAGE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("in_flight", ("publishing",)),
    ("unknown", ("unknown",)),
    ("failed", ("failed",)),
    ("missed", ("missed",)),
    ("awaiting_staff", ("awaiting_staff",)),
    ("retrying", ("retrying",)),
    ("upcoming", ("scheduled",)),
)


def publishing_overview(session: Session, *, limit: int = 100) -> dict[str, list[Post]]:
    out: dict[str, list[Post]] = {}
    for name, states in PAGE_GROUPS:
        order = (Post.next_attempt_at if name == "retrying" else
                 Post.scheduled_at if name == "upcoming" else Post.updated_at.desc())
        out[name] = list(session.scalars(
            select(Post).where(Post.status.in_(states)).order_by(order, Post.id)
            .options(selectinload(Post.piece), selectinload(Post.channel)).limit(limit)))
    return out


def attempts_for(session: Session, post_id: int) -> list[PublishAttempt]:
    return list(session.scalars(select(PublishAttempt).where(PublishAttempt.post_id == post_id)
                                .order_by(PublishAttempt.started_at.desc(),
                                          PublishAttempt.id.desc())))


def post_dict(post: Post) -> dict[str, Any]:
    """The API's view of a post after an action."""
    return {
        "id": post.id, "piece_id": post.piece_id, "channel_id": post.channel_id,
        "status": post.status, "scheduled_at": isoformat(post.scheduled_at),
        "next_attempt_at": isoformat(post.next_attempt_at),
        "published_at": isoformat(post.published_at), "external_id": post.external_id,
        "external_url": post.external_url, "attempt_count": post.attempt_count,
        "last_error": reason_text(post.last_error) or None,
    }
