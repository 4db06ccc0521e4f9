"""Feedback ingest (invariant 5): idempotent by event id, exact under concurrency,
per-event validation, pulled totals never go backwards, signed inbound hooks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from contentops.extensions import db as _db
from contentops.models import FeedbackEvent, MetricBucket, Post
from contentops.services import feedback as fb
from contentops.services.feedback.ingest import ingest
from contentops.services.users import create_token

from .conftest import make_app
from .feedback_fixtures import channel, make_post

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def totals(session, post_id: int) -> dict[str, int]:
    post = session.get(Post, post_id)
    session.refresh(post)
    return {m: getattr(post, m) for m in ("reads", "likes", "comments", "shares", "clicks")}


def test_same_batch_twice_counts_once(db):
    post = make_post(db.session)
    db.session.commit()
    batch = [{"event_id": f"e{i}", "post_id": post.id, "kind": "read"} for i in range(5)]
    batch.append({"event_id": "l1", "post_id": post.id, "kind": "like", "count": 3})
    first = ingest(db.session, batch, now=NOW)
    db.session.commit()
    second = ingest(db.session, batch, now=NOW)
    db.session.commit()
    assert (first.accepted, first.duplicates, first.rejected) == (6, 0, [])
    assert (second.accepted, second.duplicates) == (0, 6)
    assert totals(db.session, post.id) == {"reads": 5, "likes": 3, "comments": 0,
                                           "shares": 0, "clicks": 0}
    assert db.session.scalar(select(func.count()).select_from(FeedbackEvent)) == 6
    bucket = db.session.scalars(select(MetricBucket)).one()
    assert (bucket.reads, bucket.likes) == (5, 3)
    assert bucket.hour == datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_duplicate_within_one_batch_counts_once(db):
    post = make_post(db.session)
    db.session.commit()
    result = ingest(db.session, [{"event_id": "x", "post_id": post.id, "kind": "share"}] * 3,
                       now=NOW)
    db.session.commit()
    assert (result.accepted, result.duplicates) == (1, 2)
    assert totals(db.session, post.id)["shares"] == 1


def test_mixed_batch_reports_index_and_reason_and_counts_the_good_ones(db):
    post = make_post(db.session, external_id="ext-1")
    ch_id = post.channel_id
    db.session.commit()
    batch = [
        {"event_id": "ok1", "post_id": post.id, "kind": "read", "count": 10},
        {"event_id": "bad-kind", "post_id": post.id, "kind": "love"},
        "not an object",
        {"event_id": "no-post", "post_id": 999999, "kind": "read"},
        {"event_id": "ok2", "channel_id": ch_id, "external_id": "ext-1", "kind": "comment",
         "text": "好文", "author": "小王", "occurred_at": "2026-11-22T20:00:00+08:00"},
        {"event_id": "no-ext", "channel_id": ch_id, "external_id": "nope", "kind": "read"},
        {"event_id": "", "post_id": post.id, "kind": "read"},
        {"event_id": "neg", "post_id": post.id, "kind": "read", "count": -1},
        {"event_id": "bool", "post_id": post.id, "kind": "read", "count": True},
        {"event_id": "naive", "post_id": post.id, "kind": "read",
         "occurred_at": "2026-11-22T20:00:00"},
        {"event_id": "future", "post_id": post.id, "kind": "read",
         "occurred_at": (NOW + timedelta(days=2)).isoformat()},
        {"event_id": "noaddr", "kind": "read"},
    ]
    result = ingest(db.session, batch, now=NOW)
    db.session.commit()
    assert result.accepted == 2
    assert [r.index for r in result.rejected] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert totals(db.session, post.id)["reads"] == 10
    assert totals(db.session, post.id)["comments"] == 1
    comment = db.session.scalars(select(FeedbackEvent).filter_by(event_id="ok2")).one()
    assert comment.occurred_at == datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert (comment.text, comment.author) == ("好文", "小王")


def test_time_forms_land_in_the_right_utc_hour_bucket(db):
    post = make_post(db.session)
    db.session.commit()
    forms = ["2026-11-22T20:59:59+08:00", "2026-11-22T12:30:00Z", " 2026-11-22T12:00:00z ",
             "2026-11-22T07:15:00-05:00", "2026-11-22T12:05:00.250+00:00"]
    batch = [{"event_id": f"t{i}", "post_id": post.id, "kind": "read", "occurred_at": when}
             for i, when in enumerate(forms)]
    batch += [{"event_id": "naive", "post_id": post.id, "kind": "read",
               "occurred_at": "2026-11-22T12:00:00"},
              {"event_id": "words", "post_id": post.id, "kind": "read",
               "occurred_at": "yesterday"}]
    result = ingest(db.session, batch, now=NOW)
    db.session.commit()
    assert result.accepted == 5 and [r.index for r in result.rejected] == [5, 6]
    buckets = {(b.hour, b.reads) for b in db.session.scalars(select(MetricBucket))}
    assert buckets == {(datetime(2026, 11, 22, 12, tzinfo=UTC), 5)}
    # bump() (a like undone on a web page) goes through the same hourly buckets.
    fb.bump(db.session, post.id, "reads", -1, now=datetime(2026, 11, 22, 12, 40, tzinfo=UTC))
    db.session.commit()
    assert {(b.hour, b.reads) for b in db.session.scalars(select(MetricBucket))} == \
        {(datetime(2026, 11, 22, 12, tzinfo=UTC), 4)}
    assert totals(db.session, post.id)["reads"] == 4


def test_pulled_totals_never_go_backwards(db):
    post = make_post(db.session, reads=100, likes=5)
    db.session.commit()
    gains = fb.apply_pulled_totals(db.session, {post.id: {"reads": 150, "likes": 3}}, now=NOW)
    db.session.commit()
    assert gains == {post.id: {"reads": 50}}
    assert totals(db.session, post.id)["reads"] == 150
    assert totals(db.session, post.id)["likes"] == 5
    fb.apply_pulled_totals(db.session, {post.id: {"reads": 120}}, now=NOW)
    db.session.commit()
    assert totals(db.session, post.id)["reads"] == 150


def test_collect_metrics_pulls_from_capable_adapters(db):
    from contentops.channels.base import Capabilities

    post = make_post(db.session, channel_name="MP", kind="wechat_mp", external_id="m1",
                     published_at=NOW - timedelta(days=1))
    db.session.commit()

    class Fake:
        capabilities = Capabilities(metrics=True)

        def fetch_metrics(self, items):
            assert items == [(post.id, "m1")]
            return {post.id: {"reads": 42, "shares": 2}}

    report = fb.collect_metrics(db.session, now=NOW, adapter_for=lambda ch: Fake())
    db.session.commit()
    assert report == {post.channel_id: 1}
    assert totals(db.session, post.id)["reads"] == 42


def _concurrent_ingest(engine, post_id: int, threads: int = 2, batches: int = 10) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        try:
            start.wait()
            with Session(engine) as session:
                for b in range(batches):
                    batch = [{"event_id": f"t{t}-b{b}-{i}", "post_id": post_id,
                              "kind": "read", "count": 2} for i in range(100)]
                    # Every thread also re-sends one shared id: counted exactly once overall.
                    batch.append({"event_id": f"shared-{b}", "post_id": post_id,
                                  "kind": "like"})
                    ingest(session, batch, now=NOW)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []


def test_two_threads_same_post_exact_totals_sqlite(db):
    post = make_post(db.session)
    db.session.commit()
    _concurrent_ingest(db.engine, post.id)
    assert totals(db.session, post.id)["reads"] == 2 * 10 * 100 * 2
    assert totals(db.session, post.id)["likes"] == 10
    bucket = db.session.scalars(select(MetricBucket)).one()
    assert (bucket.reads, bucket.likes) == (4000, 10)


@pytest.mark.postgres
def test_two_threads_same_post_exact_totals_postgres(tmp_path, pg_url):
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        post = make_post(_db.session)
        _db.session.commit()
        engine = create_engine(pg_url)
        try:
            _concurrent_ingest(engine, post.id)
        finally:
            engine.dispose()
        assert totals(_db.session, post.id)["reads"] == 2 * 10 * 100 * 2
        assert totals(_db.session, post.id)["likes"] == 10
        _db.session.remove()
        _db.engine.dispose()


# --- HTTP ----------------------------------------------------------------------------------

def _token(db, make_user, role="editor") -> dict[str, str]:
    _row, plain = create_token(db.session, make_user(role), "t")
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def test_api_contract(client, db, make_user):
    post = make_post(db.session)
    db.session.commit()
    headers = _token(db, make_user)
    body = {"events": [{"event_id": "a", "post_id": post.id, "kind": "read", "count": 7},
                       {"event_id": "b", "post_id": post.id, "kind": "poke"}]}
    r = client.post("/api/v1/feedback", json=body, headers=headers)
    assert r.status_code == 200
    assert r.get_json()["accepted"] == 1
    assert r.get_json()["duplicates"] == 0
    assert r.get_json()["rejected"][0]["index"] == 1
    assert "kind" in r.get_json()["rejected"][0]["error"]
    r = client.post("/api/v1/feedback", json=body, headers=headers)
    assert r.get_json()["accepted"] == 0 and r.get_json()["duplicates"] == 1
    assert totals(db.session, post.id)["reads"] == 7


def test_api_refuses_oversized_batches_and_bad_bodies(client, db, make_user):
    headers = _token(db, make_user)
    big = {"events": [{"event_id": str(i), "post_id": 1, "kind": "read"}
                      for i in range(1001)]}
    r = client.post("/api/v1/feedback", json=big, headers=headers)
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "validation_error"
    assert "events" in r.get_json()["error"]["fields"]
    r = client.post("/api/v1/feedback", data="nope", headers=headers)
    assert r.status_code == 400
    r = client.post("/api/v1/feedback", json={"events": []})
    assert r.status_code == 401
    assert client.post("/api/v1/feedback", json={"events": []},
                       headers=_token(db, make_user, "viewer")).status_code == 403


def test_rejection_reasons_are_translated(client, db, make_user):
    headers = _token(db, make_user)
    headers["Accept-Language"] = "zh-CN"
    r = client.post("/api/v1/feedback", json={"events": [{"event_id": "x", "post_id": 99,
                                                          "kind": "read"}]}, headers=headers)
    error = r.get_json()["rejected"][0]["error"]
    assert "99" in error and any("\u4e00" <= ch <= "\u9fff" for ch in error)


def test_signed_hook(client, db, app):
    post = make_post(db.session, external_id="x-1")
    other = make_post(db.session, channel_name="Other", kind="webhook")
    key = fb.create_hook_key(db.session, post.channel, secret_key=app.config["SECRET_KEY"],
                             now=NOW)
    db.session.commit()
    url = f"/api/v1/feedback/hooks/{post.channel_id}"
    raw = json.dumps({"events": [
        {"event_id": "h1", "external_id": "x-1", "kind": "read", "count": 4},
        {"event_id": "h2", "post_id": other.id, "kind": "read"},
    ]}).encode()
    r = client.post(url, data=raw, headers={"X-ContentOps-Signature": fb.sign(raw, "wrong"),
                                            "Content-Type": "application/json"})
    assert r.status_code == 401
    assert totals(db.session, post.id)["reads"] == 0
    r = client.post(url, data=raw, headers={"X-ContentOps-Signature": fb.sign(raw, key),
                                            "Content-Type": "application/json"})
    assert r.status_code == 200, r.data
    assert r.get_json()["accepted"] == 1
    assert r.get_json()["rejected"][0]["index"] == 1  # another channel's post
    assert totals(db.session, post.id)["reads"] == 4
    assert totals(db.session, other.id)["reads"] == 0
    # No key for that channel: refused.
    assert client.post(f"/api/v1/feedback/hooks/{other.channel_id}", data=raw, headers={
        "X-ContentOps-Signature": fb.sign(raw, key)}).status_code == 401
    assert channel(db.session).id == post.channel_id



def test_signed_hook_refuses_a_signed_body_that_is_not_an_event_list(client, db, app):
    post = make_post(db.session)
    key = fb.create_hook_key(db.session, post.channel, secret_key=app.config["SECRET_KEY"],
                             now=NOW)
    db.session.commit()
    url = f"/api/v1/feedback/hooks/{post.channel_id}"
    for raw, status, code in ((b"not json", 400, "bad_request"),
                              (b'{"events": "x"}', 422, "validation_error")):
        r = client.post(url, data=raw, headers={"X-ContentOps-Signature": fb.sign(raw, key),
                                                "Content-Type": "application/json"})
        assert r.status_code == status, r.data
        assert r.get_json()["error"]["code"] == code
    # The unsigned case answers in the same documented shape.
    r = client.post(url, data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "bad_signature"
    assert "X-ContentOps-Signature" in r.get_json()["error"]["message"]

@pytest.mark.postgres
def test_postgres_paths(tmp_path, pg_url):
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        s = _db.session
        post = make_post(s, external_id="e-1")
        s.commit()
        batch = [{"event_id": "a", "post_id": post.id, "kind": "read", "count": 3,
                  "occurred_at": "2026-11-23T08:00:00+08:00"},
                 {"event_id": "b", "channel_id": post.channel_id, "external_id": "e-1",
                  "kind": "comment", "text": "赞", "author": None},
                 {"event_id": "c", "post_id": 424242, "kind": "read"}]
        dry = ingest(s, batch, now=NOW, dry_run=True)
        assert (dry.accepted, [r.index for r in dry.rejected]) == (2, [2])
        s.rollback()
        assert totals(s, post.id)["reads"] == 0
        first = ingest(s, batch, now=NOW)
        s.commit()
        again = ingest(s, batch, now=NOW)
        s.commit()
        assert (first.accepted, again.accepted, again.duplicates) == (2, 0, 2)
        assert totals(s, post.id)["reads"] == 3 and totals(s, post.id)["comments"] == 1
        fb.apply_pulled_totals(s, {post.id: {"reads": 10, "comments": 0}}, now=NOW)
        s.commit()
        assert totals(s, post.id)["reads"] == 10 and totals(s, post.id)["comments"] == 1
        hours = {(b.hour, b.reads) for b in s.scalars(select(MetricBucket))}
        assert hours == {(datetime(2026, 11, 23, 0, tzinfo=UTC), 3),
                         (datetime(2026, 11, 23, 12, tzinfo=UTC), 7)}
        s.remove()
        _db.engine.dispose()


def test_comment_list_reads_the_partial_comments_index(db):
    """The piece page's comments come from the small comments-only index, not from every
    event of the post (reads are most of them)."""
    from sqlalchemy import event

    post = make_post(db.session)
    db.session.commit()
    batch = [{"event_id": f"r{i}", "post_id": post.id, "kind": "read"} for i in range(50)]
    batch += [{"event_id": f"c{i}", "post_id": post.id, "kind": "comment", "text": f"评论 {i}",
               "occurred_at": (NOW - timedelta(minutes=i)).isoformat()} for i in range(3)]
    ingest(db.session, batch, now=NOW)
    db.session.commit()
    seen: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, params, context, executemany):
        if "FROM feedback_events" in statement:
            seen.append((statement, params))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        comments = fb.received_comments(db.session, [post.id])
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [c.text for c in comments] == ["评论 0", "评论 1", "评论 2"]
    (statement, params), = seen
    raw = db.session.connection().connection.dbapi_connection
    plan = " ".join(str(r[-1]) for r in raw.execute("EXPLAIN QUERY PLAN " + statement, params))
    assert "ix_feedback_events_comments" in plan, plan
