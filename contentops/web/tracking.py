"""Public endpoints that e-mails link to: open pixel, click redirect, unsubscribe page."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request

from ..extensions import csrf, db
from ..security import public
from ..services import recipients as recipient_service
from ..services.feedback import email_tracking as tracking_service
from ..timeutil import utcnow

bp = Blueprint("tracking", __name__)

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_store(response: Response) -> Response:
    # Every open must reach us; proxies must not answer from a cache.
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/t/o/<int:post_id>/<token>.gif")
@public
def open_pixel(post_id: int, token: str):
    if tracking_service.record_open(db.session, post_id, token, now=utcnow()):
        db.session.commit()
    else:
        db.session.rollback()
    return _no_store(Response(PIXEL, mimetype="image/gif"))


@bp.get("/t/c/<int:post_id>/<token>")
@public
def click(post_id: int, token: str):
    key = tracking_service.tracking_key(current_app.config["SECRET_KEY"])
    target = tracking_service.click_target(post_id, token, request.args.get("u"),
                                           request.args.get("s"), key=key)
    if target is None:
        abort(404)  # never an open redirect
    if tracking_service.record_click(db.session, post_id, token, target, now=utcnow()):
        db.session.commit()
    else:
        db.session.rollback()
    return _no_store(redirect(target, 302))


@bp.get("/u/<token>")
@public
def unsubscribe_page(token: str):
    # GET only shows the page: mail scanners follow links, and must not unsubscribe anyone.
    recipient = recipient_service.by_token(db.session, token)
    if recipient is None:
        abort(404)
    return _no_store(Response(render_template("tracking/unsubscribe.html", recipient=recipient,
                                              token=token, done=False)))


@bp.post("/u/<token>")
@public
@csrf.exempt  # RFC 8058 one-click: the mail provider POSTs without our form token
def unsubscribe(token: str):
    if request.form.get("action") == "resubscribe":
        recipient = recipient_service.resubscribe(db.session, token)
    else:
        recipient = recipient_service.unsubscribe(db.session, token, now=utcnow())
    if recipient is None:
        abort(404)
    db.session.commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return _no_store(Response("", status=204))
    return _no_store(Response(render_template("tracking/unsubscribe.html", recipient=recipient,
                                              token=token, done=True)))
