"""The calendar's data: the event feed, conflicts, the unscheduled list, exports, iCalendar.

The feed must answer a month of thousands of posts in a few tens of milliseconds, so it
selects only the columns it shows (one indexed range scan on posts.scheduled_at joined to
content_pieces) and resolves names from the small lookup tables in memory instead of
loading ORM objects and relationships per post.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from ..errors import N_, ValidationError
from ..models import Audience, Campaign, Channel, ContentPiece, Post, Style, User
from ..timeutil import as_utc, is_valid_timezone, isoformat
from . import audit
from .quotas import COUNTED_STATES
from .scheduling import SCHEDULABLE

# What the status mark on an event can say: the post's publishing state once it left the
# planning stage, else the piece's review state ("scheduled" = approved and waiting).
DISPLAY_STATUSES: tuple[str, ...] = (
    "draft", "in_review", "changes_requested", "approved", "scheduled", "publishing",
    "published", "retrying", "failed", "unknown", "awaiting_staff", "missed", "cancelled",
)
STATUS_LABELS: dict[str, str] = {
    "draft": N_("Draft"), "in_review": N_("In review"),
    "changes_requested": N_("Changes requested"), "approved": N_("Approved"),
    "scheduled": N_("Scheduled"), "publishing": N_("Publishing"), "published": N_("Published"),
    "retrying": N_("Retrying"), "failed": N_("Failed"), "unknown": N_("Unknown outcome"),
    "awaiting_staff": N_("Awaiting staff"), "missed": N_("Missed"),
    "cancelled": N_("Cancelled"),
}
# Publishing states that speak for themselves on the calendar.
_POST_STATE_SHOWN = {"publishing", "published", "retrying", "failed", "unknown",
                     "awaiting_staff", "missed", "cancelled"}
MAX_RANGE_DAYS = 400
FILTER_KEYS: tuple[str, ...] = ("channel", "audience", "style", "campaign", "author")


def display_status(post_status: str, piece_status: str, version: int,
                   approved_version: int | None) -> str:
    if post_status in _POST_STATE_SHOWN:
        return post_status
    if piece_status == "approved" and approved_version == version:
        return "scheduled" if post_status == "scheduled" else "approved"
    return piece_status if piece_status in DISPLAY_STATUSES else "draft"


@dataclass
class Filters:
    channel: list[int] = field(default_factory=list)
    audience: list[int] = field(default_factory=list)
    style: list[int] = field(default_factory=list)
    campaign: list[int] = field(default_factory=list)
    author: list[int] = field(default_factory=list)
    status: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(getattr(self, key) for key in (*FILTER_KEYS, "status"))

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters (comma-separated), for links that keep the view."""
        out = {key: ",".join(str(v) for v in getattr(self, key)) for key in FILTER_KEYS}
        out["status"] = ",".join(self.status)
        return {k: v for k, v in out.items() if v}


def query_values(args: Mapping[str, Sequence[str]], key: str) -> list[str]:
    raw = args.get(key) or []
    if isinstance(raw, str):
        raw = [raw]
    return [part.strip() for item in raw for part in str(item).split(",") if part.strip()]


def parse_filters(args: Mapping[str, Sequence[str]]) -> Filters:
    """Filters from query parameters (repeated or comma-separated). Bad values are refused."""
    errors: dict[str, list[str]] = {}
    filters = Filters()
    for key in FILTER_KEYS:
        ids = []
        for value in query_values(args, key):
            if not value.isdigit():
                errors[key] = [N_("Use numeric ids.")]
                break
            ids.append(int(value))
        setattr(filters, key, ids)
    statuses = query_values(args, "status")
    if any(s not in DISPLAY_STATUSES for s in statuses):
        errors["status"] = [N_("Unknown status.")]
    filters.status = statuses
    if errors:
        raise ValidationError(errors)
    return filters


def parse_timezone(name: str | None, default: str) -> str:
    if not name:
        return default
    if not is_valid_timezone(name):
        raise ValidationError({"timeZone": [N_("Choose a time zone from the list.")]})
    return name


