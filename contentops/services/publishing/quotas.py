"""Channel quotas and scheduling conflicts.

- A **daily quota** (e.g. a 公众号 subscription account: 1 mass send per day) is hard: putting
  one more post on a full day is refused. The day is counted in the channel's time zone (the
  service's own day), else the team's.
- A **per-minute limit** (robots: 20 messages/minute) is paced by the dispatcher, so crowding
  a minute only warns that some posts will go out a little later.
- Two posts for the same channel and audience closer than the channel's conflict window
  (default 2 h) warn: readers get two messages back to back.
- A 公众号 channel in mass-send mode has WeChat's own quota (1 a day for a subscription
  account, 4 a calendar month for a service account): hard as well, see mass_send.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ...channels.base import Finding
from ...config import DEFAULT_TIMEZONE
from ...errors import N_
from ...models import Channel, ContentPiece, Post
from ...timeutil import as_utc
from . import mass_send
from .mass_send import (  # noqa: F401 - re-exported
    MassSendQuota,
    next_allowed_time,
    next_allowed_time_for,
)

# The 公众号 mass-send quota, reachable from here with the other quotas.
mass_send_quota = mass_send.quota_of
mass_send_usage = mass_send.usage

# Refusals whose finding code is also the API error code (instead of "validation_error").
REFUSAL_CODES: frozenset[str] = frozenset({"mass_send_quota"})

# Posts that take (or took) a slot on the channel. Cancelled, failed and missed ones do not.
COUNTED_STATES: tuple[str, ...] = (
    "scheduled", "retrying", "publishing", "published", "awaiting_staff", "unknown")


def effective_limits(channel: Channel) -> tuple[int | None, int | None]:
    """(daily quota, per-minute limit): the channel's own settings, tightened by what the
    service itself allows (the adapter's declared capabilities)."""
    daily, per_minute = channel.daily_quota, channel.per_minute_limit
    try:
        from ...channels.registry import adapter_class

        caps = adapter_class(channel.kind).capabilities
    except (KeyError, AttributeError):  # a kind this installation does not have
        caps = None
    if caps is not None:
        if caps.daily_quota is not None:
            daily = caps.daily_quota if daily is None else min(daily, caps.daily_quota)
        if caps.per_minute is not None:
            per_minute = (caps.per_minute if per_minute is None
                          else min(per_minute, caps.per_minute))
    return daily, per_minute


def channel_zone(channel: Channel, team_tz: str | None = None) -> ZoneInfo:
    return ZoneInfo(channel.timezone or team_tz or DEFAULT_TIMEZONE)


def day_bounds(when: datetime, zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """The local day containing `when` and its [start, end) in UTC (DST-safe: 23/25 h days)."""
    local_day = as_utc(when).astimezone(zone).date()
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=zone)
    following = local_day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return local_day, as_utc(start), as_utc(end)


def _count(session: Session, channel_id: int, start: datetime, end: datetime,
           exclude_post_id: int | None) -> int:
    """Sends in [start, end): a multi-article send (公众号 头条 + 次条) is one."""
    from .mass_send import send_unit

    query = select(func.count(func.distinct(send_unit()))).where(
        Post.channel_id == channel_id, Post.scheduled_at >= start, Post.scheduled_at < end,
        Post.status.in_(COUNTED_STATES))
    if exclude_post_id is not None:
        query = query.where(Post.id != exclude_post_id)
    return session.scalar(query) or 0


def find_conflicts(session: Session, post: Post, when: datetime) -> list[Post]:
    """Other posts on the same channel for the same audience within the conflict window."""
    channel = post.channel
    window = timedelta(minutes=channel.conflict_window_minutes or 0)
    if window <= timedelta(0):
        return []
    when = as_utc(when)
    audience_id = post.piece.audience_id
    audience_match = (ContentPiece.audience_id.is_(None) if audience_id is None
                      else ContentPiece.audience_id == audience_id)
    query = (
        select(Post).join(ContentPiece, Post.piece_id == ContentPiece.id)
        .where(Post.channel_id == channel.id, Post.id != post.id,
               Post.scheduled_at > when - window, Post.scheduled_at < when + window,
               Post.status.in_(COUNTED_STATES), audience_match)
        .order_by(Post.scheduled_at)
    )
    from .groups import group_limit

    if group_limit(channel):
        # Posts at the very same time go out in one message with it (头条 + 次条).
        query = query.where(Post.scheduled_at != when)
    return list(session.scalars(query))


def check_schedule(session: Session, post: Post, when: datetime, *,
                   tz: str | None = None) -> list[Finding]:
    """Findings for putting `post` at `when`: errors refuse the move, warnings inform.

    `tz` is the team time zone, used for the quota day when the channel has none of its own.
    """
    channel = post.channel
    findings: list[Finding] = []
    when = as_utc(when)
    daily, per_minute = effective_limits(channel)
    zone = channel_zone(channel, tz)
    if daily is not None:
        local_day, start, end = day_bounds(when, zone)
        taken = _count(session, channel.id, start, end, post.id)
        # Joining a multi-article send at its time adds an article, not a send.
        from .groups import group_limit, joins_a_send

        joins = group_limit(channel) > 1 and joins_a_send(session, post, when)
        if taken >= daily and not joins:
            findings.append(Finding(
                "daily_quota", "error",
                N_("%(channel)s allows %(quota)s post(s) per day and %(day)s already has "
                   "%(count)s. Choose another day."),
                {"channel": channel.name, "quota": daily, "day": local_day.isoformat(),
                 "count": taken}, field="scheduled_at"))
    if per_minute is not None:
        minute = when.replace(second=0, microsecond=0)
        taken = _count(session, channel.id, minute, minute + timedelta(minutes=1), post.id)
        if taken >= per_minute:
            findings.append(Finding(
                "per_minute_limit", "warning",
                N_("%(channel)s sends at most %(limit)s messages a minute; some posts in this "
                   "minute will go out a little later."),
                {"channel": channel.name, "limit": per_minute}, field="scheduled_at"))
    from . import receive_limits

    findings.extend(mass_send.check(session, post, when, tz=tz))
    findings.extend(receive_limits.check(session, post, when))
    conflicts = find_conflicts(session, post, when)
    if conflicts:
        other = conflicts[0]
        findings.append(Finding(
            "conflict", "warning",
            N_("“%(other)s” goes to the same audience on %(channel)s at %(time)s, less than "
               "%(minutes)s minutes apart."),
            {"other": other.title, "channel": channel.name,
             "time": as_utc(other.scheduled_at).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
             "minutes": channel.conflict_window_minutes, "post_id": other.id},
            field="scheduled_at"))
    return findings


@dataclass(frozen=True)
class QuotaDay:
    """A channel's usage on one local day, reported when it reaches the quota."""

    channel_id: int
    day: date
    count: int
    quota: int

    @property
    def over(self) -> bool:
        return self.count > self.quota


def quota_usage(session: Session, start: datetime, end: datetime, *, tz: str,
                channel_ids: Iterable[int] | None = None) -> list[QuotaDay]:
    """Channel days in [start, end) that are full (count == quota) or over it.

    Over-quota days exist when posts were scheduled before a quota was set or lowered; the
    calendar marks them so a planner can move posts away.
    """
    channels = {c.id: c for c in session.scalars(select(Channel))}
    limits = {cid: effective_limits(c)[0] for cid, c in channels.items()}
    limited = [cid for cid, quota in limits.items() if quota is not None]
    if channel_ids is not None:
        wanted = set(channel_ids)
        limited = [cid for cid in limited if cid in wanted]
    if not limited:
        return []
    # Widen by a day on each side so a channel zone that differs from the view's is covered.
    from .mass_send import send_unit

    # A multi-article send (公众号 头条 + 次条) takes one slot of the daily quota.
    rows = session.execute(
        select(Post.channel_id, Post.scheduled_at, send_unit())
        .where(and_(Post.channel_id.in_(limited),
                    Post.scheduled_at >= as_utc(start) - timedelta(days=1),
                    Post.scheduled_at < as_utc(end) + timedelta(days=1),
                    Post.status.in_(COUNTED_STATES))))
    units: dict[tuple[int, date], set[str]] = defaultdict(set)
    zones = {cid: channel_zone(channels[cid], tz) for cid in limited}
    for channel_id, scheduled_at, unit in rows:
        units[(channel_id, scheduled_at.astimezone(zones[channel_id]).date())].add(unit)
    counts = {key: len(sends) for key, sends in units.items()}
    view_zone = ZoneInfo(tz)
    first = as_utc(start).astimezone(view_zone).date()
    last = (as_utc(end) - timedelta(microseconds=1)).astimezone(view_zone).date()
    out = [QuotaDay(cid, day, n, limits[cid]) for (cid, day), n in counts.items()
           if n >= limits[cid] and first <= day <= last]
    return sorted(out, key=lambda q: (q.day, q.channel_id))
