"""The 公众号 (wechat_mp) mass-send quota: which days or months of a channel are full and the
next time a mass send may go out.

WeChat's 群发接口 page (https://developers.weixin.qq.com/doc/service/guide/product/message/
Batch_Sends.html, and the same page under /doc/subscription/) says:

- a 订阅号 (subscription account) may mass-send once a day (to everyone or to one tag);
- a 服务号 (service account) may mass-send to everyone 4 times a calendar month, and each
  follower receives at most 4 mass sends a month however they were sent.

The service's limit is per follower, which this app cannot see. We approximate it per channel:
4 mass sends a calendar month for the channel, which is exact when every send goes to all
followers or to one tag (every follower of the tag gets each send) and conservative otherwise.

Only channels in `mode: "mass_send"` count: freepublish (`mode: "publish"`) has no daily
quota. Days and months are counted in the channel's own zone when it has one, else in the
team's (the same rule as the other quotas in quotas.py). A post counts when it takes or took
a slot (scheduled, publishing, published …); failed, missed and cancelled posts do not. A
multi-article send (头条 + 次条, groups.py) is one mass send however many articles it has.

No Flask here: the calendar, the schedule action and the engine call these functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from ...channels.base import Finding
from ...config import DEFAULT_TIMEZONE
from ...errors import N_
from ...models import Channel, Post
from ...timeutil import as_utc

# Same as quotas.COUNTED_STATES (not imported: quotas imports this module).
COUNTED_STATES: tuple[str, ...] = (
    "scheduled", "retrying", "publishing", "published", "awaiting_staff", "unknown")
KIND = "wechat_mp"
# How far ahead next_allowed_time looks for room before giving up on the schedule's own
# count (a channel booked solid for years is not a real plan).
MAX_PERIODS_AHEAD = 800
Period = Literal["day", "month"]

REFUSALS: dict[str, str] = {
    "day": N_("%(channel)s is a subscription account: it may mass-send once a day and "
              "%(day)s already has its mass send. Choose another day."),
    "month": N_("%(channel)s is a service account: it may mass-send %(quota)s times a month "
                "and %(month)s already has %(count)s. Choose another month."),
}
CALENDAR_LABELS: dict[str, str] = {
    "day": N_("%(channel)s: the day's mass send is taken (subscription account, 1 a day)"),
    "month": N_("%(channel)s: %(count)s of %(quota)s mass sends this month (service account)"),
}
MOVED_REASON = N_("Mass-send quota used up; moved to %(when)s.")


@dataclass(frozen=True)
class MassSendQuota:
    """`allowed` mass sends per `period` (local day or calendar month) of one channel."""

    period: Period
    allowed: int
    account_type: str


def quota_of(channel: Channel) -> MassSendQuota | None:
    """The mass-send quota of a channel, or None when it has none (another kind, or a
    公众号 channel in freepublish mode)."""
    if channel.kind != KIND:
        return None
    config = channel.config or {}
    if config.get("mode") != "mass_send":
        return None
    if config.get("account_type") == "service":
        return MassSendQuota("month", 4, "service")
    # A missing or unknown account type is treated as a subscription account, the common
    # kind; the channel settings form requires the field.
    return MassSendQuota("day", 1, "subscription")


def zone_of(channel: Channel, team_tz: str | None) -> ZoneInfo:
    return ZoneInfo(channel.timezone or team_tz or DEFAULT_TIMEZONE)


def period_days(period: Period, day: date) -> tuple[date, date]:
    """[first day, day after the last) of the period holding the local `day`."""
    if period == "day":
        return day, day + timedelta(days=1)
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _utc_midnight(day: date, zone: ZoneInfo) -> datetime:
    return as_utc(datetime(day.year, day.month, day.day, tzinfo=zone))


def _at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """`wall` o'clock on the local `day`, in UTC (a wall time a DST gap skips moves on)."""
    local = datetime.combine(day, wall.replace(tzinfo=None), tzinfo=zone)
    return as_utc(local)


def send_unit():
    """One mass send: a multi-article send's key, else the post itself."""
    return func.coalesce(Post.send_group, cast(Post.id, String))


def used(session: Session, channel_id: int, first: date, following: date, zone: ZoneInfo,
         *, exclude_post_id: int | None = None, exclude_group: str | None = None) -> int:
    """Mass sends of the channel taking a slot in the local days [first, following)."""
    query = select(func.count(func.distinct(send_unit()))).where(
        Post.channel_id == channel_id, Post.status.in_(COUNTED_STATES),
        Post.scheduled_at >= _utc_midnight(first, zone),
        Post.scheduled_at < _utc_midnight(following, zone))
    if exclude_post_id is not None:
        query = query.where(Post.id != exclude_post_id)
    if exclude_group is not None:
        query = query.where(Post.send_group.is_(None) | (Post.send_group != exclude_group))
    return session.scalar(query) or 0