def parse_moment(value: str, tz: str) -> datetime:
    """A range bound: a date, or a date-time with or without offset (then in `tz`)."""
    text = value.strip()
    if "T" in text:  # a '+' offset in an unencoded query string arrives as a space
        text = text.replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return as_utc(parsed)


def parse_range(start: str | None, end: str | None, tz: str) -> tuple[datetime, datetime]:
    if not start or not end:
        raise ValidationError({"start": [N_("Give a start and an end.")]})
    try:
        begin, finish = parse_moment(start, tz), parse_moment(end, tz)
    except ValueError:
        raise ValidationError({"start": [N_("Use ISO 8601 dates, e.g. 2026-11-01.")]}) from None
    if finish <= begin:
        raise ValidationError({"end": [N_("The end must be after the start.")]})
    if finish - begin > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationError({"end": [N_("Ask for at most %(days)s days at a time.")]},
                              params={"days": MAX_RANGE_DAYS})
    return begin, finish


# --- the feed -------------------------------------------------------------------------------

_COLUMNS = (
    Post.id, Post.piece_id, Post.channel_id, Post.scheduled_at, Post.status,
    Post.title_override, Post.reads, Post.likes, Post.comments, Post.shares, Post.clicks,
    Post.external_url, ContentPiece.title, ContentPiece.status.label("review_status"),
    ContentPiece.version, ContentPiece.approved_version, ContentPiece.audience_id,
    ContentPiece.style_id, ContentPiece.campaign_id, ContentPiece.author_id,
)


def _rows(session: Session, start: datetime, end: datetime, filters: Filters) -> list[Row]:
    query = (select(*_COLUMNS).join(ContentPiece, Post.piece_id == ContentPiece.id)
             .where(Post.scheduled_at >= start, Post.scheduled_at < end))
    if filters.channel:
        query = query.where(Post.channel_id.in_(filters.channel))
    if filters.audience:
        query = query.where(ContentPiece.audience_id.in_(filters.audience))
    if filters.style:
        query = query.where(ContentPiece.style_id.in_(filters.style))
    if filters.campaign:
        query = query.where(ContentPiece.campaign_id.in_(filters.campaign))
    if filters.author:
        query = query.where(ContentPiece.author_id.in_(filters.author))
    if "cancelled" not in filters.status:
        query = query.where(Post.status != "cancelled")
    return list(session.execute(query.order_by(Post.scheduled_at, Post.id)))


@dataclass
class Lookups:
    channels: dict[int, Channel]
    audiences: dict[int, str]
    styles: dict[int, str]
    campaigns: dict[int, str]
    authors: dict[int, str]


def _pairs(query: Any, session: Session) -> dict[int, str]:
    return {key: value for key, value in session.execute(query)}


def _lookups(session: Session, author_ids: Iterable[int]) -> Lookups:
    author_ids = set(author_ids)
    authors = _pairs(select(User.id, User.name).where(User.id.in_(author_ids)), session) \
        if author_ids else {}
    return Lookups(
        channels={c.id: c for c in session.scalars(select(Channel))},
        audiences=_pairs(select(Audience.id, Audience.name), session),
        styles=_pairs(select(Style.id, Style.name), session),
        campaigns=_pairs(select(Campaign.id, Campaign.name), session),
        authors=authors,
    )


def _conflicts(items: Iterable[tuple[int, int, int | None, datetime, str]],
               windows: Mapping[int, int]) -> dict[int, list[int]]:
    """post id -> ids of posts on the same channel and audience within the channel's window.

    items: (post id, channel id, audience id, scheduled_at, post status)."""
    groups: dict[tuple[int, int | None], list[tuple[datetime, int]]] = defaultdict(list)
    for post_id, channel_id, audience_id, when, status in items:
        if status in COUNTED_STATES:
            groups[(channel_id, audience_id)].append((when, post_id))
    out: dict[int, list[int]] = defaultdict(list)
    for (channel_id, _audience), entries in groups.items():
        window = timedelta(minutes=windows.get(channel_id) or 0)
        if window <= timedelta(0) or len(entries) < 2:
            continue
        entries.sort()
        # Sliding window over the sorted times: every pair closer than `window`.
        for i, (when, post_id) in enumerate(entries):
            j = i + 1
            while j < len(entries) and entries[j][0] - when < window:
                other = entries[j][1]
                out[post_id].append(other)
                out[other].append(post_id)
                j += 1
    return out


