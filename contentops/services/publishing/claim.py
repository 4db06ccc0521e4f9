"""Claim: which posts may go out now, and taking them in one short transaction.

The dialect branch (PostgreSQL SKIP LOCKED batch vs SQLite conditional update) lives in
`claim_rows` alone; misfire grace, switched-off channels, daily quotas and the per-minute
token bucket are decided per channel while the candidate rows are held (DESIGN.md §4).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ...channels import registry
from ...channels.base import ChannelAdapter, OutgoingPost
from ...errors import N_
from ...models import Channel, ContentPiece, Post
from ...models.scheduler import ChannelBucket
from ...reasons import encode_reason, instant_param
from ...timeutil import as_utc
from .. import channels, recipients, review
from . import notices
from .mass_send import send_unit
from .types import (
    CLAIMABLE_STATES,
    DEFAULT_LEASE_SECONDS,
    AdapterFactory,
    Decision,
    Job,
)

_POSTS = Post.__table__


def claimable_clause():
    """Only scheduled/retrying posts of an approved piece at the approved version; what
    "approved" means (versions, two-approver channels, holds) is the review service's rule."""
    return and_(Post.status.in_(CLAIMABLE_STATES), review.claimable_clause())


def due_clause(now: datetime):
    return or_(and_(Post.status == "scheduled", Post.scheduled_at <= now),
               and_(Post.status == "retrying", Post.next_attempt_at <= now))


LATE_REASON = N_("No scheduler was running at %(time)s and the post is more than "
                 "%(minutes)s minutes late; decide whether to send it.")
RETRY_LATE_REASON = N_("No scheduler was running when the retry was due at %(time)s and it "
                       "is more than %(minutes)s minutes late; decide whether to send it.")


def due_time(post: Post) -> datetime | None:
    """When a claimable post is due: a retry at its next attempt, else its scheduled time."""
    if post.status == "retrying" and post.next_attempt_at is not None:
        return post.next_attempt_at
    return post.scheduled_at


def next_due_at(session: Session, exclude_channels: Collection[int] = ()
                ) -> datetime | None:
    """The earliest time anything becomes due. Two index-only MIN() lookups: cheap enough
    to poll every half second from every scheduler, so a post scheduled or moved by any
    process (web, API, another node) re-arms the dispatch timer without any signalling.
    `exclude_channels`: channels the caller cannot send more on right now."""
    a_q = select(func.min(Post.scheduled_at)).where(Post.status == "scheduled")
    b_q = select(func.min(Post.next_attempt_at)).where(Post.status == "retrying")
    if exclude_channels:
        a_q = a_q.where(Post.channel_id.not_in(list(exclude_channels)))
        b_q = b_q.where(Post.channel_id.not_in(list(exclude_channels)))
    a = session.scalar(a_q)
    b = session.scalar(b_q)
    times = [t for t in (a, b) if t is not None]
    return min(times) if times else None


def idempotency_key(post: Post) -> str:
    """Stable for the post across attempts, restarts and nodes; distinct across databases
    reusing ids because the creation instant is part of it."""
    created = post.created_at
    stamp = int(created.timestamp() * 1000) if created else 0
    return f"contentops-post-{post.id}-{stamp}"


def send_key(post: Post) -> str:
    """The idempotency key of the send a post goes out in. A multi-article send keeps one key
    for its whole life — whichever article is the 头条 and whoever leaves — so a re-send after
    an interrupted or failed attempt is deduplicated by the service (公众号 clientmsgid) rather
    than sent again under a new key."""
    if post.send_group:
        return f"contentops-send-{post.send_group}"
    return idempotency_key(post)


