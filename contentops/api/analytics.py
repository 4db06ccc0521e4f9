"""GET /api/v1/analytics/best-time — the scheduling form's "best time to post" hint."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_babel import get_timezone

from ..services import analytics
from ..timeutil import is_valid_timezone, isoformat, to_zone, utcnow
from . import api_bp
from .auth import api_role
from .openapi import operation


@api_bp.get("/analytics/best-time")
@api_role("viewer")
@operation("Best time to post", tag="Analytics", query="best_time", response="BestTime")
def best_time():
    from ..extensions import db

    tz = request.args.get("tz") or str(get_timezone() or current_app.config[
        "CONTENTOPS_TIMEZONE"])
    if not is_valid_timezone(tz):
        tz = current_app.config["CONTENTOPS_TIMEZONE"]
    suggestion = analytics.suggest_time(
        db.session, channel_id=request.args.get("channel_id", type=int),
        audience_id=request.args.get("audience_id", type=int), tz=tz, now=utcnow())
    if suggestion is not None:
        local = to_zone(suggestion["next_at"], tz)
        suggestion = {**suggestion, "next_at": isoformat(suggestion["next_at"]),
                      # Wall-clock time for a datetime-local form field in that zone.
                      "next_at_local": local.strftime("%Y-%m-%dT%H:%M")}
    return jsonify({"suggestion": suggestion, "timezone": tz})
