"""API authentication: bearer tokens, or the signed-in session plus a CSRF header."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import current_app, g, request
from flask_babel import gettext, ngettext
from flask_login import current_user
from flask_wtf.csrf import ValidationError as CSRFValidationError
from flask_wtf.csrf import validate_csrf

from ..extensions import db
from ..models import User
from ..services import login_throttle as throttle
from ..services.users import user_for_token
from ..timeutil import utcnow
from .errors import json_error

F = TypeVar("F", bound=Callable)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def resolve_user(check_csrf: bool = True):
    """Set g.api_user or return an error response."""
    header = request.headers.get("Authorization", "")
    g.api_via_token = False
    if header.lower().startswith("bearer "):
        user = user_for_token(db.session, header[7:].strip())
        if user is None:
            return _token_failure()
        db.session.commit()  # last_used_at
        g.api_user = user
        g.api_via_token = True
        return None
    if current_user.is_authenticated:
        g.api_user = current_user._get_current_object()
        return csrf_failure() if check_csrf else None
    return json_error(401, "unauthorized",
                      gettext("Send an API token: Authorization: Bearer <token>."))


def _token_failure():
    """401 for a wrong token, 429 once an address has sent too many of them.

    Only failures are counted and checked, so valid tokens cost no extra query; a valid token
    is never refused (guessing one is hopeless, the limit only stops the noise).
    """
    secret = current_app.config["SECRET_KEY"]
    now = utcnow()
    source = throttle.ip_subject(secret, request.remote_addr, scope="token")
    wait = throttle.retry_after(db.session, [source], now=now)
    if wait is None:
        throttle.record_failure(db.session, [source], now=now)
        db.session.commit()
        return json_error(401, "unauthorized", gettext("The API token is not valid."))
    db.session.rollback()
    response, status = json_error(429, "too_many_attempts", ngettext(
        "Too many attempts with a wrong API token; try again in %(num)d minute.",
        "Too many attempts with a wrong API token; try again in %(num)d minutes.",
        throttle.minutes(wait)))
    response.headers["Retry-After"] = str(wait)
    return response, status


def csrf_failure():
    """A session-authenticated write must carry the page's CSRF token."""
    if g.get("api_via_token") or request.method in SAFE_METHODS:
        return None
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except CSRFValidationError:
        return json_error(400, "csrf_failed",
                          gettext("The page expired. Reload it and try again."))
    return None


def api_user() -> User:
    return g.api_user


def api_role(role: str) -> Callable[[F], F]:
    """Like security.requires_role, for the JSON API (401/403 as JSON)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args, **kwargs):
            # Role before CSRF: a role that may never do this gets 403, not "reload the page".
            failure = resolve_user(check_csrf=False)
            if failure is not None:
                return failure
            if not g.api_user.has_role(role):
                return json_error(403, "forbidden", gettext("Your role does not allow this."))
            failure = csrf_failure()
            if failure is not None:
                return failure
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
