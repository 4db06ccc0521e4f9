"""Web blueprints, error pages and template helpers."""

from __future__ import annotations

from flask import Flask, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from ..errors import N_, DomainError
from ..extensions import db, login_manager
from ..models import User
from ..security import requires_role

# (endpoint, label msgid, minimum role) for the navigation bar.
NAV_ITEMS: list[tuple[str, str, str]] = [
    ("calendar.index", N_("Calendar"), "viewer"),
    ("pieces.index", N_("Pieces"), "viewer"),
    ("posts.index", N_("Posts"), "viewer"),
    ("review.index", N_("Review"), "approver"),
    ("publishing.index", N_("Publishing"), "editor"),
    ("analytics.index", N_("Analytics"), "viewer"),
    ("settings.index", N_("Settings"), "admin"),
    ("users.index", N_("Users"), "admin"),
]


def register_web(app: Flask) -> None:
    from . import (
        analytics,
        auth,
        calendar,
        channels,
        feedback,
        notifications,
        pieces,
        posts,
        public,
        publishing,
        review,
        settings,
        tracking,
        users,
    )

    for module in (auth, pieces, review, calendar, posts, analytics, settings, channels,
                   users, publishing, public, feedback, notifications, tracking):
        app.register_blueprint(module.bp)

    login_manager.login_view = "auth.login"
    login_manager.login_message = None

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

    @app.get("/")
    @requires_role("viewer")
    def index():
        return redirect(url_for("calendar.index"))

    _register_errors(app)
    _register_template_helpers(app)

    from . import security_headers

    security_headers.register(app)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json")


def _register_errors(app: Flask) -> None:
    from ..api.errors import json_error

    def page(status: int, title: str, message: str):
        if _wants_json():
            codes = {400: "bad_request", 403: "forbidden", 404: "not_found",
                     405: "method_not_allowed", 413: "too_large", 409: "conflict",
                     422: "validation_error", 500: "server_error"}
            return json_error(status, codes.get(status, "error"), message)
        return render_template("error.html", status=status, title=title, message=message), status

    @app.errorhandler(400)
    def bad_request(_e):
        return page(400, gettext("Bad request"), gettext("The request could not be understood."))

    @app.errorhandler(CSRFError)
    def csrf_error(_e):
        return page(400, gettext("Form expired"),
                    gettext("The form expired or was sent from elsewhere. Reload and try again."))

    @app.errorhandler(403)
    def forbidden(_e):
        return page(403, gettext("Not allowed"), gettext("Your role does not allow this."))

    @app.errorhandler(404)
    def not_found(_e):
        return page(404, gettext("Not found"), gettext("There is nothing at this address."))

    @app.errorhandler(405)
    def not_allowed(_e):
        return page(405, gettext("Method not allowed"),
                    gettext("This address does not accept that method."))

    @app.errorhandler(413)
    def too_large(_e):
        return page(413, gettext("Too large"), gettext("The upload is too large."))

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        from ..i18n import error_message

        db.session.rollback()
        return page(exc.status, gettext("Not possible"), error_message(exc))

    @app.errorhandler(500)
    def server_error(_e):
        db.session.rollback()
        return page(500, gettext("Something went wrong"),
                    gettext("The error was logged. Please try again."))


def _register_template_helpers(app: Flask) -> None:
    from .. import labels
    from . import formatting

    formatting.register(app)

    def _label(table: dict[str, str]):
        return lambda key: formatting.label(table, key)

    app.jinja_env.globals.update(
        post_status_label=_label(labels.POST_STATUS_LABELS),
        post_status_color=lambda s: labels.POST_STATUS_COLORS.get(s, "secondary"),
        piece_status_label=_label(labels.PIECE_STATUS_LABELS),
        piece_status_color=lambda s: labels.PIECE_STATUS_COLORS.get(s, "secondary"),
        role_label=_label(labels.ROLE_LABELS),
        metric_label=_label(labels.METRIC_LABELS),
    )

    @app.context_processor
    def inject():
        from ..i18n import LOCALE_COOKIE

        return {
            "current_locale": str(get_locale() or "en"),
            "locale_cookie": LOCALE_COOKIE,
            "nav_items": [
                item for item in NAV_ITEMS
                if current_user.is_authenticated and current_user.has_role(item[2])
            ],
        }
