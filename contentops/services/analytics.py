"""Analytics over post totals and hourly buckets: what works for whom, where and when.

Every report takes the same `Filters` and returns plain rows (dicts), so the page, the
charts and the CSV export show exactly the same numbers.

Definitions (used everywhere):
- engagement = likes + comments + shares; engagement rate = engagement / reads;
- a report's posts are published posts whose `published_at` falls in the range;
- posts handed to staff (manual, wecom_customer) add "reached" (customers or groups the
  staff's sends reached), "staff_confirmed" of "staff_total" and their confirmation rate;
- "totals over time" sums what posts gained per day (from the hourly buckets) in the
  viewer's time zone; "best time" groups posts by the weekday and hour they went out.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..models import (
    METRICS,
    Audience,
    Campaign,
    Channel,
    ContentPiece,
    MetricBucket,
    Post,
    Style,
)

# Staff handoff totals summed next to the metrics (posts.staff_* / posts.reached).
HANDOFF: tuple[str, ...] = ("reached", "staff_confirmed", "staff_total")
SUMMED: tuple[str, ...] = (*METRICS, *HANDOFF)

DIMENSIONS: dict[str, tuple[Any, Any]] = {
    # name -> (grouping column, model with id/name)
    "audience": (ContentPiece.audience_id, Audience),
    "style": (ContentPiece.style_id, Style),
    "channel": (Post.channel_id, Channel),
    "campaign": (ContentPiece.campaign_id, Campaign),
}


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None  # inclusive, aware
    end: datetime | None = None  # exclusive, aware
    channel_id: int | None = None
    audience_id: int | None = None
    style_id: int | None = None
    campaign_id: int | None = None

    @classmethod
    def from_dates(cls, start: date | None, end: date | None, tz: str,
                   **ids: int | None) -> Filters:
        """Whole local days [start, end] in the viewer's zone."""
        zone = ZoneInfo(tz)
        return cls(
            start=datetime.combine(start, time(), zone).astimezone(UTC) if start else None,
            end=(datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
                 if end else None),
            **ids)


def _rate(engaged: int, reads: int) -> float | None:
    return engaged / reads if reads else None


def _filter_posts(query: Select, f: Filters, *, by_time: bool = True) -> Select:
    query = query.where(Post.status == "published")
    if by_time and f.start is not None:
        query = query.where(Post.published_at >= f.start)
    if by_time and f.end is not None:
        query = query.where(Post.published_at < f.end)
    if f.channel_id:
        query = query.where(Post.channel_id == f.channel_id)
    if f.audience_id:
        query = query.where(ContentPiece.audience_id == f.audience_id)
    if f.style_id:
        query = query.where(ContentPiece.style_id == f.style_id)
    if f.campaign_id:
        query = query.where(ContentPiece.campaign_id == f.campaign_id)
    return query


def _sums() -> list:
    return [func.coalesce(func.sum(getattr(Post, m)), 0).label(m) for m in SUMMED]


def _row(values: dict[str, int], posts: int) -> dict[str, Any]:
    engaged = values["likes"] + values["comments"] + values["shares"]
    out = {"posts": posts, **{m: int(values[m]) for m in METRICS}, "engagement": engaged,
           "engagement_rate": _rate(engaged, values["reads"])}
    out.update({m: int(values.get(m) or 0) for m in HANDOFF})
    out["confirmation_rate"] = _rate(out["staff_confirmed"], out["staff_total"])
    return out


# --- Totals -----------------------------------------------------------------------------------

def summary(session: Session, f: Filters) -> dict[str, Any]:
    query = _filter_posts(select(func.count(Post.id), *_sums()).join(Post.piece), f)
    row = session.execute(query).one()
    return _row(dict(zip(SUMMED, row[1:], strict=True)), row[0])


