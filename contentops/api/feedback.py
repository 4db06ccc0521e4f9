"""POST /api/v1/feedback (DESIGN.md §6) and the signed inbound hook per channel."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from ..extensions import db
from ..i18n import translate
from ..security import public
from ..services.feedback import hook, push
from ..services.feedback.ingest import IngestResult
from ..timeutil import utcnow
from . import api_bp, json_body
from .auth import api_role
from .openapi import Param, operation


def _reply(result: IngestResult):
    return jsonify({
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "error": translate(r.message, dict(r.params))}
                     for r in result.rejected],
    })


@api_bp.post("/feedback")
@api_role("editor")
@operation("Push feedback events", tag="Feedback", body="FeedbackPush",
           response="FeedbackResult")
def post_feedback():
    result = push.push(db.session, json_body(), now=utcnow())
    db.session.commit()
    return _reply(result)


@api_bp.post("/feedback/hooks/<int:channel_id>")
@public  # authenticated by the HMAC signature of the body, not by a user
# The signature covers the raw body, so it is checked first (by the service): the schema
# only documents what a signed body must hold.
@operation("Signed feedback hook", tag="Feedback", body="FeedbackPush", validate_body=False,
           response="FeedbackResult", extra_errors=(401,),
           headers=(Param(hook.SIGNATURE_HEADER, {"type": "string", "pattern": "^sha256="},
                          "sha256=<hex HMAC-SHA256 of the raw body with the channel's "
                          "feedback key>"),))
def post_feedback_hook(channel_id: int):
    # Errors (bad signature 401, not JSON 400, bad event list 422) are DomainErrors: the
    # blueprint's handler rolls back and answers in the documented shape.
    result = hook.receive(db.session, channel_id, request.get_data(cache=True),
                          request.headers.get(hook.SIGNATURE_HEADER),
                          secret_key=current_app.config["SECRET_KEY"], now=utcnow())
    db.session.commit()
    return _reply(result)


def _wechat_channel(channel_id: int):
    from ..services.publishing import mp_events

    return mp_events.signed_channel(db.session, channel_id, request.args,
                                    secret_key=current_app.config["SECRET_KEY"], now=utcnow())


# The 公众号 server URL (服务器配置), authenticated by WeChat's signature with the channel's
# server token rather than by a user.
@api_bp.get("/channels/<int:channel_id>/wechat-events")
@public
@operation("WeChat server URL handshake", tag="Channels", query="wechat_handshake",
           media_type="text/plain", response={"type": "string"}, extra_errors=(401,),
           description="WeChat checks the 公众号 server URL with a GET; the answer is "
                       "`echostr` when the signature holds.")
def wechat_mp_handshake(channel_id: int):
    _wechat_channel(channel_id)
    return Response(request.args.get("echostr") or "",
                    content_type="text/plain; charset=utf-8")


@api_bp.post("/channels/<int:channel_id>/wechat-events")
@public
@operation("WeChat event (MASSSENDJOBFINISH)", tag="Channels", query="wechat_event",
           raw_body="application/xml", media_type="text/plain", response={"type": "string"},
           extra_errors=(401,),
           description="WeChat pushes the result of a mass send; its posts are settled. "
                       "The plain-text answer `success` stops WeChat's retries.")
def wechat_mp_events(channel_id: int):
    from ..services.publishing import mp_events

    channel = _wechat_channel(channel_id)
    event = mp_events.parse(request.get_data(cache=False))
    mp_events.settle_mass_send(db.session, channel, event, now=utcnow())
    db.session.commit()
    return Response("success", content_type="text/plain; charset=utf-8")
