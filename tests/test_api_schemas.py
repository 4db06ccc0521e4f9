"""One post shape across the API: the post list, a piece and the action replies agree, and a
stored failure reason reaches the caller as readable text in their language."""

from __future__ import annotations

import random

from sqlalchemy.orm import sessionmaker

from contentops.models import Post
from contentops.services import publishing
from contentops.services.users import create_token
from contentops.timeutil import utcnow

from .engine_support import FakeAdapter, make_channel, make_post

POST_FIELDS = {"id", "piece_id", "channel_id", "channel", "title", "status", "scheduled_at",
               "next_attempt_at", "published_at", "external_id", "external_url",
               "attempt_count", "last_error", "metrics", "send_group", "group_position"}


def bearer(db, user) -> dict:
    _token, plain = create_token(db.session, user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def test_a_failed_posts_reason_is_readable_text_in_the_callers_language(db, client,
                                                                        make_user):
    editor, admin = make_user("editor"), make_user("admin")
    channel = make_channel(db.session, name="官网博客")
    post = make_post(db.session, channel, editor, utcnow())
    off = client.patch(f"/api/v1/channels/{channel.id}", json={"active": False},
                       headers=bearer(db, admin))
    assert off.status_code == 200 and off.json["active"] is False
    publishing.Dispatcher(sessionmaker(bind=db.engine, expire_on_commit=False),
                          lambda _channel: FakeAdapter(), node="test", clock=utcnow,
                          rng=random.Random(1)).run()
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == "missed"

    h = bearer(db, editor)

    def listed(lang: str) -> dict:
        body = client.get("/api/v1/posts?status=missed",
                          headers={**h, "Accept-Language": lang}).json
        return next(i for i in body["items"] if i["id"] == post.id)

    assert listed("en")["last_error"] == "The channel 官网博客 is switched off."
    assert listed("zh")["last_error"] == "渠道 官网博客 已停用。"
    # The piece and an action reply say the same, in the same words.
    piece = client.get(f"/api/v1/pieces/{post.piece_id}",
                       headers={**h, "Accept-Language": "zh"}).json
    assert piece["posts"][0]["last_error"] == "渠道 官网博客 已停用。"
    acted = client.post(f"/api/v1/posts/{post.id}/unschedule",
                        headers={**h, "Accept-Language": "zh"})
    assert acted.status_code == 200
    assert acted.json["last_error"] == "渠道 官网博客 已停用。"
    assert set(acted.json) == POST_FIELDS | {"warnings"}


def test_every_post_reply_carries_the_same_fields(db, client, make_user):
    editor = make_user("editor")
    channel = make_channel(db.session)
    post = make_post(db.session, channel, editor, None, status="unscheduled")
    h = bearer(db, editor)
    item = next(i for i in client.get("/api/v1/posts", headers=h).json["items"]
                if i["id"] == post.id)
    assert set(item) >= POST_FIELDS | {"audience", "style", "campaign", "engagement_rate"}
    assert item["last_error"] is None
    assert set(item["metrics"]) == {"reads", "likes", "comments", "shares", "clicks"}
    in_piece = client.get(f"/api/v1/pieces/{post.piece_id}", headers=h).json["posts"][0]
    assert set(in_piece) >= POST_FIELDS | {"title_override", "body_override", "body_html"}
    for key in POST_FIELDS:
        assert in_piece[key] == item[key], key


def test_gave_up_reason_nests_the_last_error_in_the_readers_language(db, client, make_user):
    """"Gave up after N attempts" carries the last error as stored (message id + params), so
    a Chinese reader gets it all in Chinese and its detail ("HTTP 503") is said once."""
    from .engine_support import Clock

    editor = make_user("editor")
    channel = make_channel(db.session, max_retries=1)
    clock = Clock(utcnow())
    post = make_post(db.session, channel, editor, clock.now)
    adapter = FakeAdapter(["transient", "transient"])
    d = publishing.Dispatcher(sessionmaker(bind=db.engine, expire_on_commit=False),
                              lambda _channel: adapter, node="test", clock=clock,
                              rng=random.Random(1))
    d.run()
    clock.advance(3600)
    d.run()
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == "failed"

    h = bearer(db, editor)

    def listed(lang: str) -> str:
        body = client.get("/api/v1/posts?status=failed",
                          headers={**h, "Accept-Language": lang}).json
        return next(i for i in body["items"] if i["id"] == post.id)["last_error"]

    english, chinese = listed("en"), listed("zh")
    assert english == ("Gave up after 2 attempts. Last error: The receiver is busy or failing "
                       "(HTTP 503).")
    assert chinese == "尝试 2 次后放弃。最后的错误：接收方繁忙或出错（HTTP 503）。"
    assert english.count("HTTP 503") == 1 and chinese.count("HTTP 503") == 1
