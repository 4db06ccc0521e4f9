"""The Publishing page: upcoming, in-flight, retrying, unknown, failed and missed posts, with
actions (retry, mark as published, cancel, reschedule, publish now); a post's attempt log;
the scheduler warning banner shown on every page."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale, get_timezone, gettext
from flask_login import current_user

from ..channels.base import ChannelError
from ..errors import N_, DomainError, NotFound, ValidationError
from ..extensions import csrf, db
from ..i18n import error_fields, error_message, translate
from ..models import Post
from ..reasons import reason_text
from ..security import public, requires_role
from ..services import publishing, system
from ..services import users as user_service
from ..services.channels import build_adapter
from ..services.feedback.email_tracking import tracking_key
from ..services.publishing import staff as staff_service
from ..timeutil import WallClockError, parse_local, to_zone, utcnow
from .formatting import format_datetime
from .wallclock import fold_choice, requested_fold

bp = Blueprint("publishing", __name__, url_prefix="/publishing")

# Section key -> heading msgid, in page order.
SECTIONS = (
    ("unknown", N_("Outcome unknown")),
    ("failed", N_("Failed")),
    ("missed", N_("Missed")),
    ("awaiting_staff", N_("Waiting for a person")),
    ("retrying", N_("Retrying")),
    ("in_flight", N_("Sending now")),
    ("upcoming", N_("Upcoming")),
)
STATUS_LABELS = {
    "unscheduled": N_("Not scheduled"), "scheduled": N_("Scheduled"),
    "publishing": N_("Sending"), "published": N_("Published"), "retrying": N_("Retrying"),
    "failed": N_("Failed"), "unknown": N_("Outcome unknown"),
    "awaiting_staff": N_("Waiting for a person"), "missed": N_("Missed"),
    "cancelled": N_("Cancelled"),
}
STATUS_COLORS = {
    "scheduled": "primary", "publishing": "info", "published": "success",
    "retrying": "warning", "failed": "danger", "unknown": "danger", "awaiting_staff": "warning",
    "missed": "danger", "cancelled": "secondary", "unscheduled": "secondary",
}
OUTCOME_LABELS = {
    "published": N_("Sent"), "transient": N_("Temporary error"),
    "permanent": N_("Refused"), "lost": N_("Interrupted"), "reconciled": N_("Confirmed"),
    "quota": N_("Quota used up, moved"),
}
ACTIONS = {
    "retry": publishing.retry_post,
    "cancel": publishing.cancel_post,
    "unschedule": publishing.unschedule_post,
    "publish-now": publishing.publish_now,
}


def _reason(post_or_text) -> str:
    text = post_or_text if isinstance(post_or_text, str | None) else post_or_text.last_error
    return reason_text(text, translate, instant=format_datetime)


@bp.app_context_processor
def _scheduler_banner():
    def scheduler_down() -> bool:
        """True when no scheduler beat within system.HEARTBEAT_STALE, the same rule as
        /api/v1/health's `scheduler.alive` (cached per request)."""
        if "scheduler_down" not in g:
            try:
                g.scheduler_down = not system.scheduler_alive(db.session, now=utcnow())
            except Exception:  # noqa: BLE001 - a banner must never break a page
                db.session.rollback()
                g.scheduler_down = False
        return g.scheduler_down

    def scheduler_due() -> int:
        """Posts due now that wait for a scheduler (asked only when none is running)."""
        if "scheduler_due" not in g:
            try:
                g.scheduler_due = system.due_count(db.session, now=utcnow())
            except Exception:  # noqa: BLE001
                db.session.rollback()
                g.scheduler_due = 0
        return g.scheduler_due

    return {"scheduler_down": scheduler_down, "scheduler_due": scheduler_due,
            "reason_text": _reason,
            "post_status_labels": STATUS_LABELS, "attempt_outcome_labels": OUTCOME_LABELS,
            "post_status_colors": STATUS_COLORS}


@bp.get("/")
@requires_role("editor")
def index():
    groups = publishing.publishing_overview(db.session)
    health = system.health(db.session, now=utcnow())
    return render_template("publishing/index.html", title=gettext("Publishing"),
                           groups=groups, sections=SECTIONS, health=health)


def _load(post_id: int) -> Post:
    post = db.session.get(Post, post_id)
    if post is None:
        abort(404)
    return post


def _local_value(post: Post) -> str:
    when = to_zone(post.scheduled_at, str(get_timezone()))
    return when.strftime("%Y-%m-%dT%H:%M") if when else ""


@bp.get("/posts/<int:post_id>")
@requires_role("editor")
def detail(post_id: int):
    post = _load(post_id)
    return _render_detail(post)


def _render_detail(post: Post, errors: dict | None = None, status: int = 200):
    copy_text = staff_service.copy_text(post) if post.channel.kind == "manual" else None
    return render_template(
        "publishing/detail.html", title=post.title, post=post,
        attempts=publishing.attempts_for(db.session, post.id), errors=errors or {},
        scheduled_local=request.form.get("scheduled_at") or _local_value(post),
        copy_text=copy_text, current_timezone=str(get_timezone()),
        fold_choice=g.get("fold_choice"),
        staff=staff_service.staff_card(db.session, post, now=utcnow())), status


