"""The notification bell's pages: list, mark read, and each user's preferences."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from ..extensions import db
from ..i18n import translate
from ..security import requires_role
from ..services import notifications
from .formatting import format_datetime

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.record_once
def _configure_mail(state) -> None:
    config = state.app.config
    notifications.configure_mail(config.get("CONTENTOPS_SMTP_URL", ""),
                                 config.get("CONTENTOPS_MAIL_FROM", ""),
                                 config.get("CONTENTOPS_BASE_URL", ""))


@bp.app_template_global()
def notification_text(item) -> str:
    """Notifications store a msgid and params: each reader sees their own language."""
    return translate(item.message, notifications.localized_params(
        item.params or {}, translate, instant=format_datetime))


@bp.get("/")
@requires_role("viewer")
def index():
    user = current_user._get_current_object()
    return render_template("notifications/index.html", title=gettext("Notifications"),
                           items=notifications.recent(db.session, user, 100))


@bp.post("/read")
@requires_role("viewer")
def read():
    user = current_user._get_current_object()
    raw = request.form.getlist("id")
    ids = [int(i) for i in raw if i.isdigit()] if raw else None
    notifications.mark_read(db.session, user, ids)
    db.session.commit()
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for("notifications.index"))


@bp.route("/settings", methods=["GET", "POST"])
@requires_role("viewer")
def preferences():
    user = current_user._get_current_object()
    if request.method == "POST":
        chosen = [key for key in request.form.getlist("pref")
                  if key.split(":", 1)[0] in notifications.MEDIA
                  and key.split(":", 1)[-1] in notifications.KINDS]
        notifications.set_preferences(db.session, user, chosen)
        db.session.commit()
        flash(gettext("Notification settings saved."), "success")
        return redirect(url_for("notifications.preferences"))
    return render_template("notifications/preferences.html",
                           title=gettext("Notification settings"),
                           kinds=notifications.KINDS, prefs=notifications.preferences(user),
                           mail_enabled=notifications.mail_enabled())
