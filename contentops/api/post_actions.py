"""POST /posts/<id>/schedule|unschedule|publish-now|retry|cancel (DESIGN.md §6), plus
mark-published for posts a person confirms (manual channels, `unknown` posts)."""

from __future__ import annotations

from flask import current_app, jsonify

from ..errors import N_, NotFound, ValidationError
from ..extensions import db
from ..i18n import translate
from ..models import Post
from ..services import publishing
from ..timeutil import parse_iso, utcnow
from . import api_bp, json_body
from .auth import api_role, api_user
from .openapi import operation
from .schemas import post_dict


def _post(post_id: int) -> Post:
    post = db.session.get(Post, post_id)
    if post is None:
        raise NotFound(N_("No such post."))
    return post


def _done(post: Post, warnings: list | None = None):
    db.session.commit()
    body = post_dict(post)
    body["warnings"] = [translate(w.message, dict(w.params)) for w in (warnings or [])]
    return jsonify(body)


@api_bp.post("/posts/<int:post_id>/schedule")
@api_role("editor")
@operation("Schedule a post", tag="Posts", body="Schedule", response="PostAction")
def post_schedule(post_id: int):
    data = json_body()
    raw = data.get("scheduled_at")
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError({"scheduled_at": [N_("This field is required.")]})
    try:
        when = parse_iso(raw)
    except ValueError:
        raise ValidationError({"scheduled_at": [
            N_("Use an ISO 8601 time with a UTC offset, e.g. 2026-11-11T20:00:00+08:00.")]}
        ) from None
    alone = data.get("alone", False)
    if not isinstance(alone, bool):
        raise ValidationError({"alone": [N_("Use true or false.")]})
    post = _post(post_id)
    warnings = publishing.reschedule(db.session, post, when, actor=api_user(), now=utcnow(),
                                     tz=current_app.config["CONTENTOPS_TIMEZONE"],
                                     alone=alone)
    return _done(post, warnings)


@api_bp.post("/posts/<int:post_id>/position")
@api_role("editor")
@operation("Change a post's place in its multi-article send", tag="Posts", body="Position",
           response="PostAction")
def post_position(post_id: int):
    """The post's place in its 公众号 multi-article send: {"position": 1} makes it the 头条."""
    position = json_body().get("position")
    if not isinstance(position, int) or isinstance(position, bool):
        raise ValidationError({"position": [N_("Send a whole number.")]})
    post = _post(post_id)
    publishing.groups.set_position(db.session, post, position, actor=api_user(), now=utcnow())
    return _done(post)


@api_bp.post("/posts/<int:post_id>/unschedule")
@api_role("editor")
@operation("Take a post off the calendar", tag="Posts", response="PostAction")
def post_unschedule(post_id: int):
    post = _post(post_id)
    publishing.unschedule_post(db.session, post, actor=api_user(), now=utcnow())
    return _done(post)


@api_bp.post("/posts/<int:post_id>/publish-now")
@api_role("editor")
@operation("Publish a post now", tag="Posts", response="PostAction")
def post_publish_now(post_id: int):
    post = _post(post_id)
    publishing.publish_now(db.session, post, actor=api_user(), now=utcnow())
    return _done(post)


@api_bp.post("/posts/<int:post_id>/retry")
@api_role("editor")
@operation("Retry a failed post", tag="Posts", response="PostAction")
def post_retry(post_id: int):
    post = _post(post_id)
    publishing.retry_post(db.session, post, actor=api_user(), now=utcnow())
    return _done(post)


@api_bp.post("/posts/<int:post_id>/cancel")
@api_role("editor")
@operation("Cancel a post", tag="Posts", response="PostAction")
def post_cancel(post_id: int):
    post = _post(post_id)
    publishing.cancel_post(db.session, post, actor=api_user(), now=utcnow())
    return _done(post)


@api_bp.post("/posts/<int:post_id>/mark-published")
@api_role("editor")
@operation("Confirm a post went out", tag="Posts", body="MarkPublished",
           response="PostAction")
def post_mark_published(post_id: int):
    data = json_body()
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise ValidationError({"url": [N_("Enter text.")]})
    post = _post(post_id)
    publishing.mark_published(db.session, post, url=url, actor=api_user(), now=utcnow())
    return _done(post)
