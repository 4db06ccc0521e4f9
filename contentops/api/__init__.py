"""JSON API v1 (DESIGN.md §6)."""

from __future__ import annotations

from flask import Blueprint
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from ..errors import N_, BadRequest, DomainError
from ..extensions import db
from ..i18n import error_fields, error_message
from ..jsonutil import request_json
from .errors import json_error

api_bp = Blueprint("api", __name__)


@api_bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    db.session.rollback()
    return json_error(exc.status, exc.code, error_message(exc), error_fields(exc))


@api_bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}
    messages = {404: gettext("No such object."), 405: gettext("Method not allowed."),
                413: gettext("The request is too large."),
                400: gettext("The request could not be understood.")}
    status = exc.code or 400
    return json_error(status, codes.get(status, "error"),
                      messages.get(status, exc.description or ""))


def json_body() -> dict:
    """The request's JSON object, or a 400 in the documented shape."""
    data = request_json()
    if not isinstance(data, dict):
        raise BadRequest(N_("Send a JSON object with Content-Type: application/json."))
    return data



# Each module registers its routes on api_bp when imported; a new one is added here.
from . import (  # noqa: E402 - the modules need api_bp and json_body defined above
    analytics,
    calendar,
    channels,
    docs,
    feedback,
    health,
    pieces,
    post_actions,
    posts,
    review,
    taxonomy,
    tokens,
)

__all__ = ["api_bp", "json_body", "analytics", "calendar", "channels", "docs", "feedback", "health",
           "pieces", "post_actions", "posts", "review", "taxonomy", "tokens"]
