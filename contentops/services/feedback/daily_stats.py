"""Daily statistics pull: services that publish yesterday's figures once a day (公众号
datacube) are asked once per channel and day, across every scheduler node.

- Which day: yesterday in the service's calendar (Asia/Shanghai), and not before
  `not_before_hour` there (the datacube pages: "请在每日8:00后查询昨日数据").
- Once across nodes: a job_runs row (job "daily_stats", period "<channel id>:<day>") decides
  which node pulls; when the pull fails (ChannelError) or the service says its figures are
  still incomplete (is_delay), the row is released so a later tick, on any node, retries.
  A node that dies mid-pull leaves the row claimed: nothing was applied, and the next day's
  pull covers the same posts again (the figures are running totals).
- Totals never go backwards (`apply_pulled_totals`); comments are events with stable ids,
  so a re-pull counts each once. They are ingested before the totals are raised, so a
  comment count that is also reported as a total is never added on top of itself.
- A post the service did not report (公众号 leaves out articles with very few interactions)
  is marked in its progress (`wx_stats.reported = false`) and the pages say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...channels.base import ChannelError, DailyStats, StatsPost
from ...models import Channel, ChannelDailyStats, Post
from .. import system
from .ingest import MAX_BATCH, apply_pulled_totals, ingest

log = logging.getLogger(__name__)

JOB = "daily_stats"
# The only daily-statistics service so far is WeChat's, which counts days in Beijing time.
STATS_ZONE = ZoneInfo("Asia/Shanghai")
DEFAULT_NOT_BEFORE_HOUR = 8
# Posts published longer ago than this are not asked about (WeChat counts 30 days).
WINDOW = timedelta(days=31)


@dataclass
class ChannelReport:
    day: date
    posts: int = 0          # posts the service reported
    unreported: int = 0     # posts it did not name
    gained: int = 0         # posts whose counters went up
    comments: int = 0       # new comments
    delayed: bool = False   # the service's figures were incomplete: pulled again later
    error: str | None = None


def stats_day(now: datetime) -> date:
    """The day whose statistics are pulled at `now`: yesterday in the service's calendar."""
    return now.astimezone(STATS_ZONE).date() - timedelta(days=1)


def pull_channel(session: Session, channel: Channel, adapter: Any, *, day: date,
                 now: datetime) -> ChannelReport:
    """Ask one channel for `day` and apply the answer. The caller commits."""
    posts = list(session.scalars(select(Post).where(
        Post.channel_id == channel.id, Post.status == "published",
        Post.published_at.is_not(None), Post.published_at >= now - WINDOW)))
    items = [StatsPost(post_id=p.id, title=p.title, progress=dict(p.progress or {}),
                       published_on=p.published_at.astimezone(STATS_ZONE).date(),
                       external_id=p.external_id, url=p.external_url) for p in posts]
    report = ChannelReport(day=day)
    stats: DailyStats = adapter.fetch_daily_stats(items, day) if items else DailyStats(day=day)
    report.delayed = stats.delayed
    events = [{**event, "post_id": pid} for pid, found in sorted(stats.posts.items())
              for event in found.comments]
    for start in range(0, len(events), MAX_BATCH):
        result = ingest(session, events[start:start + MAX_BATCH], now=now, source="pull")
        report.comments += result.accepted
    by_id = {p.id: p for p in posts}
    for pid, found in stats.posts.items():
        post = by_id.get(pid)
        if post is None:
            continue
        if found.reported:
            report.posts += 1
        else:
            report.unreported += 1
        if found.progress:
            # A new dict: the JSON column notices replacement, not in-place changes.
            post.progress = {**(post.progress or {}), **found.progress}
    gains = apply_pulled_totals(
        session, {pid: found.totals for pid, found in stats.posts.items() if found.totals},
        now=now)
    report.gained = len(gains)
    if stats.summary is not None:
        _store_summary(session, channel.id, day, stats.summary, now)
    return report


def _store_summary(session: Session, channel_id: int, day: date, figures: dict[str, int],
                   now: datetime) -> None:
    row = session.scalar(select(ChannelDailyStats).where(
        ChannelDailyStats.channel_id == channel_id, ChannelDailyStats.day == day))
    if row is None:
        row = ChannelDailyStats(channel_id=channel_id, day=day)
        session.add(row)
    row.reads = int(figures.get("read_user", 0))
    row.likes = int(figures.get("like_user", 0)) + int(figures.get("zaikan_user", 0))
    row.shares = int(figures.get("share_user", 0))
    row.comments = int(figures.get("comment_count", 0))
    row.figures = dict(figures)
    row.updated_at = now


def collect_daily_stats(session: Session, *, now: datetime, node_id: str,
                        adapter_for: Callable[[Channel], Any],
                        not_before_hour: int = DEFAULT_NOT_BEFORE_HOUR
                        ) -> dict[int, ChannelReport]:
    """One scheduler tick: pull yesterday's statistics of every capable channel that no
    node has pulled yet today. Returns what this node did, per channel id."""
    if now.astimezone(STATS_ZONE).hour < not_before_hour:
        return {}
    day = stats_day(now)
    done: dict[int, ChannelReport] = {}
    channels = session.scalars(select(Channel).where(Channel.active.is_(True))
                               .order_by(Channel.id)).all()
    for channel in channels:
        try:
            adapter = adapter_for(channel)
        except (KeyError, ValueError):
            continue
        if not adapter.capabilities.daily_stats:
            continue
        period = f"{channel.id}:{day.isoformat()}"
        if not system.claim_period(session, JOB, period, node_id, now=now):
            continue
        try:
            report = pull_channel(session, channel, adapter, day=day, now=now)
            session.commit()
        except ChannelError as exc:
            session.rollback()
            log.warning("statistics of channel %s for %s not pulled: %s", channel.id, day, exc)
            system.release_period(session, JOB, period)
            done[channel.id] = ChannelReport(day=day, error=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one channel's failure must not stop the others
            session.rollback()
            log.exception("statistics of channel %s for %s failed", channel.id, day)
            system.release_period(session, JOB, period)
            done[channel.id] = ChannelReport(day=day, error=type(exc).__name__)
            continue
        if report.delayed:
            # What came is applied (totals only go up); the rest is asked for again later.
            system.release_period(session, JOB, period)
        done[channel.id] = report
    return done


def not_reported(progress: Any) -> bool:
    """The service's last daily pull did not name this post (see the module docstring)."""
    stats = progress.get("wx_stats") if isinstance(progress, dict) else None
    return isinstance(stats, dict) and stats.get("reported") is False


def account_days(session: Session, *, start: date, end: date,
                 channel_id: int | None = None, limit: int = 30) -> list[dict[str, Any]]:
    """The channels' own daily figures (公众号 getbizsummary) between two days, newest first,
    at most `limit` rows."""
    query = (select(ChannelDailyStats, Channel.name)
             .join(Channel, Channel.id == ChannelDailyStats.channel_id)
             .where(ChannelDailyStats.day >= start, ChannelDailyStats.day <= end)
             .order_by(ChannelDailyStats.day.desc(), Channel.name))
    if channel_id:
        query = query.where(ChannelDailyStats.channel_id == channel_id)
    return [{"day": row.day, "channel": name, "reads": row.reads, "likes": row.likes,
             "shares": row.shares, "comments": row.comments}
            for row, name in session.execute(query.limit(limit))]