def _back(post: Post):
    target = request.form.get("next")
    if target == "detail":
        return redirect(url_for("publishing.detail", post_id=post.id))
    return redirect(url_for("publishing.index"))


@bp.post("/posts/<int:post_id>/<action>")
@requires_role("editor")
def act(post_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    post = _load(post_id)
    try:
        ACTIONS[action](db.session, post, actor=current_user, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
        return _back(post)
    messages = {"retry": gettext("The post will be sent again in a moment."),
                "cancel": gettext("The post was cancelled."),
                "unschedule": gettext("The post was taken off the schedule."),
                "publish-now": gettext("The post will go out in a moment.")}
    flash(messages[action], "success")
    return _back(post)


def _form_action(post: Post, run):
    """Run a detail-page form action and commit. Returns (result, None), or (None, the
    response that shows why it was refused: field errors on the page, others as a flash)."""
    try:
        result = run()
        db.session.commit()
        return result, None
    except ValidationError as exc:
        db.session.rollback()
        db.session.refresh(post)
        return None, _render_detail(post, error_fields(exc), 422)
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
        return None, _back(post)


@bp.post("/posts/<int:post_id>/mark-published")
@requires_role("editor")
def mark_published(post_id: int):
    post = _load(post_id)
    _, refused = _form_action(post, lambda: publishing.mark_published(
        db.session, post, url=request.form.get("url"), actor=current_user, now=utcnow()))
    if refused is not None:
        return refused
    flash(gettext("Marked as published."), "success")
    return _back(post)


def _reschedule(post: Post) -> list:
    raw = (request.form.get("scheduled_at") or "").strip()
    if not raw:
        raise ValidationError({"scheduled_at": [N_("This field is required.")]})
    try:
        when = parse_local(raw, str(get_timezone()), requested_fold(request.form, raw))
    except WallClockError as exc:
        g.fold_choice = fold_choice(exc, raw)
        raise exc.as_validation_error("scheduled_at") from None
    except ValueError:
        raise ValidationError({"scheduled_at": [N_("Enter a date and time.")]}) from None
    return publishing.reschedule(db.session, post, when, actor=current_user, now=utcnow(),
                                 tz=current_app.config["CONTENTOPS_TIMEZONE"])


@bp.post("/posts/<int:post_id>/reschedule")
@requires_role("editor")
def reschedule(post_id: int):
    post = _load(post_id)
    warnings, refused = _form_action(post, lambda: _reschedule(post))
    if refused is not None:
        return refused
    for warning in warnings:
        flash(translate(warning.message, dict(warning.params)), "warning")
    flash(gettext("The post was rescheduled."), "success")
    return redirect(url_for("publishing.detail", post_id=post.id))


@bp.post("/posts/<int:post_id>/remind")
@requires_role("editor")
def remind(post_id: int):
    post = _load(post_id)
    try:
        adapter = build_adapter(post.channel, current_app.config["SECRET_KEY"])
        reminded = staff_service.remind_pending(db.session, post, adapter, now=utcnow(),
                                                actor=current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(error_message(exc), "error")
    except ChannelError as exc:  # the service refused or could not be reached
        db.session.rollback()
        flash(translate(exc.message, exc.params), "error")
    else:
        flash(gettext("Reminded: %(names)s", names=", ".join(reminded)), "success")
    return redirect(url_for("publishing.detail", post_id=post.id))


def _confirm_page(post: Post, assignee: str, **context):
    """Shown in the assignee's own language when they have an account here, else the
    browser's."""
    copy_text = staff_service.copy_text(post)
    locale = (user_service.locale_of(db.session, assignee, current_app.config["LANGUAGES"])
              if assignee else None)
    page = lambda: render_template("publishing/confirm.html",  # noqa: E731
                                   title=gettext("Confirm the post"), post=post,
                                   assignee=assignee, copy_text=copy_text, **context)
    if locale:
        with force_locale(locale):
            html = page()
    else:
        html = page()
    response = current_app.make_response(html)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _link_key() -> bytes:
    return staff_service.link_key(tracking_key(current_app.config["SECRET_KEY"]))


@bp.get("/posts/<int:post_id>/confirm/<token>")
@public
def confirm_page(post_id: int, token: str):
    # GET only shows the page: mail scanners follow links and must not confirm for anyone.
    try:
        state = staff_service.confirmation_state(db.session, post_id, token, key=_link_key())
    except NotFound:
        abort(404)
    return _confirm_page(state.post, state.assignee, done=state.already,
                         already=state.already)


@bp.post("/posts/<int:post_id>/confirm/<token>")
@public
@csrf.exempt  # the token in the URL is the credential; nobody is signed in
def confirm(post_id: int, token: str):
    try:
        done = staff_service.confirm_assignee(db.session, post_id, token, key=_link_key(),
                                              now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        post = _load(post_id)
        return _confirm_page(post, "", done=False, already=False,
                             error=error_message(exc)), 409
    return _confirm_page(done.post, done.assignee, done=True, already=done.already)