def _text_color(background: str) -> str:
    try:
        r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    except (ValueError, IndexError):
        return "#ffffff"
    return "#000000" if (0.299 * r + 0.587 * g + 0.114 * b) > 150 else "#ffffff"


@dataclass
class FeedItem:
    row: Row
    status: str
    conflicts: list[int]


def feed_items(session: Session, start: datetime, end: datetime, filters: Filters
               ) -> tuple[list[FeedItem], Lookups]:
    rows = _rows(session, start, end, filters)
    lookups = _lookups(session, {r.author_id for r in rows})
    windows = {cid: c.conflict_window_minutes for cid, c in lookups.channels.items()}
    max_window = timedelta(minutes=max(windows.values(), default=0) or 0)
    if filters.is_empty() and max_window == timedelta(0):
        conflict_source: Iterable = ()
    elif filters.is_empty():
        # Posts just outside the range can still conflict with ones inside it.
        edge = (select(Post.id, Post.channel_id, ContentPiece.audience_id, Post.scheduled_at,
                       Post.status).join(ContentPiece, Post.piece_id == ContentPiece.id))
        conflict_source = [
            *((r.id, r.channel_id, r.audience_id, r.scheduled_at, r.status) for r in rows),
            *session.execute(edge.where(Post.scheduled_at >= start - max_window,
                                        Post.scheduled_at < start)),
            *session.execute(edge.where(Post.scheduled_at >= end,
                                        Post.scheduled_at < end + max_window)),
        ]
    else:
        # Filters hide posts that still conflict (another style, another author): look at
        # every post of the shown channels, with only the four columns conflicts need.
        channel_ids = {r.channel_id for r in rows}
        conflict_source = session.execute(
            select(Post.id, Post.channel_id, ContentPiece.audience_id, Post.scheduled_at,
                   Post.status).join(ContentPiece, Post.piece_id == ContentPiece.id)
            .where(Post.channel_id.in_(channel_ids), Post.scheduled_at >= start - max_window,
                   Post.scheduled_at < end + max_window)) if channel_ids else ()
    conflicts = _conflicts(conflict_source, windows)
    wanted = set(filters.status)
    items = []
    for row in rows:
        status = display_status(row.status, row.review_status, row.version,
                                row.approved_version)
        if wanted and status not in wanted:
            continue
        items.append(FeedItem(row, status, conflicts.get(row.id, [])))
    return items, lookups


