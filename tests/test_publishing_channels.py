"""Webhook, web and manual channels end to end: real HTTP on loopback, public pages, feeds."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import feedparser
import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import sessionmaker

from contentops.models import Post
from contentops.reasons import reason_text
from contentops.services import publishing
from contentops.services.channels import build_adapter

from .engine_support import SECRET_KEY, Clock, Receiver, make_channel, make_post, make_posts

WEBHOOK_FIELDS = {"post_id", "piece_id", "title", "body_markdown", "body_html", "body_text",
                  "audience", "style", "campaign", "tags", "scheduled_at", "channel"}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


def run(db, clock, http=None, workers=4):
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    d = publishing.Dispatcher(factory, lambda c: build_adapter(c, SECRET_KEY, http=http),
                              node="t", clock=clock, workers=workers, base_url="http://testserver",
                              rng=random.Random(3),
                              policy=publishing.RetryPolicy(base_seconds=5))
    try:
        return d.run()
    finally:
        d.stop()


def fresh(db, post_id):
    db.session.expire_all()
    return db.session.get(Post, post_id)


def test_webhook_request_matches_the_contract(db, clock, author):
    with Receiver() as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"},
                               name="私域 webhook")
        post = make_post(db.session, channel, author, clock.now)
        assert run(db, clock).published == 1
    assert recv.bad_signatures == 0
    [delivery] = recv.deliveries
    body = json.loads(delivery["body"])
    assert set(body) == WEBHOOK_FIELDS
    assert body["post_id"] == post.id and body["title"] == "双11 预告"
    assert body["channel"] == "私域 webhook"
    assert "<strong>限时</strong>" in body["body_html"]
    assert "https://example.com/sale" in body["body_text"]
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    assert headers["idempotency-key"] == publishing.idempotency_key(fresh(db, post.id))
    assert headers["x-contentops-signature"].startswith("sha256=")
    assert headers["content-type"].startswith("application/json")
    done = fresh(db, post.id)
    assert done.status == "published"
    assert done.external_id == f"r-{post.id}"
    assert done.external_url == f"https://recv.example/{post.id}"


@pytest.mark.parametrize(("status", "expected"), [(503, "retrying"), (429, "retrying"),
                                                  (408, "retrying"), (400, "failed"),
                                                  (404, "failed")])
def test_webhook_status_codes(db, clock, author, status, expected):
    with Receiver(statuses=[status]) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        post = make_post(db.session, channel, author, clock.now)
        run(db, clock)
    done = fresh(db, post.id)
    assert done.status == expected
    assert f"HTTP {status}" in reason_text(done.last_error)


def test_webhook_timeouts_and_refused_connections_are_transient(db, clock, author):
    from .conftest import free_port

    channel = make_channel(db.session, config={
        "url": f"http://127.0.0.1:{free_port()}/nobody", "secret": "s"})
    post = make_post(db.session, channel, author, clock.now)
    run(db, clock)
    assert fresh(db, post.id).status == "retrying"
    assert "connect" in reason_text(fresh(db, post.id).last_error)
    with Receiver(delay=1.5) as recv:
        channel2 = make_channel(db.session, config={"url": recv.url, "secret": "s3cret",
                                                    "timeout_s": 1})
        slow = make_post(db.session, channel2, author, clock.now)
        run(db, clock)
    assert fresh(db, slow.id).status == "retrying"
    assert "in time" in reason_text(fresh(db, slow.id).last_error)


def test_webhook_reuses_connections_across_a_burst(db, clock, author):
    http = requests.Session()
    http.mount("http://", HTTPAdapter(pool_maxsize=4))
    with Receiver() as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        ids = make_posts(db.session, channel, author, clock.now, 60)
        stats = run(db, clock, http=http, workers=4)
    assert stats.published == 60
    assert sorted(recv.key_counts().values()) == [1] * 60
    assert len(recv.connections) <= 8, recv.connections
    assert {fresh(db, i).status for i in ids} == {"published"}


def test_web_channel_page_goes_live_only_when_published(app, db, client, clock, author):
    channel = make_channel(db.session, "web", name="官网文章")
    post = make_post(db.session, channel, author, clock.now,
                     body="# 标题\n\n欢迎 <script>alert(1)</script> **会员**")
    from contentops.channels.web import public_slug

    slug = public_slug(post.id, post.piece_id)
    assert client.get(f"/p/{slug}").status_code == 404
    assert run(db, clock).published == 1
    done = fresh(db, post.id)
    assert done.slug == slug
    assert done.external_url == f"http://testserver/p/{slug}"
    page = client.get(f"/p/{slug}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<strong>会员</strong>" in html and "<script>alert" not in html
    assert 'name="viewport"' in html and 'property="og:title"' in html
    # Cancelled (taken down) → gone again.
    done.status = "cancelled"
    db.session.commit()
    assert client.get(f"/p/{slug}").status_code == 404


def test_web_channel_feeds_parse(app, db, client, clock, author):
    channel = make_channel(db.session, "web", name="官网")
    # Titles pass the compliance check: "第一" is an Advertising-Law term and blocks submit.
    first = make_post(db.session, channel, author, clock.now, title="开篇")
    run(db, clock)
    clock.advance(60)
    second = make_post(db.session, channel, author, clock.now, title="续篇")
    run(db, clock)
    make_post(db.session, channel, author, clock.now + timedelta(days=1), title="未来")
    rss = feedparser.parse(client.get(f"/c/{channel.id}/rss.xml").data)
    atom = feedparser.parse(client.get(f"/c/{channel.id}/atom.xml").data)
    for feed in (rss, atom):
        assert not feed.bozo, feed.bozo_exception
        assert feed.feed.title == "官网"
        assert [e.title for e in feed.entries] == ["续篇", "开篇"]
        assert feed.entries[0].link == fresh(db, second.id).external_url
    assert atom.entries[1].link.endswith(fresh(db, first.id).slug)
    assert client.get("/c/999999/rss.xml").status_code == 404
    webhook = make_channel(db.session)
    assert client.get(f"/c/{webhook.id}/atom.xml").status_code == 404


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_redirect_is_a_permanent_failure_naming_the_location(db, clock, author,
                                                                       status):
    """requests would follow a 301/302 as a body-less GET to a page answering 200 (and a
    307/308 as a second POST to an address nobody configured): a redirect is not a delivery."""
    from .engine_support import Redirector

    with Redirector(status) as target:
        channel = make_channel(db.session, max_retries=3, config={
            "url": f"{target.base}/hook", "secret": "s3cret"})
        post = make_post(db.session, channel, author, clock.now)
        stats = run(db, clock)
        assert target.redirected == [("POST", "/hook")]
        assert target.landed == []  # never followed, so nothing there counted as delivered
    done = fresh(db, post.id)
    assert stats.published == 0
    assert done.status == "failed" and done.attempt_count == 1  # permanent: not retried
    assert done.published_at is None and done.external_id is None
    reason = reason_text(done.last_error)
    assert f"HTTP {status}" in reason and f"{target.base}/landing/hook" in reason, reason
    assert "redirects are not followed" in reason
    assert reason.count(f"HTTP {status}") == 1 and reason.count("/landing/hook") == 1
