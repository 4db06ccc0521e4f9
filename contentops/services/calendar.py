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
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from ..errors import N_, ValidationError
from ..models import Audience, Campaign, Channel, ContentPiece, Post, Style, User
from ..models.types import epoch_seconds
from ..timeutil import LocalClock, as_utc, is_valid_timezone, isoformat, resolve_local
from . import audit
from .publishing.actions import SCHEDULABLE
from .publishing.quotas import COUNTED_STATES

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


def parse_moment(value: str, tz: str, *, strict: bool = False,
                 fold: int | None = None) -> datetime:
    """A date, or a date-time with or without offset (then a wall-clock time in `tz`).

    A range bound is lenient: a bound in a DST gap or a repeated hour only widens or narrows
    a query by an hour. A time a post is moved to is `strict`: timeutil.resolve_local refuses
    a skipped time and a repeated one without `fold` (WallClockError).
    """
    text = value.strip()
    if "T" in text:  # a '+' offset in an unencoded query string arrives as a space
        text = text.replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        if strict:
            return resolve_local(parsed, tz, fold)
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

# Positions in _COLUMNS used by the hot loops. The time is whole epoch seconds (see
# models.types.epoch_seconds): the feed needs no datetime object per post.
_WHEN, _AUDIENCE, _STYLE, _AUTHOR = 3, 16, 17, 19
_COLUMNS = (
    Post.id, Post.piece_id, Post.channel_id, epoch_seconds(Post.scheduled_at).label("epoch"),
    Post.status, Post.title_override, Post.reads, Post.likes, Post.comments, Post.shares,
    Post.clicks, Post.external_url, ContentPiece.title,
    ContentPiece.status.label("review_status"), ContentPiece.version,
    ContentPiece.approved_version, ContentPiece.audience_id, ContentPiece.style_id,
    ContentPiece.campaign_id, ContentPiece.author_id, Post.send_group, Post.group_position,
)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _where_filters(query, filters: Filters):
    """The channel/audience/style/campaign/author filters shared by the feed and the side panel."""
    for column, wanted in ((Post.channel_id, filters.channel),
                           (ContentPiece.audience_id, filters.audience),
                           (ContentPiece.style_id, filters.style),
                           (ContentPiece.campaign_id, filters.campaign),
                           (ContentPiece.author_id, filters.author)):
        if wanted:
            query = query.where(column.in_(wanted))
    return query


def _rows(session: Session, start: datetime, end: datetime, filters: Filters) -> list[Row]:
    query = (select(*_COLUMNS).join(ContentPiece, Post.piece_id == ContentPiece.id)
             .where(Post.scheduled_at >= start, Post.scheduled_at < end))
    query = _where_filters(query, filters)
    if "cancelled" not in filters.status:
        query = query.where(Post.status != "cancelled")
    # Core execution on the session's connection: plain rows, no ORM loading machinery.
    return session.connection().execute(query.order_by(Post.scheduled_at, Post.id)).all()


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


def _conflicts(items: Iterable[tuple[int, int, int | None, int, str]],
               windows: Mapping[int, int]) -> dict[int, list[int]]:
    """post id -> ids of posts on the same channel and audience within the channel's window.

    items: (post id, channel id, audience id, scheduled_at in epoch seconds, post status);
    windows: channel id -> conflict window in minutes."""
    groups: dict[tuple[int, int | None], list[tuple[int, int]]] = defaultdict(list)
    for post_id, channel_id, audience_id, when, status in items:
        if status in COUNTED_STATES:
            groups[(channel_id, audience_id)].append((when, post_id))
    out: dict[int, list[int]] = defaultdict(list)
    for (channel_id, _audience), entries in groups.items():
        window = (windows.get(channel_id) or 0) * 60
        if window <= 0 or len(entries) < 2:
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


# One post of a feed: (row of _COLUMNS, display status, ids of conflicting posts). A plain
# tuple: building an object per post costs more than the rest of the loop.
FeedItem = tuple[Row, str, list[int]]


