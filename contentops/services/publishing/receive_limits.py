"""Per-addressee receive limits the services enforce (channels' `receive_limit()`), e.g. WeCom:
each customer receives at most as many company broadcasts a month as the month has days, or 7 a
week / 1 a day when an admin tightened 群发规则.

The service does not refuse a broadcast beyond the limit: it simply does not deliver it to the
customers who already had their share (get_groupmsg_send_result status 3). So this is a warning
when scheduling and a marker on the calendar, counted over every channel sharing the limit's key
(all broadcasts of one corp), assuming each broadcast reaches the same customers — the
conservative reading, since this app cannot see which customers overlap.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...channels.base import Finding, ReceiveLimit
from ...errors import N_
from ...models import Channel, Post
from ...timeutil import as_utc

COUNTED_STATES: tuple[str, ...] = (
    "scheduled", "retrying", "publishing", "published", "awaiting_staff", "unknown")


# One message per period so each reads naturally in every language.
WARNINGS = {
    "day": N_("Each customer may receive %(allowed)s company broadcast a day and %(count)s is "
              "already planned on %(first)s; customers who had theirs will not receive this one "
              "(WeCom reports them as already received)."),
    "week": N_("Each customer may receive %(allowed)s company broadcasts a week and %(count)s "
               "are already planned from %(first)s to %(last)s; customers who had theirs will "
               "not receive this one (WeCom reports them as already received)."),
    "month": N_("Each customer may receive %(allowed)s company broadcasts this month and "
                "%(count)s are already planned from %(first)s to %(last)s; customers who had "
                "theirs will not receive this one (WeCom reports them as already received)."),
}
CALENDAR_LABELS = {
    "day": N_("%(channel)s: %(count)s of %(allowed)s broadcast a customer may receive that day"),
    "week": N_("%(channel)s: %(count)s of %(allowed)s broadcasts a customer may receive that "
               "week"),
    "month": N_("%(channel)s: %(count)s of %(allowed)s broadcasts a customer may receive that "
                "month"),
}


def limit_of(channel: Channel) -> ReceiveLimit | None:
    try:
        from ...channels.registry import adapter_class

        return adapter_class(channel.kind).receive_limit(channel.config or {})
    except KeyError:  # a kind this installation does not have
        return None


def period_of(limit: ReceiveLimit, when: datetime) -> tuple[date, date, int]:
    """(first day, day after the last, allowed count) of the period holding `when`."""
    local = as_utc(when).astimezone(ZoneInfo(limit.zone)).date()
    if limit.period == "day":
        first, following = local, local + timedelta(days=1)
    elif limit.period == "week":
        first = local - timedelta(days=local.weekday())
        following = first + timedelta(days=7)
    else:
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    allowed = limit.per_period or calendar.monthrange(first.year, first.month)[1]
    return first, following, allowed


def _utc(day: date, zone: str) -> datetime:
    return as_utc(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)))


def _sharing(session: Session, limit: ReceiveLimit, kind: str) -> list[int]:
    return [c.id for c in session.scalars(select(Channel).where(Channel.kind == kind))
            if (other := limit_of(c)) is not None and other.key == limit.key]


def check(session: Session, post: Post, when: datetime) -> list[Finding]:
    """A warning when the period of `when` already holds as many broadcasts as customers may
    receive (this post excluded)."""
    limit = limit_of(post.channel)
    if limit is None:
        return []
    first, following, allowed = period_of(limit, when)
    ids = _sharing(session, limit, post.channel.kind)
    taken = len(list(session.scalars(
        select(Post.id).where(Post.channel_id.in_(ids), Post.id != post.id,
                              Post.status.in_(COUNTED_STATES),
                              Post.scheduled_at >= _utc(first, limit.zone),
                              Post.scheduled_at < _utc(following, limit.zone)))))
    if taken < allowed:
        return []
    return [Finding("receive_limit", "warning", WARNINGS[limit.period],
                    {"allowed": allowed, "count": taken, "first": first.isoformat(),
                     "last": (following - timedelta(days=1)).isoformat(),
                     "channel": post.channel.name},
        field="scheduled_at")]


@dataclass(frozen=True)
class FullPeriod:
    """A period (shown on each of its days in view) whose broadcasts reach the limit."""

    channel_id: int
    day: date
    count: int
    allowed: int
    period: str

    @property
    def over(self) -> bool:
        return self.count > self.allowed


def usage(session: Session, start: datetime, end: datetime, *, tz: str,
          channel_ids: set[int] | None = None) -> list[FullPeriod]:
    """Days in [start, end) that lie in a full (or over-full) period, per limited channel."""
    view = ZoneInfo(tz)
    first_day = as_utc(start).astimezone(view).date()
    last_day = (as_utc(end) - timedelta(microseconds=1)).astimezone(view).date()
    out: list[FullPeriod] = []
    groups: dict[str, list[Channel]] = defaultdict(list)
    limits: dict[str, ReceiveLimit] = {}
    for channel in session.scalars(select(Channel)):
        limit = limit_of(channel)
        if limit is not None:
            groups[limit.key].append(channel)
            limits[limit.key] = limit
    for key, channels in groups.items():
        limit = limits[key]
        lo, _, _ = period_of(limit, as_utc(start))
        _, hi, _ = period_of(limit, as_utc(end) - timedelta(microseconds=1))
        times = list(session.scalars(select(Post.scheduled_at).where(
            Post.channel_id.in_([c.id for c in channels]), Post.status.in_(COUNTED_STATES),
            Post.scheduled_at >= _utc(lo, limit.zone),
            Post.scheduled_at < _utc(hi, limit.zone))))
        counts: dict[tuple[date, date, int], int] = defaultdict(int)
        for t in times:
            counts[period_of(limit, t)] += 1
        for (first, following, allowed), n in counts.items():
            if n < allowed:
                continue
            day = max(first, first_day)
            while day < following and day <= last_day:
                out.extend(FullPeriod(c.id, day, n, allowed, limit.period) for c in channels
                           if channel_ids is None or c.id in channel_ids)
                day += timedelta(days=1)
    return sorted(out, key=lambda f: (f.day, f.channel_id))