def claim_rows(session: Session, now: datetime, limit: int, node: str, lease_until: datetime,
                decide: Callable[[list[Post]], Decision],
                exclude_channels: Collection[int] = ()) -> tuple[dict[int, str], Decision]:
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
    if exclude_channels:
        # Channels already sending as much as they may: their backlog must not fill the
        # batch and starve the other channels (head-of-line).
        query = query.where(Post.channel_id.not_in(list(exclude_channels)))
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=Post)
    candidates = list(session.scalars(query))
    keys = {p.send_group for p in candidates if p.send_group}
    if keys:
        # A multi-article send is claimed whole: members the batch limit cut off come along.
        more = select(Post).where(Post.send_group.in_(keys),
                                  Post.id.not_in([p.id for p in candidates]),
                                  claimable_clause(), due_clause(now))
        if postgres:
            more = more.with_for_update(skip_locked=True, of=Post)
        candidates.extend(session.scalars(more))
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
        sends: dict[str, list[int]] = {}
        for post in candidates:
            if post.send_group and post.id in decision.claim:
                sends.setdefault(post.send_group, []).append(post.id)
        done: set[int] = set()
        for post_id in decision.claim:
            if post_id in done:
                continue
            key = next((k for k, ids in sends.items() if post_id in ids), None)
            ids = sends[key] if key else [post_id]
            done.update(ids)
            tokens = {i: str(uuid.uuid4()) for i in ids}
            # A send is claimed all or nothing (a concurrent claimer or an edit in between
            # wins the whole send), so it never goes out short of an article.
            nested = session.begin_nested() if len(ids) > 1 else None
            won = [i for i in ids
                   if conn.execute(stmt, {"p_id": i, "p_token": tokens[i]}).rowcount == 1]
            if nested is not None and len(won) < len(ids):
                nested.rollback()
                continue
            if nested is not None:
                nested.commit()
            claimed.update({i: tokens[i] for i in won})
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


HELD = N_("Held with the other articles of its message (头条 + 次条): %(titles)s not ready "
         "(approved in the current version and due). Approve it, then retry; the articles go "
         "out together.")
HELD_LATE = N_("Held with the other articles of its message (头条 + 次条): one of them was "
               "missed; retry them together.")
TOO_MANY = N_("This message has %(count)s articles; WeChat takes at most %(max)s. Move some "
              "to another time, then retry.")


def _units(posts: list[Post]) -> list[list[Post]]:
    """Posts in claim order, members of one send together (lead first) as one unit."""
    units: list[list[Post]] = []
    by_key: dict[str, list[Post]] = {}
    for post in posts:
        if not post.send_group:
            units.append([post])
        elif post.send_group in by_key:
            by_key[post.send_group].append(post)
        else:
            by_key[post.send_group] = [post]
            units.append(by_key[post.send_group])
    for unit in units:
        unit.sort(key=lambda p: (p.group_position is None, p.group_position or 0, p.id))
    return units


def _hold_incomplete_sends(session: Session, candidates: list[Post], now: datetime,
                           decision: Decision) -> list[Post]:
    """A multi-article send goes out only when every member is claimable (approved at its
    version, not held) and due: invariant 1 holds per article, and the articles were planned
    as one message. When a member is not ready, the due ones become `missed` with a reason
    naming it (flagged, never sent short); when the missing ones are merely taken by
    another node's claim right now, the send is left to that claim."""
    keys = {p.send_group for p in candidates if p.send_group}
    if not keys:
        return candidates
    keep = [p for p in candidates if not p.send_group]
    from .groups import group_limit

    for key in keys:
        mine = [p for p in candidates if p.send_group == key]
        rows = session.execute(select(Post.id).where(
            Post.send_group == key, Post.status != "cancelled")).scalars().all()
        missing = set(rows) - {p.id for p in mine}
        limit = group_limit(mine[0].channel) if mine[0].channel is not None else 0
        if limit and len(rows) > limit:
            reason = encode_reason(TOO_MANY, {"count": len(rows), "max": limit})
        elif missing:
            ready = set(session.scalars(select(Post.id).where(
                Post.id.in_(missing), claimable_clause(), due_clause(now))))
            if ready == missing:
                continue  # locked by another node's claim this instant: it sends them
            titles = "、".join(f"“{p.title}”" for p in session.scalars(
                select(Post).where(Post.id.in_(missing - ready)).order_by(Post.id)))
            reason = encode_reason(HELD, {"titles": titles})
        else:
            keep.extend(mine)
            continue
        for post in mine:
            decision.missed[post.id] = reason
    keep.sort(key=lambda p: (p.scheduled_at, p.id))
    return keep


