"""Pulled metrics: the webhook channel's optional metrics_url, and the scheduler job that
collects totals every period on exactly one node, never lowering a counter (invariant 5)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from contentops.channels.base import TransientError
from contentops.extensions import db as _db
from contentops.models import MetricBucket, Post
from contentops.models.scheduler import JobRun
from contentops.scheduler import runner as runner_mod
from contentops.services import feedback
from contentops.services.channels import build_adapter
from contentops.timeutil import utcnow

from .engine_support import SECRET_KEY, make_channel, make_post, send_json


class MetricsService:
    """A receiver's metrics endpoint on loopback: checks the signature, answers the totals
    it holds for the external ids it is asked about."""

    def __init__(self, secret: str = "s3cret") -> None:
        self.secret = secret
        self.totals: dict[str, dict[str, Any]] = {}
        self.requests: list[list[dict[str, Any]]] = []
        self.status = 200
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(service.secret.encode(), body,
                                                hashlib.sha256).hexdigest()
                with service.lock:
                    if not hmac.compare_digest(expected,
                                               self.headers.get("X-ContentOps-Signature", "")):
                        status, reply = 401, {"error": "bad signature"}
                    elif service.status != 200:
                        status, reply = service.status, {}
                    else:
                        items = json.loads(body)["items"]
                        service.requests.append(items)
                        status = 200
                        reply = {"metrics": {i["external_id"]: service.totals[i["external_id"]]
                                             for i in items if i["external_id"] in service.totals}}
                send_json(self, status, reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    s = MetricsService()
    yield s
    s.close()


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


def published(session, channel, author, external_id: str, days_ago: float = 1) -> Post:
    post = make_post(session, channel, author, utcnow() - timedelta(days=days_ago),
                     status="published")
    post.external_id = external_id
    post.published_at = utcnow() - timedelta(days=days_ago)
    session.commit()
    return post


def metrics_channel(session, service, **config):
    return make_channel(session, config={"url": "http://127.0.0.1:9/none", "secret": "s3cret",
                                         "metrics_url": service.url, **config})


def test_a_metrics_url_must_be_a_web_address(db):
    from contentops.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        make_channel(db.session, config={"url": "http://127.0.0.1:9/none", "secret": "s",
                                         "metrics_url": "not an address"})
    assert "metrics_url" in str(info.value.fields)


def test_webhook_without_metrics_url_reports_nothing(db):
    channel = make_channel(db.session)
    adapter = build_adapter(channel, SECRET_KEY)
    assert adapter.capabilities.metrics is False and adapter.capabilities.idempotent


def test_fetch_metrics_signs_chunks_and_cleans_the_reply(db, service, author, monkeypatch):
    channel = metrics_channel(db.session, service)
    adapter = build_adapter(channel, SECRET_KEY)
    assert adapter.capabilities.metrics is True
    monkeypatch.setattr(type(adapter), "METRICS_CHUNK", 2)
    service.totals = {"a": {"reads": 10, "likes": 2}, "b": {"reads": -5, "shares": "7"},
                      "c": {"comments": 3, "bogus": 9}, "e": {"reads": 1}}
    got = adapter.fetch_metrics([(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")])
    assert got == {1: {"reads": 10, "likes": 2}, 3: {"comments": 3}, 5: {"reads": 1}}
    assert [len(r) for r in service.requests] == [2, 2, 1]
    assert service.requests[0] == [{"post_id": 1, "external_id": "a"},
                                   {"post_id": 2, "external_id": "b"}]
    service.status = 503
    with pytest.raises(TransientError):
        adapter.fetch_metrics([(1, "a")])
    service.status, service.secret = 200, "another secret"
    with pytest.raises(TransientError):  # the service refuses an unsigned/mis-signed ask
        adapter.fetch_metrics([(1, "a")])


def test_collect_metrics_raises_totals_and_books_the_gain(db, service, author):
    channel = metrics_channel(db.session, service)
    recent = published(db.session, channel, author, "r-1")
    old = published(db.session, channel, author, "r-2", days_ago=40)  # outside the window
    service.totals = {"r-1": {"reads": 120, "likes": 4}, "r-2": {"reads": 999}}
    adapter_for = lambda ch: build_adapter(ch, SECRET_KEY)  # noqa: E731
    report = feedback.collect_metrics(db.session, now=utcnow(), adapter_for=adapter_for)
    db.session.commit()
    assert report == {channel.id: 1}
    assert [i["external_id"] for r in service.requests for i in r] == ["r-1"]
    db.session.refresh(recent)
    db.session.refresh(old)
    assert (recent.reads, recent.likes, old.reads) == (120, 4, 0)
    assert db.session.scalar(select(func.sum(MetricBucket.reads))
                             .where(MetricBucket.post_id == recent.id)) == 120
    # A service that reports less later (a recount) never lowers the counter.
    service.totals["r-1"] = {"reads": 100, "likes": 6}
    feedback.collect_metrics(db.session, now=utcnow(), adapter_for=adapter_for)
    db.session.commit()
    db.session.refresh(recent)
    assert (recent.reads, recent.likes) == (120, 6)


def test_scheduler_pulls_metrics_once_per_period_across_nodes(app, db, service, author):
    app.config.update(CONTENTOPS_METRICS_SECONDS=1, CONTENTOPS_HEARTBEAT_SECONDS=1)
    channel = metrics_channel(db.session, service)
    post = published(db.session, channel, author, "ext-1")
    service.totals = {"ext-1": {"reads": 42, "shares": 3}}
    runners = [runner_mod.SchedulerRunner(app).start() for _ in range(2)]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _db.session.rollback()
            if _db.session.get(Post, post.id).reads == 42:
                break
            time.sleep(0.1)
        service.totals = {"ext-1": {"reads": 50, "shares": 3}}
        time.sleep(2.5)  # a few more periods
    finally:
        for r in runners:
            r.shutdown()
    _db.session.rollback()
    fresh = _db.session.get(Post, post.id)
    assert (fresh.reads, fresh.shares) == (50, 3)
    periods = _db.session.scalars(select(JobRun.period).where(
        JobRun.job == "collect_metrics")).all()
    # Two nodes, one pull per period: as many requests as claimed periods, none twice.
    assert len(periods) >= 2 and len(set(periods)) == len(periods)
    assert len(service.requests) == len(periods)


def test_a_redirecting_metrics_url_is_refused_not_followed(db, author):
    from contentops.channels.base import PermanentError

    from .engine_support import Redirector

    with Redirector(302) as target:
        channel = make_channel(db.session, config={
            "url": "http://127.0.0.1:9/hook", "secret": "s3cret",
            "metrics_url": f"{target.base}/metrics"})
        adapter = build_adapter(channel, SECRET_KEY)
        with pytest.raises(PermanentError) as caught:
            adapter.fetch_metrics([(1, "ext-1")])
        assert target.redirected == [("POST", "/metrics")] and target.landed == []
    assert caught.value.params == {"status": 302, "location": f"{target.base}/landing/metrics"}
    assert "redirects are not followed" in str(caught.value)
