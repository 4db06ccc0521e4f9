"""The post list page: every post with its channel, audience, style, state, times and metrics."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import get_timezone, gettext
from flask_login import current_user

from ..errors import N_, ValidationError
from ..extensions import db
from ..i18n import error_fields
from ..models import POST_STATES
from ..security import requires_role
from ..services import postlist

bp = Blueprint("posts", __name__, url_prefix="/posts")

# (sort key, label msgid, numeric?) in display order; metrics are filled by feedback.
COLUMNS: list[tuple[str, str, bool]] = [
    ("title", N_("Title"), False),
    ("channel", N_("Channel"), False),
    ("audience", N_("Audience"), False),
    ("style", N_("Style"), False),
    ("status", N_("Status"), False),
    ("scheduled_at", N_("Scheduled"), False),
    ("published_at", N_("Published"), False),
    ("staff", N_("Sent by staff"), True),
    ("reads", N_("Reads"), True),
    ("likes", N_("Likes"), True),
    ("comments", N_("Comments"), True),
    ("shares", N_("Shares"), True),
    ("engagement", N_("Engagement"), True),
]

def _may_open(endpoint: str) -> bool:
    """Links appear only when the viewer's role may open the page (its @requires_role)."""
    role = current_app.view_functions[endpoint].required_role
    return role == "public" or current_user.has_role(role)


def piece_url(piece_id: int) -> str | None:
    """The piece's page."""
    return url_for("pieces.view", piece_id=piece_id) if _may_open("pieces.view") else None


def post_url(post_id: int) -> str | None:
    """The post's publishing history (editors and up)."""
    return (url_for("publishing.detail", post_id=post_id)
            if _may_open("publishing.detail") else None)


@bp.get("/")
@requires_role("viewer")
def index():
    tz_name = str(get_timezone() or current_app.config["CONTENTOPS_TIMEZONE"])
    errors: dict[str, list[str]] = {}
    try:
        filters = postlist.parse_filters(request.args, tz_name)
    except ValidationError as exc:
        # Show what is wrong next to the filter and list everything meanwhile.
        errors = error_fields(exc)
        filters = postlist.PostFilter()
    page = postlist.list_posts(db.session, filters)
    filtered = any(request.args.get(k) for k in (
        "status", "channel_id", "audience_id", "style_id", "campaign_id", "from", "to", "q"))

    def link(**changes) -> str:
        return url_for("posts.index",
                       **postlist.filter_query_args(filters, tz_name, **changes))

    def sort_link(key: str) -> str:
        current = filters.sort
        if current.lstrip("-") == key:
            new = key if current.startswith("-") else "-" + key
        else:
            numeric = key in postlist.METRIC_KEYS or key in ("engagement", "scheduled_at",
                                                            "published_at")
            new = "-" + key if numeric else key  # big numbers and latest first
        return link(sort=new, page=None)

    return render_template(
        "posts/index.html", page=page, filters=filters, errors=errors, args=request.args,
        columns=COLUMNS, states=POST_STATES, options=postlist.filter_options(db.session),
        link=link, sort_link=sort_link, piece_url=piece_url, post_url=post_url, filtered=filtered,
        title=gettext("Posts"))