def _decide(session: Session, candidates: list[Post], now: datetime, team_tz: str,
            adapter_caps: Callable[[Channel], Any],
            room: Callable[[int], int | None] = lambda _channel_id: None) -> Decision:
    """Misfire grace, inactive channels, daily quotas and per-minute limits, per channel."""
    decision = Decision()
    candidates = _hold_incomplete_sends(session, candidates, now, decision)
    by_channel: dict[int, list[Post]] = {}
    for post in candidates:
        by_channel.setdefault(post.channel_id, []).append(post)
    for channel_id, posts in by_channel.items():
        channel = session.get(Channel, channel_id)
        caps = adapter_caps(channel)
        ready: list[Post] = []
        grace = timedelta(minutes=channel.grace_minutes or 0)
        for post in posts:
            due = due_time(post)
            if not channel.active:
                decision.missed[post.id] = encode_reason(
                    N_("The channel %(channel)s is switched off."), {"channel": channel.name})
            elif due is not None and now - due > grace:
                # Every late send is held to the grace window, a retry as much as a first
                # try: a retry due while no scheduler ran is not sent hours late unflagged.
                decision.missed[post.id] = encode_reason(
                    RETRY_LATE_REASON if post.status == "retrying" else LATE_REASON,
                    {"time": instant_param(due), "minutes": channel.grace_minutes})
            else:
                ready.append(post)
        # A multi-article send is one unit below: one quota slot, one send in flight, one
        # token; a member that is late (grace) holds the whole send back with it.
        late = {p.send_group for p in posts if p.id in decision.missed and p.send_group}
        for post in ready:
            if post.send_group in late:
                decision.missed[post.id] = encode_reason(HELD_LATE)
        ready = [p for p in ready if p.id not in decision.missed]
        units = _units(ready)
        quota = min([q for q in (channel.daily_quota, caps.daily_quota) if q], default=None)
        if quota and units:
            # A multi-article send took one slot, not one per article.
            used = session.scalar(select(func.count(func.distinct(send_unit()))).where(
                Post.channel_id == channel_id,
                or_(Post.status == "publishing",
                    Post.published_at >= _day_start(now, channel.timezone or team_tz)))) or 0
            left = max(0, quota - used)
            for unit in units[left:]:
                for post in unit:
                    decision.missed[post.id] = encode_reason(
                        N_("The daily quota of %(quota)s posts on %(channel)s was used up."),
                        {"quota": quota, "channel": channel.name})
            units = units[:left]
        space = room(channel_id)
        if space is not None and len(units) > space:
            # Per-channel concurrency: the rest stays due and is claimed as sends finish
            # (before the token bucket, so no token is spent on a post left waiting).
            decision.capped.add(channel_id)
            units = units[:max(0, space)]
        per_minute = min([q for q in (channel.per_minute_limit, caps.per_minute) if q],
                         default=None)
        if per_minute and units:
            granted, wake = _take_tokens(session, channel, per_minute, len(units), now)
            units = units[:granted]
            if wake is not None and (decision.wake_at is None or wake < decision.wake_at):
                decision.wake_at = wake
        decision.claim.extend(p.id for unit in units for p in unit)
    return decision