def _named(mapping: Mapping[int, str], key: int | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {"id": key, "name": mapping.get(key, "")}


def feed_events(session: Session, start: datetime, end: datetime, *, tz: str,
                filters: Filters, now: datetime, can_move: bool,
                translate: Callable[[str], str] = lambda s: s) -> list[dict[str, Any]]:
    """FullCalendar event objects for posts scheduled in [start, end), times in `tz`."""
    items, lookups = feed_items(session, start, end, filters)
    zone = ZoneInfo(tz)
    channels = lookups.channels
    labels = {key: translate(label) for key, label in STATUS_LABELS.items()}
    events = []
    for item in items:
        row = item.row
        channel = channels.get(row.channel_id)
        color = channel.color if channel is not None else "#6c757d"
        movable = row.status in SCHEDULABLE and row.scheduled_at > now
        classes = [f"co-status-{item.status}"]
        if item.conflicts:
            classes.append("co-conflict")
        events.append({
            "id": str(row.id),
            "title": row.title_override or row.title,
            "start": row.scheduled_at.astimezone(zone).isoformat(),
            "allDay": False,
            "backgroundColor": color,
            "borderColor": color,
            "textColor": _text_color(color),
            "editable": bool(can_move and movable),
            "classNames": classes,
            "extendedProps": {
                "post_id": row.id,
                "piece_id": row.piece_id,
                "status": item.status,
                "status_label": labels[item.status],
                "post_status": row.status,
                "review_status": row.review_status,
                "scheduled_at": isoformat(row.scheduled_at),
                "channel": {"id": row.channel_id,
                            "name": channel.name if channel is not None else "",
                            "kind": channel.kind if channel is not None else "",
                            "color": color},
                "audience": _named(lookups.audiences, row.audience_id),
                "style": _named(lookups.styles, row.style_id),
                "campaign": _named(lookups.campaigns, row.campaign_id),
                "author": _named(lookups.authors, row.author_id),
                "conflict": bool(item.conflicts),
                "conflicts_with": item.conflicts,
                "movable": movable,
                "external_url": row.external_url,
                "metrics": {"reads": row.reads, "likes": row.likes, "comments": row.comments,
                            "shares": row.shares, "clicks": row.clicks},
            },
        })
    return events


# --- side panel -----------------------------------------------------------------------------

def unscheduled(session: Session, filters: Filters, *, limit: int = 100) -> list[dict[str, Any]]:
    """Posts not on the calendar yet (drafts, approved-but-unscheduled), newest pieces first."""
    query = (select(Post.id, Post.piece_id, Post.channel_id, Post.title_override,
                    ContentPiece.title, ContentPiece.status.label("review_status"),
                    ContentPiece.version, ContentPiece.approved_version,
                    ContentPiece.audience_id, ContentPiece.style_id)
             .join(ContentPiece, Post.piece_id == ContentPiece.id)
             .where(Post.status == "unscheduled"))
    if filters.channel:
        query = query.where(Post.channel_id.in_(filters.channel))
    if filters.audience:
        query = query.where(ContentPiece.audience_id.in_(filters.audience))
    if filters.style:
        query = query.where(ContentPiece.style_id.in_(filters.style))
    if filters.campaign:
        query = query.where(ContentPiece.campaign_id.in_(filters.campaign))
    if filters.author:
        query = query.where(ContentPiece.author_id.in_(filters.author))
    rows = session.execute(query.order_by(ContentPiece.updated_at.desc(), Post.id).limit(limit))
    lookups = _lookups(session, ())
    out = []
    for row in rows:
        channel = lookups.channels.get(row.channel_id)
        out.append({
            "post_id": row.id, "piece_id": row.piece_id,
            "title": row.title_override or row.title,
            "status": display_status("unscheduled", row.review_status, row.version,
                                     row.approved_version),
            "channel": {"id": row.channel_id, "name": channel.name if channel else "",
                        "color": channel.color if channel else "#6c757d"},
            "audience": _named(lookups.audiences, row.audience_id),
            "style": _named(lookups.styles, row.style_id),
        })
    return out


# --- exports --------------------------------------------------------------------------------

EXPORT_FIELDS: tuple[str, ...] = (
    "post_id", "piece_id", "title", "channel", "audience", "style", "campaign", "author",
    "status", "scheduled_at", "scheduled_at_utc", "reads", "likes", "comments", "shares",
    "clicks", "external_url",
)


def export_rows(session: Session, start: datetime, end: datetime, *, tz: str,
                filters: Filters) -> list[dict[str, Any]]:
    items, lookups = feed_items(session, start, end, filters)
    zone = ZoneInfo(tz)
    out = []
    for item in items:
        row = item.row
        channel = lookups.channels.get(row.channel_id)
        out.append({
            "post_id": row.id, "piece_id": row.piece_id,
            "title": row.title_override or row.title,
            "channel": channel.name if channel else "",
            "audience": lookups.audiences.get(row.audience_id, ""),
            "style": lookups.styles.get(row.style_id, ""),
            "campaign": lookups.campaigns.get(row.campaign_id, ""),
            "author": lookups.authors.get(row.author_id, ""),
            "status": item.status,
            "scheduled_at": row.scheduled_at.astimezone(zone).isoformat(),
            "scheduled_at_utc": isoformat(row.scheduled_at),
            "reads": row.reads, "likes": row.likes, "comments": row.comments,
            "shares": row.shares, "clicks": row.clicks, "external_url": row.external_url or "",
        })
    return out


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a title starting with = + - @ must stay text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    # A BOM so Excel opens the UTF-8 (Chinese titles) correctly.
    return "\ufeff" + buffer.getvalue()


# --- iCalendar subscription -----------------------------------------------------------------

def regenerate_ical_token(session: Session, user: User, *, now: datetime) -> str:
    """A new secret for the user's feed URL; the old URL stops working at once."""
    user.ical_token = secrets.token_urlsafe(32)
    audit.record(session, "user.ical_token_regenerated", "user", user.id, actor=user, now=now)
    return user.ical_token


def user_for_ical_token(session: Session, token: str) -> User | None:
    if not token or len(token) > 64:
        return None
    user = session.scalar(select(User).where(User.ical_token == token))
    if user is None or not user.active:
        return None
    # Constant-time confirmation of the match the index found.
    return user if secrets.compare_digest(user.ical_token or "", token) else None


def ical_feed(session: Session, start: datetime, end: datetime, *, filters: Filters,
              base_url: str, now: datetime, calendar_name: str,
              translate: Callable[[str], str] = lambda s: s) -> bytes:
    """An RFC 5545 calendar of the posts in [start, end): one VEVENT per post, in UTC."""
    from icalendar import Calendar, Event

    items, lookups = feed_items(session, start, end, filters)
    host = base_url.split("://", 1)[-1].split("/", 1)[0] or "contentops"
    cal = Calendar()
    cal.add("prodid", "-//ContentOps//Calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", calendar_name)
    label_channel, label_status = translate(N_("Channel")), translate(N_("Status"))
    label_audience, label_style = translate(N_("Audience")), translate(N_("Style"))
    statuses = {key: translate(label) for key, label in STATUS_LABELS.items()}
    for item in items:
        row = item.row
        channel = lookups.channels.get(row.channel_id)
        channel_name = channel.name if channel else ""
        title = row.title_override or row.title
        link = f"{base_url}/pieces/{row.piece_id}"
        lines = [f"{label_channel}: {channel_name}", f"{label_status}: {statuses[item.status]}"]
        if row.audience_id is not None:
            lines.append(f"{label_audience}: {lookups.audiences.get(row.audience_id, '')}")
        if row.style_id is not None:
            lines.append(f"{label_style}: {lookups.styles.get(row.style_id, '')}")
        lines.append(link)
        event = Event()
        event.add("uid", f"post-{row.id}@{host}")
        event.add("dtstamp", now)
        event.add("dtstart", row.scheduled_at)
        event.add("dtend", row.scheduled_at + timedelta(minutes=30))
        event.add("summary", f"[{channel_name}] {title}")
        event.add("description", "\n".join(lines))
        event.add("url", link)
        event.add("categories", [channel_name or "-"])
        event.add("status", "CANCELLED" if item.status == "cancelled" else
                  "CONFIRMED" if item.status in ("scheduled", "published", "publishing")
                  else "TENTATIVE")
        event.add("x-contentops-status", item.status)
        cal.add_component(event)
    return cal.to_ical()


def default_ical_range(now: datetime) -> tuple[datetime, datetime]:
    """What a subscription shows: the last 30 days and the next year."""
    return now - timedelta(days=30), now + timedelta(days=365)


def month_range(day: date, tz: str) -> tuple[datetime, datetime]:
    """[first day of the month, first day of the next) in `tz`, as UTC."""
    zone = ZoneInfo(tz)
    first = datetime(day.year, day.month, 1, tzinfo=zone)
    following = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=zone)
    return as_utc(first), as_utc(following)
