"""Reading feedback back: per-day timelines, sparkline trends and received comment texts.

Everything here reads the hourly buckets and events that ingest wrote; nothing writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from ...models import METRICS, FeedbackEvent, MetricBucket

_buckets = MetricBucket.__table__


def post_timeline(session: Session, post_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Per day (UTC), what the given posts gained; for the piece page's timeline."""
    ids = list(post_ids)
    if not ids:
        return []
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for row in session.execute(select(_buckets.c.hour, *[_buckets.c[m] for m in METRICS])
                               .where(_buckets.c.post_id.in_(ids)).order_by(_buckets.c.hour)):
        hour = row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
        day = hour.date().isoformat()
        for m, v in zip(METRICS, row[1:], strict=True):
            days[day][m] += v
    return [{"day": d, **v} for d, v in sorted(days.items())]


def trends(session: Session, post_ids: Iterable[int], *, now: datetime,
           days: int = 14, metric: str = "reads") -> dict[int, list[int]]:
    """Daily gains of one metric over the last `days` days per post (sparklines)."""
    ids = list(post_ids)
    if metric not in METRICS:
        raise ValueError(metric)
    start = (now.astimezone(UTC) - timedelta(days=days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    out = {pid: [0] * days for pid in ids}
    if not ids:
        return out
    rows = session.execute(
        select(_buckets.c.post_id, _buckets.c.hour, _buckets.c[metric])
        .where(_buckets.c.post_id.in_(ids), _buckets.c.hour >= start))
    for pid, hour, value in rows:
        hour = hour if hour.tzinfo else hour.replace(tzinfo=UTC)
        slot = (hour - start).days
        if 0 <= slot < days:
            out[pid][slot] += value
    return out


def received_comments(session: Session, post_ids: Iterable[int],
                      limit: int = 200) -> list[FeedbackEvent]:
    """Comment events with text that services pushed for these posts, newest first."""
    ids = list(post_ids)
    if not ids:
        return []
    return list(session.scalars(
        # The kind as a literal: SQLite uses the partial comments index only when the
        # query's condition matches the index's own (a bound parameter cannot).
        select(FeedbackEvent).where(FeedbackEvent.post_id.in_(ids),
                                    FeedbackEvent.kind == literal("comment", literal_execute=True),
                                    FeedbackEvent.text.is_not(None))
        .order_by(FeedbackEvent.occurred_at.desc()).limit(limit)))