def mark_unapproved_missed(session: Session, now: datetime) -> list[int]:
    """Due posts whose piece is not approved as is (or that are on hold) become `missed`,
    with the reason: never sent late without a person deciding."""
    ids = list(session.scalars(select(Post.id).where(
        Post.status.in_(CLAIMABLE_STATES), due_clause(now), ~review.claimable_clause())))
    reason = encode_reason(N_("The time came while the content was not approved in its "
                              "current version; approve it, then retry or reschedule."))
    missed = []
    for post_id in ids:
        stmt = (update(Post).where(Post.id == post_id, Post.status.in_(CLAIMABLE_STATES),
                                   due_clause(now), ~review.claimable_clause())
                .values(status="missed", last_error=reason, next_attempt_at=None,
                        updated_at=now)
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount == 1:
            missed.append(post_id)
    return missed


def outgoing_for(post: Post, base_url: str = "", session: Session | None = None, *,
                 sync_recipients: bool = True) -> OutgoingPost:
    if session is not None:
        # The full picture, resolved right before sending: e-mail recipients (so an
        # unsubscribe is honoured at the next send) and the piece's web page for links.
        return channels.outgoing_post(session, post, base_url=base_url,
                                      sync_recipients=sync_recipients)
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


def sync_recipient_lists(session: Session, now: datetime) -> None:
    """Recipient-list channels (e-mail) with due posts get their "extra recipients" setting
    synced into rows in a transaction of its own, committed before the claim transaction
    starts, so the claim only reads recipients (issue #12)."""
    kinds = [k for k in registry.kinds() if registry.adapter_class(k).uses_recipients]
    if not kinds:
        return
    due_channels = list(session.scalars(select(Channel).where(
        Channel.kind.in_(kinds), Channel.id.in_(
            select(Post.channel_id).where(claimable_clause(), due_clause(now))))))
    if due_channels:
        recipients.sync_config_lists(session, due_channels)
    session.commit()


def claim_due(session: Session, *, now: datetime, node: str, limit: int,
              adapter_for: AdapterFactory, lease_seconds: float = DEFAULT_LEASE_SECONDS,
              team_tz: str = "Asia/Shanghai", base_url: str = "", triage: bool = True,
              in_flight: dict[int, int] | None = None, per_channel: int | None = None
              ) -> tuple[list[Job], Decision]:
    """Claim up to `limit` due posts in one short transaction (committed here). With
    `triage`, due posts of unapproved pieces are first marked `missed`. With `per_channel`,
    a channel gets at most that many posts in flight (`in_flight`: channel id -> posts this
    node is sending now); `decision.capped` names channels that had more due."""
    adapters: dict[int, ChannelAdapter] = {}

    def adapter(channel: Channel) -> ChannelAdapter:
        if channel.id not in adapters:
            adapters[channel.id] = adapter_for(channel)
        return adapters[channel.id]

    sync_recipient_lists(session, now)
    missed_unapproved = mark_unapproved_missed(session, now) if triage else []
    busy = in_flight or {}

    def room(channel_id: int) -> int | None:
        return None if per_channel is None else per_channel - busy.get(channel_id, 0)

    full = ([c for c, n in busy.items() if n >= per_channel] if per_channel is not None
            else [])
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed, decision = claim_rows(
        session, now, limit, node, lease_until,
        lambda posts: _decide(session, posts, now, team_tz,
                              lambda ch: adapter(ch).capabilities, room),
        exclude_channels=full)
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
        for unit in _units(list(posts)):
            member_jobs = tuple(Job(
                post_id=post.id, claim_token=claimed[post.id], channel_id=post.channel_id,
                version=post.piece.version, attempt_count=post.attempt_count or 0,
                max_retries=post.channel.max_retries, key=send_key(post),
                outgoing=outgoing_for(post, base_url, session, sync_recipients=False),
                adapter=adapter(post.channel)) for post in unit)
            if len(member_jobs) == 1:
                jobs.append(member_jobs[0])
            else:
                # The lead's job carries the send; its key (the 头条's) is the send's.
                lead = member_jobs[0]
                jobs.append(replace(lead, members=member_jobs))
    missed_ids = list(decision.missed) + missed_unapproved
    if missed_ids:
        notices.notify_problem(session, missed_ids, "missed")
    session.commit()
    jobs.sort(key=lambda j: j.post_id)
    return jobs, decision
