"""POST /api/v1/feedback (DESIGN.md §6) and the signed inbound hook per channel."""

from __future__ import annotations

import json

from flask import current_app, jsonify, request
from flask_babel import gettext

from ..errors import N_, ValidationError
from ..extensions import db
from ..i18n import translate
from ..models import Channel
from ..security import public
from ..services import feedback as feedback_service
from ..timeutil import utcnow
from . import api_bp, json_body
from .auth import api_role
from .errors import json_error


def _events_from(data: dict) -> list:
    events = data.get("events")
    if not isinstance(events, list):
        raise ValidationError({"events": [N_("Send a list of events.")]})
    if len(events) > feedback_service.MAX_BATCH:
        raise ValidationError({"events": [N_("At most %(max)s events per request.")]},
                              params={"max": feedback_service.MAX_BATCH})
    return events


def _reply(result: feedback_service.IngestResult):
    return jsonify({
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "error": translate(r.message, dict(r.params))}
                     for r in result.rejected],
    })


@api_bp.post("/feedback")
@api_role("editor")
def post_feedback():
    events = _events_from(json_body())
    result = feedback_service.ingest(db.session, events, now=utcnow(), source="api")
    db.session.commit()
    return _reply(result)


@api_bp.post("/feedback/hooks/<int:channel_id>")
@public  # authenticated by the HMAC signature of the body, not by a user
def post_feedback_hook(channel_id: int):
    now = utcnow()
    channel = db.session.get(Channel, channel_id)
    body = request.get_data(cache=True)
    if channel is None or not feedback_service.verify_hook(
            db.session, channel_id, body, request.headers.get("X-ContentOps-Signature"),
            secret_key=current_app.config["SECRET_KEY"], now=now):
        db.session.rollback()
        return json_error(401, "bad_signature", gettext(
            "The signature does not match: sign the raw body with the channel's feedback key "
            "(X-ContentOps-Signature: sha256=<hex HMAC>)."))
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return json_error(400, "bad_request",
                          gettext("Send a JSON object with Content-Type: application/json."))
    events = _events_from(data)
    result = feedback_service.ingest(db.session, events, now=now, source="hook",
                                     only_channel=channel_id)
    db.session.commit()
    return _reply(result)