_CONFLICT_COLUMNS = (Post.id, Post.channel_id, ContentPiece.audience_id,
                     epoch_seconds(Post.scheduled_at), Post.status)


def feed_items(session: Session, start: datetime, end: datetime, filters: Filters
               ) -> tuple[list[FeedItem], Lookups]:
    rows = _rows(session, start, end, filters)
    # Rows are read by position below: named attribute access on a Row costs ~10x more, and
    # this runs for every post of the view.
    lookups = _lookups(session, {r[_AUTHOR] for r in rows})
    windows = {cid: c.conflict_window_minutes for cid, c in lookups.channels.items()}
    max_window = timedelta(minutes=max(windows.values(), default=0) or 0)
    connection = session.connection()
    conflict_source: list = []
    if max_window > timedelta(0) and filters.is_empty():
        # The rows at hand cover the range; posts just outside it can still conflict.
        edge = select(*_CONFLICT_COLUMNS).join(ContentPiece, Post.piece_id == ContentPiece.id)
        conflict_source = [(r[0], r[2], r[_AUDIENCE], r[_WHEN], r[4]) for r in rows]
        conflict_source += connection.execute(edge.where(
            Post.scheduled_at >= start - max_window, Post.scheduled_at < start)).all()
        conflict_source += connection.execute(edge.where(
            Post.scheduled_at >= end, Post.scheduled_at < end + max_window)).all()
    elif max_window > timedelta(0) and rows:
        # Filters hide posts that still conflict (another style, another author): look at
        # every post of the shown channels, with only the columns conflicts need.
        conflict_source = connection.execute(
            select(*_CONFLICT_COLUMNS).join(ContentPiece, Post.piece_id == ContentPiece.id)
            .where(Post.channel_id.in_({r[2] for r in rows}),
                   Post.scheduled_at >= start - max_window,
                   Post.scheduled_at < end + max_window)).all()
    conflicts = _conflicts(conflict_source, windows)
    wanted = set(filters.status)
    items = []
    no_conflicts: list[int] = []
    for row in rows:
        status = display_status(row[4], row[13], row[14], row[15])
        if wanted and status not in wanted:
            continue
        items.append((row, status, conflicts.get(row[0], no_conflicts)))
    return items, lookups


def feed_events(session: Session, start: datetime, end: datetime, *, tz: str,
                filters: Filters, now: datetime, can_move: bool) -> list[dict[str, Any]]:
    """FullCalendar event objects for posts scheduled in [start, end), times in `tz`.

    Kept lean (this runs for thousands of posts per request): what repeats across events
    (channel, audience, style …) is built once and shared, times are formatted from epoch
    seconds with one zone lookup per day (LocalClock), and labels are the page's job.
    """
    items, lookups = feed_items(session, start, end, filters)
    clock = LocalClock(tz)
    now_epoch = now.timestamp()
    channels = {cid: ({"id": cid, "name": c.name, "kind": c.kind, "color": c.color},
                      _text_color(c.color)) for cid, c in lookups.channels.items()}
    unknown_channel = ({"id": None, "name": "", "kind": "", "color": "#6c757d"}, "#ffffff")
    audiences = {k: {"id": k, "name": v} for k, v in lookups.audiences.items()}
    styles = {k: {"id": k, "name": v} for k, v in lookups.styles.items()}
    campaigns = {k: {"id": k, "name": v} for k, v in lookups.campaigns.items()}
    authors = {k: {"id": k, "name": v} for k, v in lookups.authors.items()}
    classes = {key: [f"co-status-{key}"] for key in DISPLAY_STATUSES}
    conflict_classes = {key: [f"co-status-{key}", "co-conflict"] for key in DISPLAY_STATUSES}
    events = []
    append = events.append
    sends = _sends(items)
    for item in items:
        (post_id, piece_id, channel_id, when, post_status, title_override, reads, likes,
         comments, shares, clicks, external_url, title, _review, _version, _approved,
         audience_id, style_id, campaign_id, author_id, send_group,
         _position), status, conflicts = item
        send = sends.get(send_group) if send_group else None
        if send is not None and send["posts"][0]["id"] != post_id:
            continue  # shown inside its send's event (the 头条's)
        channel, text_color = channels.get(channel_id, unknown_channel)
        append({
            "id": str(post_id),
            "title": title_override or title,
            "start": clock.isoformat(when),
            "color": channel["color"],
            "textColor": text_color,
            "editable": can_move and when > now_epoch and post_status in SCHEDULABLE,
            "classNames": conflict_classes[status] if conflicts else classes[status],
            "extendedProps": {
                "post_id": post_id,
                "piece_id": piece_id,
                "status": status,
                "post_status": post_status,
                "channel": channel,
                "audience": audiences.get(audience_id),
                "style": styles.get(style_id),
                "campaign": campaigns.get(campaign_id),
                "author": authors.get(author_id),
                "conflicts_with": conflicts,
                "external_url": external_url,
                "metrics": {"reads": reads, "likes": likes, "comments": comments,
                            "shares": shares, "clicks": clicks},
                "group": send,
            },
        })
    return events