def totals_over_time(session: Session, f: Filters, tz: str) -> list[dict[str, Any]]:
    """Per local day, what the filtered posts gained (all published posts, any age).

    The range applies to when feedback arrived, not to when posts went out.
    """
    query = (select(MetricBucket.hour, *[func.sum(getattr(MetricBucket, m)) for m in METRICS])
             .join(Post, Post.id == MetricBucket.post_id).join(Post.piece)
             .group_by(MetricBucket.hour))
    query = _filter_posts(query, f, by_time=False)
    if f.start is not None:
        query = query.where(MetricBucket.hour >= f.start)
    if f.end is not None:
        query = query.where(MetricBucket.hour < f.end)
    zone = ZoneInfo(tz)
    days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for hour, *values in session.execute(query):
        day = hour.astimezone(zone).date()
        for m, v in zip(METRICS, values, strict=True):
            days[day][m] += int(v or 0)
    if not days:
        return []
    # A continuous axis: days without feedback show as zero, not as a gap.
    first, last = min(days), max(days)
    out = []
    current = first
    while current <= last:
        values = days.get(current, dict.fromkeys(METRICS, 0))
        out.append({"day": current.isoformat(), **values})
        current += timedelta(days=1)
    return out


# --- Who and where ------------------------------------------------------------------------