def check(session: Session, post: Post, when: datetime, *, tz: str | None = None
          ) -> list[Finding]:
    """An error when the period of `when` already holds the channel's mass sends (this post
    excluded, so moving it within its own day or month is fine)."""
    channel = post.channel
    quota = quota_of(channel)
    if quota is None:
        return []
    zone = zone_of(channel, tz)
    local_day = as_utc(when).astimezone(zone).date()
    first, following = period_days(quota.period, local_day)
    if session.scalar(select(func.count(Post.id)).where(
            Post.channel_id == channel.id, Post.status.in_(("scheduled", "retrying")),
            Post.scheduled_at == as_utc(when), Post.id != post.id)):
        return []  # it joins the send at that time (头条 + 次条): no extra mass send
    taken = used(session, channel.id, first, following, zone, exclude_post_id=post.id,
                 exclude_group=post.send_group)
    if taken < quota.allowed:
        return []
    return [Finding("mass_send_quota", "error", REFUSALS[quota.period],
                    {"channel": channel.name, "quota": quota.allowed, "count": taken,
                     "day": local_day.isoformat(), "month": first.strftime("%Y-%m")},
                    field="scheduled_at")]


def next_allowed_time(session: Session, channel: Channel, when: datetime, *,
                      tz: str | None = None, exclude_post_id: int | None = None,
                      full_through: datetime | None = None) -> datetime:
    """The earliest time at or after `when`, at `when`'s local wall-clock time, whose day
    (subscription) or month (service) still has room for a mass send.

    `full_through`: the period holding this instant (and every earlier one) is taken as full
    whatever the schedule says — the service just refused with 45028, so sends made outside
    this app (the 公众平台 website) used it up. A channel without a mass-send quota then moves
    to the next day. `exclude_post_id` is the post being placed (it does not count itself).
    """
    zone = zone_of(channel, tz)
    quota = quota_of(channel)
    period: Period = quota.period if quota else "day"
    local = as_utc(when).astimezone(zone)
    wall = local.time()
    day = local.date()
    if full_through is not None:
        _, after_full = period_days(period, as_utc(full_through).astimezone(zone).date())
        day = max(day, after_full)
    if quota is None:
        return as_utc(when) if day == local.date() else _at(day, wall, zone)
    for _ in range(MAX_PERIODS_AHEAD):
        first, following = period_days(period, day)
        if used(session, channel.id, first, following, zone,
                exclude_post_id=exclude_post_id) < quota.allowed:
            return as_utc(when) if day == local.date() else _at(day, wall, zone)
        day = following
    return _at(day, wall, zone)


def next_allowed_time_for(session: Session, post: Post, when: datetime | None = None, *,
                          tz: str | None = None) -> datetime:
    """next_allowed_time for a post (not counting itself), from `when` or its own time."""
    start = when or post.scheduled_at
    if start is None:
        raise ValueError("the post has no time: give `when`")
    return next_allowed_time(session, post.channel, start, tz=tz, exclude_post_id=post.id)


@dataclass(frozen=True)
class FullDay:
    """A local day of the view lying in a full (or over-full) mass-send period."""

    channel_id: int
    day: date
    count: int
    quota: int
    period: Period

    @property
    def over(self) -> bool:
        return self.count > self.quota


def usage(session: Session, start: datetime, end: datetime, *, tz: str,
          channel_ids: Iterable[int] | None = None) -> list[FullDay]:
    """Every day in the view [start, end) (days in `tz`) lying in a channel's full mass-send
    period: the day itself for a subscription account, each day of the month for a service
    account. Periods are counted in the channel's zone (`tz` standing in for the team's)."""
    wanted = set(channel_ids) if channel_ids is not None else None
    view = ZoneInfo(tz)
    first_view = as_utc(start).astimezone(view).date()
    last_view = (as_utc(end) - timedelta(microseconds=1)).astimezone(view).date()
    out: list[FullDay] = []
    for channel in session.scalars(select(Channel).where(Channel.kind == KIND)):
        quota = quota_of(channel)
        if quota is None or (wanted is not None and channel.id not in wanted):
            continue
        zone = zone_of(channel, tz)
        lo, _ = period_days(quota.period, first_view - timedelta(days=1))
        _, hi = period_days(quota.period, last_view + timedelta(days=1))
        rows = session.execute(select(Post.scheduled_at, send_unit()).where(
            Post.channel_id == channel.id, Post.status.in_(COUNTED_STATES),
            Post.scheduled_at >= _utc_midnight(lo, zone),
            Post.scheduled_at < _utc_midnight(hi, zone)).distinct())
        counts: dict[tuple[date, date], int] = defaultdict(int)
        seen: set[str] = set()
        for t, unit in rows:
            if unit in seen:
                continue  # a multi-article send counts once
            seen.add(unit)
            counts[period_days(quota.period, as_utc(t).astimezone(zone).date())] += 1
        for (first, following), n in counts.items():
            if n < quota.allowed:
                continue
            day = max(first, first_view)
            while day < following and day <= last_view:
                out.append(FullDay(channel.id, day, n, quota.allowed, quota.period))
                day += timedelta(days=1)
    return sorted(out, key=lambda f: (f.day, f.channel_id))


def moved_reason_params(moved_to: datetime, channel: Channel, tz: str | None) -> dict[str, str]:
    """Params of MOVED_REASON: the new time in the channel's (or team's) zone, readable in any
    language."""
    zone = zone_of(channel, tz)
    return {"when": f"{as_utc(moved_to).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"}
