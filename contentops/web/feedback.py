"""Feedback pages: the public page's likes/comments/shares/read beacon, the comment
moderation queue, CSV import and the per-channel inbound hook keys."""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from markupsafe import Markup, escape

from ..errors import DomainError, ValidationError
from ..extensions import csrf, db
from ..i18n import error_fields, error_message
from ..models import Channel, Post, WebComment
from ..security import public, requires_role
from ..services import audit
from ..services import options as options_service
from ..services.feedback import csv_import as feedback_csv
from ..services.feedback import daily_stats, history, hook
from ..services.feedback import pages as web
from ..timeutil import utcnow

bp = Blueprint("feedback", __name__)

VISITOR_COOKIE = "co_vid"
VISITOR_MAX_AGE = 365 * 24 * 3600


# --- Visitors ------------------------------------------------------------------------------

def _daily_visitor() -> str:
    """IP + user agent, for reads and shares: hashed with the day and never stored raw
    (the way privacy-minded analytics count unique visitors, no cookie needed)."""
    return "a:" + (request.remote_addr or "") + "|" + request.headers.get("User-Agent", "")


def _visitor() -> str:
    """A lasting visitor id for likes and comments: the visitor cookie (minted if absent)."""
    cookie = request.cookies.get(VISITOR_COOKIE, "")
    if 16 <= len(cookie) <= 64 and cookie.replace("-", "").replace("_", "").isalnum():
        return "c:" + cookie
    if "new_visitor" not in g:
        g.new_visitor = secrets.token_urlsafe(18)
    return "c:" + g.new_visitor


