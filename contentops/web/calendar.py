"""The calendar page, its exports and the personal iCalendar subscription."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale, gettext
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..i18n import error_message
from ..security import public, requires_role
from ..services import calendar as cal
from ..services import observances as obs
from ..services import options as options_service
from ..timeutil import utcnow

bp = Blueprint("calendar", __name__, url_prefix="/calendar")


def _args() -> dict[str, list[str]]:
    return {key: request.args.getlist(key) for key in request.args}


def _team_tz() -> str:
    return current_app.config["CONTENTOPS_TIMEZONE"]


@bp.get("/")
@requires_role("viewer")
def index():
    try:
        filters = cal.parse_filters(_args())
    except DomainError:
        filters = cal.Filters()  # a mangled shared link still opens the calendar
    team_tz = _team_tz()
    options = {
        "channels": [{"id": c.id, "name": c.name, "color": c.color}
                     for c in options_service.channels(db.session)],
        "audiences": [{"id": a.id, "name": a.name}
                      for a in options_service.audiences(db.session)],
        "styles": [{"id": s.id, "name": s.name}
                   for s in options_service.styles(db.session)],
        "campaigns": [{"id": c.id, "name": c.name}
                      for c in options_service.campaigns(db.session)],
        "authors": [{"id": u.id, "name": u.name}
                    for u in options_service.authors(db.session)],
        "statuses": [{"id": key, "name": gettext(label)}
                     for key, label in cal.STATUS_LABELS.items()],
    }
    config = {
        "feedUrl": url_for("api.calendar_feed"),
        "observancesUrl": url_for("api.calendar_observances"),
        "quotaUrl": url_for("api.calendar_quota"),
        "unscheduledUrl": url_for("api.calendar_unscheduled"),
        "moveUrl": url_for("api.move_post", post_id=0).rsplit("/", 1)[0] + "/",
        "pieceUrl": "/pieces/",
        "newPieceUrl": "/pieces/new",
        "exportUrl": url_for("calendar.export", fmt="csv").rsplit(".", 1)[0] + ".",
        "teamTimeZone": team_tz,
        "userTimeZone": current_user.timezone or "",
        "canEdit": current_user.has_role("editor"),
        "locale": "zh-cn" if _is_zh() else "en",
        "statusLabels": {key: gettext(label) for key, label in cal.STATUS_LABELS.items()},
        "observances": [{"key": key, "name": gettext(obs.NAMES[key])} for key in obs.KEYS],
        "filters": filters.as_query(),
        "i18n": {
            "moved": gettext("Moved to %(time)s."),
            "refused": gettext("The move was refused: %(reason)s"),
            "networkError": gettext("The server could not be reached; nothing was changed."),
            "conflict": gettext("Conflict: same channel and audience close by"),
            "audience": gettext("Audience"), "style": gettext("Style"),
            "channel": gettext("Channel"), "status": gettext("Status"),
            "campaign": gettext("Campaign"), "author": gettext("Author"),
            "reads": gettext("Reads"), "likes": gettext("Likes"),
            "comments": gettext("Comments"), "shares": gettext("Shares"),
            "noUnscheduled": gettext("Nothing waiting to be scheduled."),
            "teamTime": gettext("Team time"), "myTime": gettext("My time"),
            "browserTime": gettext("This device"),
            # A 公众号 multi-article send shown as one event: its 头条 and N more articles.
            "groupBadge": gettext("Lead + %(n)s"),
            "groupTip": gettext("One message of %(n)s articles:"),
        },
    }
    feed_url = None
    if current_user.ical_token:
        feed_url = url_for("calendar.ical", token=current_user.ical_token, _external=True)
    return render_template("calendar/index.html", title=gettext("Calendar"), options=options,
                           config=config, feed_url=feed_url, team_tz=team_tz,
                           selected={key: [str(v) for v in getattr(filters, key)]
                                     for key in (*cal.FILTER_KEYS, "status")})


def _is_zh() -> bool:
    from flask_babel import get_locale

    return str(get_locale() or "en").startswith("zh")


@bp.get("/export.<fmt>")
@requires_role("viewer")
def export(fmt: str):
    """The visible range (start/end/timeZone/filters as the feed takes them) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        abort(404)
    tz = cal.parse_timezone(request.args.get("timeZone") or request.args.get("tz"),
                            current_user.timezone or _team_tz())
    start, end = cal.parse_range(request.args.get("start"), request.args.get("end"), tz)
    filters = cal.parse_filters(_args())
    rows = cal.export_rows(db.session, start, end, tz=tz, filters=filters)
    stem = f"contentops-{start.astimezone(cal.ZoneInfo(tz)).date().isoformat()}"
    if fmt == "csv":
        return Response(cal.to_csv(rows), mimetype="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{stem}.csv"'})
    body = json.dumps({"time_zone": tz, "start": start.isoformat(), "end": end.isoformat(),
                       "items": rows}, ensure_ascii=False, indent=1)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{stem}.json"'})


@bp.post("/subscription")
@requires_role("viewer")
def regenerate_subscription():
    """Create or replace the secret feed URL (the old one stops working)."""
    cal.regenerate_ical_token(db.session, current_user, now=utcnow())
    db.session.commit()
    flash(gettext("Your calendar feed has a new address; the old one no longer works."),
          "success")
    return redirect(url_for("calendar.index"))


@bp.get("/feed/<token>.ics")
@public
def ical(token: str):
    """The personal iCalendar feed. The secret in the URL is the credential (calendar apps
    cannot sign in), so it is long, random, per user and regenerable."""
    user = cal.user_for_ical_token(db.session, token)
    if user is None:
        abort(404)
    try:
        filters = cal.parse_filters(_args())
    except DomainError as exc:
        return Response(error_message(exc), status=422, mimetype="text/plain")
    now = utcnow()
    start, end = cal.default_ical_range(now)
    # Calendar apps send no useful Accept-Language: speak the subscriber's language.
    with force_locale(user.locale or "en"):
        body = cal.ical_feed(db.session, start, end, filters=filters,
                             base_url=current_app.config["CONTENTOPS_BASE_URL"], now=now,
                             calendar_name=gettext("ContentOps calendar"), translate=gettext)
    return Response(body, mimetype="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})