def _names(session: Session, model, ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = [i for i in set(ids) if i is not None]
    names: dict[int | None, str] = {None: ""}
    if wanted:
        names.update(dict(session.execute(select(model.id, model.name)
                                          .where(model.id.in_(wanted))).all()))
    return names


def breakdown(session: Session, f: Filters, dimension: str) -> list[dict[str, Any]]:
    """Totals and engagement rate per audience, style, channel or campaign."""
    column, model = DIMENSIONS[dimension]
    query = _filter_posts(select(column, func.count(Post.id), *_sums()).join(Post.piece), f)
    rows = session.execute(query.group_by(column)).all()
    names = _names(session, model, (r[0] for r in rows))
    out = [{"id": r[0], "name": names.get(r[0], ""),
            **_row(dict(zip(SUMMED, r[2:], strict=True)), r[1])} for r in rows]
    return sorted(out, key=lambda r: (-(r["engagement_rate"] or -1), r["name"]))


def matrix(session: Session, f: Filters, rows: str = "audience",
           cols: str = "style") -> dict[str, Any]:
    """Engagement by two dimensions (audience × style by default), for the heatmap."""
    row_col, row_model = DIMENSIONS[rows]
    col_col, col_model = DIMENSIONS[cols]
    query = _filter_posts(select(row_col, col_col, func.count(Post.id), *_sums())
                          .join(Post.piece), f)
    data = session.execute(query.group_by(row_col, col_col)).all()
    row_names = _names(session, row_model, (r[0] for r in data))
    col_names = _names(session, col_model, (r[1] for r in data))
    cells = {}
    for r, c, n, *values in data:
        cells[(r, c)] = _row(dict(zip(SUMMED, values, strict=True)), n)
    row_ids = sorted({r for r, _ in cells}, key=lambda i: (i is None, row_names.get(i, "")))
    col_ids = sorted({c for _, c in cells}, key=lambda i: (i is None, col_names.get(i, "")))
    return {
        "rows": [{"id": i, "name": row_names.get(i, "")} for i in row_ids],
        "cols": [{"id": i, "name": col_names.get(i, "")} for i in col_ids],
        "cells": cells,
    }


def matrix_rows(m: dict[str, Any], rows: str, cols: str) -> list[dict[str, Any]]:
    """The matrix flattened, one line per cell (CSV export)."""
    out = []
    for r in m["rows"]:
        for c in m["cols"]:
            cell = m["cells"].get((r["id"], c["id"]))
            if cell:
                out.append({rows: r["name"], cols: c["name"], **cell})
    return out


def ranked_posts(session: Session, f: Filters, *, limit: int = 10, bottom: bool = False,
                 min_reads: int = 1) -> list[dict[str, Any]]:
    """Best (or worst) posts by engagement rate among posts with at least `min_reads`.

    Ties go to the post with more reads (for the top) or fewer (for the bottom).
    """
    engaged = Post.likes + Post.comments + Post.shares
    rate = engaged * 1.0 / Post.reads
    query = _filter_posts(
        select(Post.id, ContentPiece.title, Post.title_override, Post.channel_id,
               Post.published_at, *[getattr(Post, m) for m in METRICS])
        .join(Post.piece).where(Post.reads >= max(min_reads, 1)), f)
    order = [rate.asc(), Post.reads.asc()] if bottom else [rate.desc(), Post.reads.desc()]
    rows = session.execute(query.order_by(*order, Post.id).limit(limit)).all()
    names = _names(session, Channel, (r[3] for r in rows))
    out = []
    for pid, title, override, channel_id, published_at, *values in rows:
        metrics = dict(zip(METRICS, values, strict=True))
        out.append({"id": pid, "title": override or title, "channel": names.get(channel_id, ""),
                    "published_at": published_at, **_row(metrics, 1)})
    for r in out:
        r.pop("posts")
    return out


def campaign_report(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Per campaign: posts, reach (reads) and engagement against the campaign's goal.

    The campaign filter and the date range apply; campaigns without posts still show.
    """
    query = _filter_posts(
        select(ContentPiece.campaign_id, func.count(Post.id), *_sums()).join(Post.piece)
        .where(ContentPiece.campaign_id.is_not(None)), f)
    sums = {r[0]: r for r in session.execute(query.group_by(ContentPiece.campaign_id))}
    campaigns = select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.name)
    if f.campaign_id:
        campaigns = campaigns.where(Campaign.id == f.campaign_id)
    out = []
    for campaign in session.scalars(campaigns):
        row = sums.get(campaign.id)
        values = dict(zip(SUMMED, row[2:], strict=True)) if row else dict.fromkeys(SUMMED, 0)
        data = _row(values, row[1] if row else 0)
        goal = campaign.goal_reads
        out.append({"id": campaign.id, "name": campaign.name, "starts_on": campaign.starts_on,
                    "ends_on": campaign.ends_on, "goal": campaign.goal, "goal_reads": goal,
                    "goal_progress": (data["reads"] / goal) if goal else None, **data})
    return out


# --- When -----------------------------------------------------------------------------------

def best_times(session: Session, f: Filters, tz: str) -> dict[tuple[int, int], dict[str, Any]]:
    """(weekday 0=Monday, local hour) -> posts, average reads and engagement rate.

    The engagement rate of a slot is its total engagement over its total reads, so a
    post with 3 reads cannot outweigh one with 3,000.
    """
    query = _filter_posts(
        select(Post.published_at, Post.reads, Post.likes, Post.comments, Post.shares)
        .join(Post.piece).where(Post.published_at.is_not(None)), f)
    zone = ZoneInfo(tz)
    slots: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for published_at, reads, likes, comments, shares in session.execute(query):
        local = published_at.astimezone(zone)
        slot = slots[(local.weekday(), local.hour)]
        slot[0] += 1
        slot[1] += reads
        slot[2] += likes + comments + shares
    return {key: {"posts": n, "reads": reads, "avg_reads": reads / n, "engagement": engaged,
                  "engagement_rate": _rate(engaged, reads)}
            for key, (n, reads, engaged) in slots.items()}


def best_time_rows(slots: dict[tuple[int, int], dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"weekday": wd, "hour": h, **v} for (wd, h), v in sorted(slots.items())]


def suggest_time(session: Session, *, channel_id: int | None, audience_id: int | None,
                 tz: str, now: datetime, min_posts: int = 2,
                 lookback: timedelta = timedelta(days=180)) -> dict[str, Any] | None:
    """The weekday and hour whose posts engaged best for this channel and audience, and
    its next occurrence after `now` — the suggestion shown when scheduling.

    Needs at least `min_posts` posts in a slot, so one lucky post does not decide.
    Without enough history for the audience, falls back to the channel as a whole.
    """
    for aud in ([audience_id, None] if audience_id else [None]):
        f = Filters(start=now - lookback, end=now, channel_id=channel_id, audience_id=aud)
        slots = {k: v for k, v in best_times(session, f, tz).items()
                 if v["posts"] >= min_posts and v["engagement_rate"] is not None}
        if not slots:
            continue
        (weekday, hour), best = max(
            slots.items(), key=lambda kv: (kv[1]["engagement_rate"], kv[1]["avg_reads"]))
        return {"weekday": weekday, "hour": hour, "posts": best["posts"],
                "engagement_rate": best["engagement_rate"], "avg_reads": best["avg_reads"],
                "audience_specific": aud is not None,
                "next_at": next_occurrence(weekday, hour, tz, now)}
    return None


def next_occurrence(weekday: int, hour: int, tz: str, now: datetime) -> datetime:
    """The next local `weekday` at `hour`:00 strictly after `now`, as UTC."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    days = (weekday - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), time(hour), zone)
    if candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=7), time(hour), zone)
    return candidate.astimezone(UTC)


# --- Export ---------------------------------------------------------------------------------

def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        line = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, float):
                value = f"{value:.4f}"
            elif isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
            elif value is None:
                value = ""
            line.append(value)
        writer.writerow(line)
    return buffer.getvalue()
