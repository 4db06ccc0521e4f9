"""The post list: filter, sort and page posts (the /posts page and GET /api/v1/posts).

Metrics are read from the denormalised totals on `posts`, never aggregated from events, and
every sortable metric has an index ending in the primary key so "top posts by reads" pages
without sorting the table (tests check the query plans).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session, aliased, contains_eager

from ..errors import N_, ValidationError
from ..models import POST_STATES, Audience, Campaign, Channel, ContentPiece, Post, Style
from ..timeutil import as_utc, isoformat

DEFAULT_SORT = "-scheduled_at"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
FILTER_IDS = ("channel_id", "audience_id", "style_id", "campaign_id")
METRIC_KEYS = ("reads", "likes", "comments", "shares", "clicks")
SORT_KEYS = ("title", "channel", "audience", "style", "campaign", "status", "scheduled_at",
             "published_at", *METRIC_KEYS, "engagement", "staff")


@dataclass(frozen=True)
class PostFilter:
    statuses: tuple[str, ...] = ()
    channel_id: int | None = None
    audience_id: int | None = None
    style_id: int | None = None
    campaign_id: int | None = None
    # Half-open range on scheduled_at, in UTC: start <= scheduled_at < end.
    start: datetime | None = None
    end: datetime | None = None
    search: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


@dataclass
class PostPage:
    items: list[Post]
    total: int
    page: int
    per_page: int
    filters: PostFilter = field(default_factory=PostFilter)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _values(args: Mapping[str, Any], name: str) -> list[str]:
    """All values of a query parameter: repeated (?status=a&status=b) or comma-separated."""
    if hasattr(args, "getlist"):
        raw = args.getlist(name)
    else:
        value = args.get(name)
        raw = value if isinstance(value, list | tuple) else ([] if value is None else [value])
    out: list[str] = []
    for item in raw:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


def _first(args: Mapping[str, Any], name: str) -> str:
    values = _values(args, name)
    return values[0] if values else ""


def _parse_bound(text: str, tz_name: str, *, end: bool) -> datetime:
    """A date (whole day in the viewer's zone; `to` includes that day) or ISO 8601 time."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time(0), ZoneInfo(tz_name)).astimezone(ZoneInfo("UTC"))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz_name))
    return as_utc(parsed)


def parse_filters(args: Mapping[str, Any], tz_name: str) -> PostFilter:
    """Validate query parameters into a PostFilter; every problem is reported per field.

    `from`/`to` take a date (YYYY-MM-DD, a whole day in `tz_name`, both ends included) or an
    ISO 8601 time (with offset; without one it is read in `tz_name`).
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}

    statuses = _values(args, "status")
    unknown = [s for s in statuses if s not in POST_STATES]
    if unknown:
        errors["status"] = [N_("Choose states from the list.")]
    else:
        values["statuses"] = tuple(dict.fromkeys(statuses))

    for name in FILTER_IDS:
        raw = _first(args, name)
        if not raw:
            continue
        if not raw.isdigit() or len(raw) > 12:
            errors[name] = [N_("Enter a whole number.")]
        else:
            values[name] = int(raw)

    for name, key, is_end in (("from", "start", False), ("to", "end", True)):
        raw = _first(args, name)
        if not raw:
            continue
        try:
            values[key] = _parse_bound(raw, tz_name, end=is_end)
        except (ValueError, OverflowError):
            errors[name] = [N_("Enter a date like 2026-11-11 or an ISO 8601 time.")]
    if values.get("start") and values.get("end") and values["end"] <= values["start"]:
        errors["to"] = [N_("The end must be after the start.")]

    search = _first(args, "q")
    if len(search) > 200:
        errors["q"] = [N_("Use at most 200 characters.")]
    else:
        values["search"] = search

    sort = _first(args, "sort") or DEFAULT_SORT
    if sort.lstrip("-") not in SORT_KEYS:
        errors["sort"] = [N_("Sort by one of the columns.")]
    else:
        values["sort"] = sort

    for name, high in (("page", MAX_PAGE), ("per_page", MAX_PER_PAGE)):
        raw = _first(args, name)
        if not raw:
            continue
        if not raw.isdigit() or not 1 <= int(raw) <= high:
            errors[name] = [N_("Enter a whole number between 1 and %(max)s.")]
            values.setdefault("_max", high)
        else:
            values[name] = int(raw)
    if errors:
        params = {"max": values["_max"]} if "_max" in values else {}
        raise ValidationError(errors, params=params)
    values.pop("_max", None)
    return PostFilter(**values)


def _sort_expressions(sort: str, piece, audience, style, campaign) -> list:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    nullable = True
    if key in METRIC_KEYS:
        column = getattr(Post, key)
        nullable = False
    elif key == "staff":
        column = Post.staff_confirmed  # posts not handed to staff (None) sort last
    elif key == "engagement":
        reads = func.nullif(Post.reads, 0)
        column = (Post.likes + Post.comments + Post.shares) * literal(1.0) / reads
    elif key == "title":
        column = func.lower(func.coalesce(Post.title_override, piece.title))
        nullable = False
    elif key == "channel":
        column = func.lower(Channel.name)
        nullable = False
    elif key == "audience":
        column = func.lower(audience.name)
    elif key == "style":
        column = func.lower(style.name)
    elif key == "campaign":
        column = func.lower(campaign.name)
    elif key == "status":
        column = Post.status
        nullable = False
    else:
        column = getattr(Post, key)  # scheduled_at, published_at
    ordered = column.desc() if descending else column.asc()
    if nullable:
        # Empty values last in either direction, on SQLite and PostgreSQL alike (their
        # defaults differ). SQLite still walks the index for NULLS LAST.
        ordered = ordered.nulls_last()
    # The id tie-break keeps pages stable; indexes end in the id so it costs nothing.
    tiebreak = Post.id.desc() if descending else Post.id.asc()
    return [ordered, tiebreak]


def _needs_piece(filters: PostFilter) -> bool:
    return (filters.audience_id is not None or filters.style_id is not None
            or filters.campaign_id is not None or bool(filters.search))


def _conditions(filters: PostFilter, piece) -> list:
    conditions = []
    if filters.statuses:
        conditions.append(Post.status.in_(filters.statuses))
    if filters.channel_id is not None:
        conditions.append(Post.channel_id == filters.channel_id)
    if filters.audience_id is not None:
        conditions.append(piece.audience_id == filters.audience_id)
    if filters.style_id is not None:
        conditions.append(piece.style_id == filters.style_id)
    if filters.campaign_id is not None:
        conditions.append(piece.campaign_id == filters.campaign_id)
    if filters.start is not None:
        conditions.append(Post.scheduled_at >= filters.start)
    if filters.end is not None:
        conditions.append(Post.scheduled_at < filters.end)
    if filters.search:
        pattern = "%" + filters.search.lower().replace("\\", "\\\\").replace(
            "%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(func.lower(piece.title).like(pattern, escape="\\"),
                              func.lower(Post.title_override).like(pattern, escape="\\")))
    return conditions


def count_query(filters: PostFilter) -> Select:
    """The number of matching posts, joining only what the filters look at.

    Every post has its piece and channel (foreign keys, NOT NULL) and the other joins are
    outer, so without piece filters the count is that of posts alone: an index-only count
    instead of a four-table join over every post.
    """
    if not _needs_piece(filters):
        return select(func.count()).select_from(Post).where(*_conditions(filters, None))
    piece = aliased(ContentPiece)
    return (select(func.count()).select_from(Post).join(piece, Post.piece_id == piece.id)
            .where(*_conditions(filters, piece)))


def build_query(filters: PostFilter) -> Select:
    """The filtered, sorted select (without paging); exposed for EXPLAIN in tests."""
    piece = aliased(ContentPiece)
    audience = aliased(Audience)
    style = aliased(Style)
    campaign = aliased(Campaign)
    query = (
        select(Post)
        .join(piece, Post.piece_id == piece.id)
        .join(Channel, Post.channel_id == Channel.id)
        .outerjoin(audience, piece.audience_id == audience.id)
        .outerjoin(style, piece.style_id == style.id)
        .outerjoin(campaign, piece.campaign_id == campaign.id)
        .options(contains_eager(Post.piece.of_type(piece)).contains_eager(
                     piece.audience.of_type(audience)),
                 contains_eager(Post.piece.of_type(piece)).contains_eager(
                     piece.style.of_type(style)),
                 contains_eager(Post.piece.of_type(piece)).contains_eager(
                     piece.campaign.of_type(campaign)),
                 contains_eager(Post.channel))
    )
    conditions = _conditions(filters, piece)
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(*_sort_expressions(filters.sort, piece, audience, style, campaign))


def list_posts(session: Session, filters: PostFilter) -> PostPage:
    query = build_query(filters)
    total = session.scalar(count_query(filters)) or 0
    offset = (filters.page - 1) * filters.per_page
    items = list(session.scalars(query.limit(filters.per_page).offset(offset)).unique())
    return PostPage(items=items, total=total, page=filters.page, per_page=filters.per_page,
                    filters=filters)


def filter_query_args(filters: PostFilter, tz_name: str, **changes: Any) -> dict[str, Any]:
    """Query parameters that reproduce `filters` (for sort links and pagination)."""
    args: dict[str, Any] = {}
    if filters.statuses:
        args["status"] = list(filters.statuses)
    for name in FILTER_IDS:
        if getattr(filters, name) is not None:
            args[name] = getattr(filters, name)
    zone = ZoneInfo(tz_name)
    if filters.start is not None:
        args["from"] = _bound_text(filters.start, zone, end=False)
    if filters.end is not None:
        args["to"] = _bound_text(filters.end, zone, end=True)
    if filters.search:
        args["q"] = filters.search
    if filters.sort != DEFAULT_SORT:
        args["sort"] = filters.sort
    if filters.per_page != DEFAULT_PER_PAGE:
        args["per_page"] = filters.per_page
    if filters.page != 1:
        args["page"] = filters.page
    args.update(changes)
    return {k: v for k, v in args.items() if v not in (None, "", [])}


def _bound_text(value: datetime, zone: ZoneInfo, *, end: bool) -> str:
    local = value.astimezone(zone)
    if local.time() == time(0):
        day = local.date() - timedelta(days=1) if end else local.date()
        return day.isoformat()
    return isoformat(value) or ""


def filter_options(session: Session) -> dict[str, Sequence[Any]]:
    """Choices for the filter bar."""
    return {
        "channels": session.scalars(select(Channel).order_by(func.lower(Channel.name))).all(),
        "audiences": session.scalars(select(Audience).order_by(func.lower(Audience.name))).all(),
        "styles": session.scalars(select(Style).order_by(func.lower(Style.name))).all(),
        "campaigns": session.scalars(select(Campaign).order_by(func.lower(Campaign.name))).all(),
    }