def _sends(items: list[FeedItem]) -> dict[str, dict[str, Any]]:
    """Multi-article sends (公众号 头条 + 次条) among the shown posts: one calendar event per
    send, the 头条's (moving it moves the send), listing every article in order. `others` is
    how many articles come after the 头条 ("头条 + N" on the page)."""
    found: dict[str, list[tuple[int, int, str, str]]] = {}
    for row, status, _conflicts in items:
        if row[20]:
            found.setdefault(row[20], []).append(
                (row[21] if row[21] is not None else 1_000_000, row[0], row[5] or row[12],
                 status))
    out: dict[str, dict[str, Any]] = {}
    for key, members in found.items():
        if len(members) < 2:
            continue  # the rest of the send is filtered out of this view
        members.sort()
        out[key] = {"key": key, "size": len(members), "others": len(members) - 1,
                    "posts": [{"id": post_id, "title": title, "status": status,
                               "position": i}
                              for i, (_pos, post_id, title, status) in
                              enumerate(members, start=1)]}
    return out


def _named(mapping: Mapping[int, str], key: int | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {"id": key, "name": mapping.get(key, "")}


# --- side panel -----------------------------------------------------------------------------

def unscheduled(session: Session, filters: Filters, *, limit: int = 100) -> list[dict[str, Any]]:
    """Posts not on the calendar yet (drafts, approved-but-unscheduled), newest pieces first."""
    query = (select(Post.id, Post.piece_id, Post.channel_id, Post.title_override,
                    ContentPiece.title, ContentPiece.status.label("review_status"),
                    ContentPiece.version, ContentPiece.approved_version,
                    ContentPiece.audience_id, ContentPiece.style_id)
             .join(ContentPiece, Post.piece_id == ContentPiece.id)
             .where(Post.status == "unscheduled"))
    query = _where_filters(query, filters)
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
    clock = LocalClock(tz)
    out = []
    for row, status, _conflicts in items:
        channel = lookups.channels.get(row.channel_id)
        out.append({
            "post_id": row.id, "piece_id": row.piece_id,
            "title": row.title_override or row.title,
            "channel": channel.name if channel else "",
            "audience": lookups.audiences.get(row.audience_id, ""),
            "style": lookups.styles.get(row.style_id, ""),
            "campaign": lookups.campaigns.get(row.campaign_id, ""),
            "author": lookups.authors.get(row.author_id, ""),
            "status": status,
            "scheduled_at": clock.isoformat(row.epoch),
            "scheduled_at_utc": isoformat(_utc(row.epoch)),
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


def _ical_text(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _ical_line(name: str, value: str) -> bytes:
    """One content line, folded at 75 octets (§3.1) without splitting a UTF-8 character
    or a backslash escape (some clients mis-read a split one)."""
    line = f"{name}:{value}".encode()
    if len(line) <= 75:
        return line + b"\r\n"
    parts, pos, limit = [], 0, 75
    while len(line) - pos > limit:
        cut = pos + limit
        while line[cut] & 0xC0 == 0x80:  # inside a multi-byte character: back up
            cut -= 1
        if line[cut - 1] == 0x5C and cut - 1 > pos:  # don't end a line on a backslash
            cut -= 1
        parts.append(line[pos:cut])
        pos, limit = cut, 74  # continuation lines start with a space
    parts.append(line[pos:])
    return b"\r\n ".join(parts) + b"\r\n"


def _ical_utc(value: datetime) -> str:
    # Values from the database are already UTC; strftime is the slow part, so format by hand.
    value = as_utc(value)
    return (f"{value.year:04d}{value.month:02d}{value.day:02d}T"
            f"{value.hour:02d}{value.minute:02d}{value.second:02d}Z")


def ical_feed(session: Session, start: datetime, end: datetime, *, filters: Filters,
              base_url: str, now: datetime, calendar_name: str,
              translate: Callable[[str], str] = lambda s: s) -> bytes:
    """An RFC 5545 calendar of the posts in [start, end): one VEVENT per post, in UTC.

    Written line by line rather than through icalendar's object model: a subscription over
    a busy year is tens of thousands of events, and building a component object per event
    costs ~100x more (see BENCHMARKS.md). The tests parse the result back with icalendar.
    """
    items, lookups = feed_items(session, start, end, filters)
    host = base_url.split("://", 1)[-1].split("/", 1)[0] or "contentops"
    out = [
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ContentOps//Calendar//EN\r\n"
        b"CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n",
        _ical_line("X-WR-CALNAME", _ical_text(calendar_name)),
    ]
    label_channel, label_status = translate(N_("Channel")), translate(N_("Status"))
    label_audience, label_style = translate(N_("Audience")), translate(N_("Style"))
    statuses = {key: translate(label) for key, label in STATUS_LABELS.items()}
    stamp = _ical_utc(now)
    names = {cid: c.name for cid, c in lookups.channels.items()}
    thirty_minutes = timedelta(minutes=30)
    for row, status, _conflicts in items:
        post_id, piece_id, channel_id, when = row[0], row[1], row[2], _utc(row[_WHEN])
        channel_name = names.get(channel_id, "")
        link = f"{base_url}/pieces/{piece_id}"
        title = row[5] or row[12]
        lines = [f"{label_channel}: {channel_name}", f"{label_status}: {statuses[status]}"]
        if row[_AUDIENCE] is not None:
            lines.append(f"{label_audience}: {lookups.audiences.get(row[_AUDIENCE], '')}")
        if row[_STYLE] is not None:
            lines.append(f"{label_style}: {lookups.styles.get(row[_STYLE], '')}")
        lines.append(link)
        state = ("CANCELLED" if status == "cancelled" else
                 "CONFIRMED" if status in ("scheduled", "published", "publishing")
                 else "TENTATIVE")
        out += (
            (f"BEGIN:VEVENT\r\nUID:post-{post_id}@{host}\r\nDTSTAMP:{stamp}\r\n"
             f"DTSTART:{_ical_utc(when)}\r\nDTEND:{_ical_utc(when + thirty_minutes)}\r\n"
             f"STATUS:{state}\r\nX-CONTENTOPS-STATUS:{status}\r\n").encode(),
            _ical_line("SUMMARY", _ical_text(f"[{channel_name}] {title}")),
            _ical_line("DESCRIPTION", _ical_text("\n".join(lines))),
            _ical_line("URL", link),
            _ical_line("CATEGORIES", _ical_text(channel_name or "-")),
            b"END:VEVENT\r\n",
        )
    out.append(b"END:VCALENDAR\r\n")
    return b"".join(out)


def default_ical_range(now: datetime) -> tuple[datetime, datetime]:
    """What a subscription shows: the last 30 days and the next half year."""
    return now - timedelta(days=30), now + timedelta(days=183)


def month_range(day: date, tz: str) -> tuple[datetime, datetime]:
    """[first day of the month, first day of the next) in `tz`, as UTC."""
    zone = ZoneInfo(tz)
    first = datetime(day.year, day.month, 1, tzinfo=zone)
    following = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=zone)
    return as_utc(first), as_utc(following)
