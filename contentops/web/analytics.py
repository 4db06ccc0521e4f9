"""Analytics page: totals over time, who × how, channels, top/bottom posts, campaigns and
the best time to post — every block filterable and exportable as CSV."""

from __future__ import annotations

from datetime import date, timedelta

from babel.dates import get_day_names
from flask import Blueprint, abort, make_response, render_template, request
from flask_babel import get_locale, get_timezone, gettext

from ..extensions import db
from ..security import requires_role
from ..services import analytics
from ..services import options as options_service
from ..services.feedback import daily_stats
from ..services.feedback import pages as web
from ..timeutil import utcnow

bp = Blueprint("analytics", __name__, url_prefix="/analytics")

METRIC_COLUMNS = ["posts", "reads", "likes", "comments", "shares", "clicks", "engagement",
                  "engagement_rate", "reached", "staff_confirmed", "staff_total",
                  "confirmation_rate"]
DIMENSION_NAMES = ("audience", "style", "channel", "campaign")
DEFAULT_DAYS = 90


def _tz() -> str:
    return str(get_timezone())


def _date(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters() -> tuple[analytics.Filters, dict]:
    """Filters from the query string; a bad value is ignored rather than an error page."""
    today = utcnow().astimezone(get_timezone()).date()
    start = _date("from")
    end = _date("to")
    if "from" not in request.args and "to" not in request.args:
        start, end = today - timedelta(days=DEFAULT_DAYS - 1), today
    if start and end and start > end:
        start, end = end, start
    ids = {name: request.args.get(name, type=int) or None
           for name in ("channel_id", "audience_id", "style_id", "campaign_id")}
    rows = request.args.get("rows", "audience")
    cols = request.args.get("cols", "style")
    if rows not in DIMENSION_NAMES:
        rows = "audience"
    if cols not in DIMENSION_NAMES or cols == rows:
        cols = "style" if rows != "style" else "channel"
    args = {"from": start.isoformat() if start else "", "to": end.isoformat() if end else "",
            **{k: v or "" for k, v in ids.items()}, "rows": rows, "cols": cols}
    return analytics.Filters.from_dates(start, end, _tz(), **ids), args


@bp.get("/")
@requires_role("viewer")
def index():
    f, args = _filters()
    tz = _tz()
    slots = analytics.best_times(db.session, f, tz)
    suggestion = None
    if f.channel_id or f.audience_id:
        suggestion = analytics.suggest_time(db.session, channel_id=f.channel_id,
                                            audience_id=f.audience_id, tz=tz, now=utcnow())
    choices = {
        "channel_id": options_service.channels(db.session),
        "audience_id": options_service.audiences(db.session),
        "style_id": options_service.styles(db.session),
        "campaign_id": options_service.campaigns(db.session),
    }
    return render_template(
        "analytics/index.html", title=gettext("Analytics"), args=args, choices=choices,
        summary=analytics.summary(db.session, f),
        over_time=analytics.totals_over_time(db.session, f, tz),
        matrix=analytics.matrix(db.session, f, args["rows"], args["cols"]),
        channels=analytics.breakdown(db.session, f, "channel"),
        account_days=_account_days(args),
        top=analytics.ranked_posts(db.session, f),
        bottom=analytics.ranked_posts(db.session, f, bottom=True),
        campaigns=analytics.campaign_report(db.session, f),
        slots=slots, best_max=max((v["engagement_rate"] or 0 for v in slots.values()),
                                  default=0),
        suggestion=suggestion, pending_comments=web.pending_count(db.session),
        dimensions=DIMENSION_NAMES,
        weekdays=[get_day_names("abbreviated", locale=get_locale())[i] for i in range(7)])


def _account_days(args: dict) -> list[dict]:
    """The channels' own daily figures (公众号 getbizsummary) within the filter's days."""
    today = utcnow().astimezone(get_timezone()).date()
    end = date.fromisoformat(args["to"]) if args["to"] else today
    start = date.fromisoformat(args["from"]) if args["from"] else end - timedelta(days=13)
    return daily_stats.account_days(db.session, start=start, end=end,
                                    channel_id=args.get("channel_id") or None)


@bp.get("/export/<report>.csv")
@requires_role("viewer")
def export(report: str):
    f, args = _filters()
    tz = _tz()
    if report == "over_time":
        rows = analytics.totals_over_time(db.session, f, tz)
        columns = ["day", "reads", "likes", "comments", "shares", "clicks"]
    elif report == "matrix":
        m = analytics.matrix(db.session, f, args["rows"], args["cols"])
        rows = analytics.matrix_rows(m, args["rows"], args["cols"])
        columns = [args["rows"], args["cols"], *METRIC_COLUMNS]
    elif report in DIMENSION_NAMES:
        rows = analytics.breakdown(db.session, f, report)
        columns = ["name", *METRIC_COLUMNS]
    elif report in ("top", "bottom"):
        rows = analytics.ranked_posts(db.session, f, limit=100, bottom=report == "bottom")
        columns = ["id", "title", "channel", "published_at", *METRIC_COLUMNS[1:8]]
    elif report == "campaigns":
        rows = analytics.campaign_report(db.session, f)
        columns = ["name", "starts_on", "ends_on", "goal_reads", "goal_progress",
                   *METRIC_COLUMNS]
    elif report == "best_time":
        rows = analytics.best_time_rows(analytics.best_times(db.session, f, tz))
        columns = ["weekday", "hour", "posts", "reads", "avg_reads", "engagement",
                   "engagement_rate"]
    else:
        abort(404)
    response = make_response("\ufeff" + analytics.to_csv(rows, columns))  # BOM: Excel + 中文
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f"attachment; filename={report}.csv"
    return response