def _with_cookie(response):
    if "new_visitor" in g:
        response.set_cookie(VISITOR_COOKIE, g.new_visitor, max_age=VISITOR_MAX_AGE,
                            httponly=True, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _post_or_404(slug: str) -> Post:
    post = web.published_post_by_slug(db.session, slug)
    if post is None:
        abort(404)
    return post


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _back(slug: str):
    return redirect(f"/p/{slug}#feedback")


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


# --- Template helpers for pages other areas own ---------------------------------------------

@bp.app_template_global("web_feedback")
def web_feedback(post: Post) -> dict:
    """What the public page's feedback block shows (see public/_feedback.html)."""
    state = session.get("fb_comment") or {}
    if state.get("slug") != post.slug:
        state = {}
    return {
        "likes": post.likes,
        "liked": bool(request.cookies.get(VISITOR_COOKIE)) and web.has_liked(
            db.session, post, visitor=_visitor(), secret_key=_secret()),
        "comments": web.approved_comments(db.session, post.id),
        "form": state,
        "networks": web.SHARE_NETWORKS,
    }


@bp.app_template_global("clear_comment_form")
def clear_comment_form() -> str:
    session.pop("fb_comment", None)
    return ""


@bp.app_template_global("piece_feedback")
def piece_feedback(piece) -> dict:
    """Per-channel breakdown, comments received and timeline for the piece page."""
    posts = list(piece.posts)
    ids = [p.id for p in posts]
    return {
        "posts": posts,
        "timeline": history.post_timeline(db.session, ids),
        "received": history.received_comments(db.session, ids, limit=100),
        "web_comments": web.approved_comments_of(db.session, ids, limit=100),
    }


@bp.app_template_global("stats_not_reported")
def stats_not_reported(post) -> bool:
    """The channel's daily statistics left this post out (公众号: too few interactions)."""
    return daily_stats.not_reported(post.progress)


@bp.app_template_global("sparkline_svg")
def sparkline_svg(values) -> Markup:
    """A tiny inline SVG trend line (built in Python: the post list draws 50 per page)."""
    values = list(values or [])
    top = max(values, default=0)
    if len(values) < 2 or top <= 0:
        return Markup("")
    step = 78 / (len(values) - 1)
    points = " ".join(f"{i * step + 1:.1f},{19 - v / top * 18:.1f}"
                      for i, v in enumerate(values))
    label = escape(gettext("Trend over the last %(days)s days", days=len(values)))
    return Markup(
        f'<svg class="co-sparkline" width="80" height="20" viewBox="0 0 80 20" role="img" '
        f'aria-label="{label}" data-values="{",".join(str(int(v)) for v in values)}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/>'
        f"</svg>")


@bp.app_template_global("metric_trends")
def metric_trends(post_ids, days: int = 14, metric: str = "reads") -> dict[int, list[int]]:
    """Daily values for sparklines on the post list (see feedback/_sparkline.html)."""
    return history.trends(db.session, list(post_ids), now=utcnow(), days=days,
                                   metric=metric)


# --- Public endpoints (web channel) ---------------------------------------------------------

@bp.post("/p/<slug>/read")
@public
@csrf.exempt
def read(slug: str):
    post = _post_or_404(slug)
    counted = web.record_read(db.session, post, visitor=_daily_visitor(),
                              secret_key=_secret(), now=utcnow())
    db.session.commit()
    return make_response(jsonify({"counted": counted}), 200)


@bp.post("/p/<slug>/like")
@public
def like(slug: str):
    post = _post_or_404(slug)
    want = request.form.get("action", "like") != "unlike"
    liked = web.set_like(db.session, post, want, visitor=_visitor(), secret_key=_secret(),
                         now=utcnow())
    db.session.commit()
    db.session.refresh(post)
    if _wants_json():
        return _with_cookie(make_response(jsonify({"liked": liked, "likes": post.likes})))
    return _with_cookie(_back(slug))


@bp.post("/p/<slug>/comments")
@public
def comment(slug: str):
    post = _post_or_404(slug)
    author = request.form.get("author", "")
    text = request.form.get("text", "")
    try:
        web.submit_comment(db.session, post, author=author, text=text,
                           honeypot=request.form.get("website", ""), visitor=_visitor(),
                           secret_key=_secret(), now=utcnow())
    except ValidationError as exc:
        db.session.rollback()
        session["fb_comment"] = {"slug": slug, "author": author[:200], "text": text[:4000],
                                 "errors": error_fields(exc)}
        return _with_cookie(_back(slug))
    except web.RateLimited as exc:
        db.session.rollback()
        session["fb_comment"] = {"slug": slug, "author": author[:200], "text": text[:4000],
                                 "errors": {"text": [error_message(exc)]}}
        return _with_cookie(_back(slug))
    db.session.commit()
    session.pop("fb_comment", None)
    flash(gettext("Thank you! Your comment will appear once it has been reviewed."), "success")
    return _with_cookie(_back(slug))


@bp.route("/p/<slug>/share/<network>", methods=["GET", "POST"])
@public
@csrf.exempt  # a click on a share link; counted once per visitor, day and network
def share(slug: str, network: str):
    post = _post_or_404(slug)
    if network not in web.SHARE_NETWORKS:
        abort(404)
    web.record_share(db.session, post, network, visitor=_daily_visitor(),
                     secret_key=_secret(), now=utcnow())
    db.session.commit()
    if request.method == "POST":
        return make_response(jsonify({"ok": True}))
    target = web.share_url(network, post.external_url or request.url_root + f"p/{slug}",
                           post.title)
    return redirect(target or f"/p/{slug}")


# --- Moderation -----------------------------------------------------------------------------

@bp.get("/feedback/comments")
@requires_role("editor")
def comments():
    status = request.args.get("status", "pending")
    if status not in ("pending", "approved", "rejected"):
        status = "pending"
    return render_template("feedback/comments.html", title=gettext("Comments"),
                           status=status, items=web.comment_queue(db.session, status),
                           pending=web.pending_count(db.session))


@bp.post("/feedback/comments/<int:comment_id>/<decision>")
@requires_role("editor")
def moderate(comment_id: int, decision: str):
    item = db.session.get(WebComment, comment_id)
    if item is None or decision not in ("approve", "reject"):
        abort(404)
    web.moderate(db.session, item, "approved" if decision == "approve" else "rejected",
                 actor=current_user._get_current_object(), now=utcnow())
    db.session.commit()
    flash(gettext("Comment approved.") if decision == "approve"
          else gettext("Comment rejected."), "success")
    return redirect(url_for("feedback.comments", status=request.args.get("status", "pending")))


# --- CSV import -----------------------------------------------------------------------------

@bp.route("/feedback/import", methods=["GET", "POST"])
@requires_role("editor")
def csv_import():
    preview = None
    error = None
    content = ""
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            raw = upload.read()
        else:
            raw = request.form.get("content", "").encode("utf-8")
        try:
            content = feedback_csv.decode(raw)
            parsed = feedback_csv.parse(content)
        except DomainError as exc:
            error = error_message(exc)
            parsed = None
        if parsed is not None:
            preview = feedback_csv.preview(db.session, parsed, now=utcnow())
            db.session.rollback()
            if request.form.get("confirm") == "1" and not preview.errors:
                report = feedback_csv.apply(db.session, parsed, now=utcnow())
                db.session.commit()
                flash(gettext("Imported: %(accepted)s new events, %(duplicates)s already "
                              "counted.", accepted=report.accepted,
                              duplicates=report.duplicates), "success")
                return redirect(url_for("feedback.csv_import"))
    return render_template("feedback/import.html", title=gettext("Import feedback"),
                           preview=preview, error=error, content=content,
                           columns=feedback_csv.COLUMNS)


@bp.get("/feedback/export.csv")
@requires_role("viewer")
def csv_export():
    post_id = request.args.get("post_id", type=int)
    body = feedback_csv.export(db.session, post_id=post_id)
    response = make_response(body)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = "attachment; filename=feedback.csv"
    return response


# --- Inbound hook keys ----------------------------------------------------------------------

@bp.route("/feedback/hooks", methods=["GET", "POST"])
@requires_role("admin")
def hooks():
    new_key = None
    new_key_channel = None
    if request.method == "POST":
        channel = db.session.get(Channel, request.form.get("channel_id", type=int) or 0)
        if channel is None:
            abort(404)
        new_key = hook.create_hook_key(db.session, channel, secret_key=_secret(), now=utcnow())
        new_key_channel = channel.id
        audit.record(db.session, "feedback_hook.key_created", "channel", channel.id,
                     actor=current_user._get_current_object())
        db.session.commit()
    channels = options_service.channels(db.session)
    keys = hook.hook_keys(db.session)
    base = current_app.config["CONTENTOPS_BASE_URL"]
    response = make_response(render_template(
        "feedback/hooks.html", title=gettext("Feedback hooks"), channels=channels, keys=keys,
        new_key=new_key, new_key_channel=new_key_channel, base=base))
    response.headers["Cache-Control"] = "no-store"  # the key is shown once
    return response
