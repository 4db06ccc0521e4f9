"""Post actions over the API, the Publishing page, health and the scheduler banner."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from contentops.models import Post, PublishAttempt
from contentops.reasons import encode_reason
from contentops.services import system
from contentops.timeutil import utcnow

from .engine_support import make_channel, make_post


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


def bearer(db, user) -> dict:
    from contentops.services.users import create_token

    _token, plain = create_token(db.session, user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def fresh(db, post_id):
    db.session.expire_all()
    return db.session.get(Post, post_id)


def test_api_post_actions(db, client, author):
    h = bearer(db, author)
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, utcnow() + timedelta(hours=2))
    r = client.post(f"/api/v1/posts/{post.id}/publish-now", headers=h)
    assert r.status_code == 200, r.json
    assert r.json["status"] == "scheduled"
    r = client.post(f"/api/v1/posts/{post.id}/unschedule", headers=h)
    assert r.json["status"] == "unscheduled" and r.json["scheduled_at"] is None
    r = client.post(f"/api/v1/posts/{post.id}/schedule",
                    json={"scheduled_at": "2099-11-11T20:00:00+08:00"}, headers=h)
    assert r.status_code == 200
    assert r.json["scheduled_at"] == "2099-11-11T12:00:00Z"
    r = client.post(f"/api/v1/posts/{post.id}/schedule", json={"scheduled_at": "tomorrow"},
                    headers=h)
    assert r.status_code == 422
    assert set(r.json["error"]) == {"code", "message", "fields"}
    assert "scheduled_at" in r.json["error"]["fields"]
    r = client.post(f"/api/v1/posts/{post.id}/retry", headers=h)
    assert r.status_code == 409 and r.json["error"]["code"] == "invalid_state"
    r = client.post(f"/api/v1/posts/{post.id}/cancel", headers=h)
    assert r.json["status"] == "cancelled"
    assert client.post("/api/v1/posts/999999/cancel", headers=h).status_code == 404
    p = fresh(db, post.id)
    p.status = "unknown"
    db.session.commit()
    r = client.post(f"/api/v1/posts/{post.id}/mark-published",
                    json={"url": "https://mp.weixin.qq.com/s/abc"}, headers=h)
    assert r.json["status"] == "published"
    assert r.json["external_url"] == "https://mp.weixin.qq.com/s/abc"


def test_api_post_actions_need_an_editor(db, client, author, make_user):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, utcnow() + timedelta(hours=2))
    r = client.post(f"/api/v1/posts/{post.id}/cancel", headers=bearer(db, make_user("viewer")))
    assert r.status_code == 403
    assert fresh(db, post.id).status == "scheduled"


def test_retry_of_unapproved_content_is_refused_in_the_callers_language(db, client, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, utcnow(), approved=False, status="missed")
    r = client.post(f"/api/v1/posts/{post.id}/retry",
                    headers={"Accept-Language": "zh", **bearer(db, author)})
    assert r.status_code == 409
    assert r.json["error"]["code"] == "not_approved"
    assert r.json["error"]["message"] != "Approve the current version of the content first."


def test_health_reports_scheduler_queue_and_failures(db, client, author):
    body = client.get("/api/v1/health").json
    # No scheduler, but nothing due either: nothing is held up.
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["reasons"] == [] and body["message"] == ""
    assert body["scheduler"] == {"alive": False, "last_heartbeat": None, "nodes": 0,
                                 "stale_after_seconds": 10}
    channel = make_channel(db.session)
    now = utcnow()
    make_post(db.session, channel, author, now - timedelta(seconds=5))
    later = make_post(db.session, channel, author, now + timedelta(hours=1))
    failed = make_post(db.session, channel, author, now, status="failed")
    db.session.add(PublishAttempt(post_id=failed.id, started_at=now, outcome="permanent",
                                  error="x"))
    db.session.commit()
    # A post is due and no scheduler ever ran: degraded, and why.
    r = client.get("/api/v1/health", headers={"Accept-Language": "en"})
    assert r.status_code == 200  # the web side serves; monitoring reads `status`
    assert r.json["status"] == "degraded" and r.json["reasons"] == ["scheduler_down"]
    assert r.json["message"].startswith("No scheduler is running (none has ever checked in)")
    assert "1 posts are due" in r.json["message"]
    zh = client.get("/api/v1/health", headers={"Accept-Language": "zh"}).json
    assert zh["reasons"] == ["scheduler_down"] and zh["message"] != r.json["message"]
    system.heartbeat(db.session, "node-1", now=utcnow())
    body = client.get("/api/v1/health").json
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["scheduler"]["alive"] is True and body["scheduler"]["nodes"] == 1
    assert body["scheduler"]["last_heartbeat"].endswith("Z")
    assert body["queue"]["due"] == 1
    assert body["queue"]["scheduled"] == 2
    assert body["queue"]["next_due"] is not None
    assert body["failures_24h"] == 1 and body["failed"] == 1
    assert later.id


def test_a_node_whose_heartbeat_is_stale_stops_counting_as_alive(db, client, login, author):
    """Two nodes, one killed (its heartbeat stops): it drops out of `nodes` once its beat is
    older than HEARTBEAT_STALE; when the other goes too, health is degraded (a post is due)
    and the page banner says the same."""
    stale = system.HEARTBEAT_STALE
    channel = make_channel(db.session)
    make_post(db.session, channel, author, utcnow() - timedelta(minutes=1))
    now = utcnow()
    system.heartbeat(db.session, "killed", now=now - stale - timedelta(seconds=1))
    system.heartbeat(db.session, "running", now=now)
    body = client.get("/api/v1/health").json
    assert body["scheduler"]["alive"] is True and body["scheduler"]["nodes"] == 1
    assert [n.node_id for n in system.live_nodes(db.session, now=utcnow())] == ["running"]
    assert body["status"] == "ok" and body["reasons"] == []
    login(author)
    page = client.get("/posts/").get_data(as_text=True)
    assert 'data-testid="scheduler-banner"' not in page
    # Now "running" is silent past the stale time as well.
    later = now + stale + timedelta(seconds=1)
    assert system.live_nodes(db.session, now=later) == []
    assert system.scheduler_alive(db.session, now=later) is False
    system.heartbeat(db.session, "running", now=now - stale - timedelta(seconds=1))
    body = client.get("/api/v1/health", headers={"Accept-Language": "en"}).json
    assert body["scheduler"]["alive"] is False and body["scheduler"]["nodes"] == 0
    assert body["status"] == "degraded" and body["reasons"] == ["scheduler_down"]
    assert "the last heartbeat was at" in body["message"]
    assert body["scheduler"]["last_heartbeat"] in body["message"]
    page = client.get("/posts/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'data-testid="scheduler-banner"' in page
    assert 'data-testid="scheduler-banner-due"' in page and "Posts due now: 1." in page
    # A node that stopped cleanly is not alive either; its last beat is still named.
    system.heartbeat(db.session, "running", now=utcnow())
    assert client.get("/api/v1/health").json["status"] == "ok"
    system.node_stopped(db.session, "running", now=utcnow())
    body = client.get("/api/v1/health", headers={"Accept-Language": "en"}).json
    assert body["status"] == "degraded" and "the last heartbeat was at" in body["message"]


def test_banner_when_no_scheduler_beat_for_a_minute(db, client, login, author):
    login(author)
    page = client.get("/publishing/").get_data(as_text=True)
    assert 'data-testid="scheduler-banner"' in page
    assert 'data-testid="scheduler-banner-due"' not in page  # nothing is due
    system.heartbeat(db.session, "n1", now=utcnow() - timedelta(seconds=61))
    assert 'data-testid="scheduler-banner"' in client.get("/posts/").get_data(as_text=True)
    system.heartbeat(db.session, "n1", now=utcnow())
    assert 'data-testid="scheduler-banner"' not in client.get("/posts/").get_data(as_text=True)
    system.node_stopped(db.session, "n1", now=utcnow())
    assert 'data-testid="scheduler-banner"' in client.get("/posts/").get_data(as_text=True)


def test_publishing_page_lists_and_acts(db, client, login, author):
    login(author)
    channel = make_channel(db.session)
    now = utcnow()
    upcoming = make_post(db.session, channel, author, now + timedelta(hours=1), title="即将")
    failed = make_post(db.session, channel, author, now, status="failed", title="失败了")
    failed.last_error = encode_reason(
        "The receiver refused the post (HTTP %(status)s).", {"status": 400}, "HTTP 400")
    unknown = make_post(db.session, channel, author, now, status="unknown", title="不确定")
    db.session.commit()
    html = client.get("/publishing/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    for key in ("upcoming", "failed", "unknown", "missed", "retrying", "in_flight"):
        assert f'data-section="{key}"' in html
    # The detail is not repeated when the text already says it.
    assert "The receiver refused the post (HTTP 400)." in html
    assert "(HTTP 400). (HTTP 400)" not in html
    r = client.post(f"/publishing/posts/{failed.id}/retry")
    assert r.status_code == 302
    assert fresh(db, failed.id).status == "retrying"
    client.post(f"/publishing/posts/{upcoming.id}/cancel")
    assert fresh(db, upcoming.id).status == "cancelled"
    # Bad link: the error is shown next to the field and nothing changes.
    r = client.post(f"/publishing/posts/{unknown.id}/mark-published", data={"url": "ftp://x"})
    assert r.status_code == 422
    assert 'data-field-error="url"' in r.get_data(as_text=True)
    assert fresh(db, unknown.id).status == "unknown"
    r = client.post(f"/publishing/posts/{unknown.id}/mark-published",
                    data={"url": "https://example.com/p/1", "next": "detail"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/posts/{unknown.id}")
    assert fresh(db, unknown.id).status == "published"
    detail = client.get(f"/publishing/posts/{unknown.id}").get_data(as_text=True)
    assert 'data-testid="attempts"' in detail and "Confirmed" in detail
    # Reschedule in the viewer's zone (team default Asia/Shanghai).
    r = client.post(f"/publishing/posts/{upcoming.id}/reschedule",
                    data={"scheduled_at": "2099-11-11T20:00"})
    assert r.status_code == 302
    assert fresh(db, upcoming.id).scheduled_at.isoformat() == "2099-11-11T12:00:00+00:00"
    r = client.post(f"/publishing/posts/{upcoming.id}/reschedule",
                    data={"scheduled_at": "2001-01-01T00:00"})
    assert r.status_code == 422 and 'data-field-error="scheduled_at"' in r.get_data(
        as_text=True)


def test_reschedule_form_refuses_a_skipped_time_and_offers_a_repeated_ones_occurrences(
        db, client, login, author):
    author.timezone = "Europe/London"
    db.session.commit()
    login(author)
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, utcnow() + timedelta(hours=1))
    before = post.scheduled_at
    url = f"/publishing/posts/{post.id}/reschedule"
    # 30 March 2031: London's clocks go from 01:00 GMT to 02:00 BST.
    r = client.post(url, data={"scheduled_at": "2031-03-30T01:30"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "does not exist in Europe/London" in html and "2031-03-30 02:00 BST (UTC+1)" in html
    assert 'value="2031-03-30T01:30"' in html and "data-fold-choice" not in html
    assert fresh(db, post.id).scheduled_at == before
    # 26 October 2031: 01:30 happens twice (BST, then GMT).
    wall = "2031-10-26T01:30"
    r = client.post(url, data={"scheduled_at": wall})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "01:30 BST (UTC+1) or 01:30 GMT (UTC+0)" in html
    assert 'data-fold-choice' in html and f'name="fold_for" value="{wall}"' in html
    assert f'value="{wall}"' in html
    assert fresh(db, post.id).scheduled_at == before
    r = client.post(url, data={"scheduled_at": wall, "fold": "0", "fold_for": wall})
    assert r.status_code == 302
    assert fresh(db, post.id).scheduled_at.isoformat() == "2031-10-26T00:30:00+00:00"
    r = client.post(url, data={"scheduled_at": wall, "fold": "1", "fold_for": wall})
    assert r.status_code == 302
    assert fresh(db, post.id).scheduled_at.isoformat() == "2031-10-26T01:30:00+00:00"


def test_wall_clock_errors_are_in_chinese(db, client, login, author):
    author.timezone, author.locale = "America/New_York", "zh"
    db.session.commit()
    login(author)
    post = make_post(db.session, make_channel(db.session), author, utcnow() + timedelta(hours=1))
    url = f"/publishing/posts/{post.id}/reschedule"
    html = client.post(url, data={"scheduled_at": "2030-03-10T02:30"}).get_data(as_text=True)
    assert "America/New_York" in html and "2030-03-10 03:00 EDT (UTC-4)" in html
    assert "does not exist" not in html and "不存在" in html
    html = client.post(url, data={"scheduled_at": "2030-11-03T01:30"}).get_data(as_text=True)
    assert "01:30 EDT (UTC-4)" in html and "happens twice" not in html
    assert "Which one" not in html and "The second time" not in html


def test_a_missed_posts_time_is_shown_in_each_readers_zone_and_language(
        db, client, login, author, make_user):
    import random
    from zoneinfo import ZoneInfo

    from babel import dates
    from sqlalchemy.orm import sessionmaker

    from contentops.services import publishing

    from .engine_support import Clock, FakeAdapter

    clock = Clock()  # 2026-11-11 12:00 UTC
    due = clock.now - timedelta(hours=2)  # 10:00 UTC: beyond the channel's 60-minute grace
    channel = make_channel(db.session, grace_minutes=60)
    post = make_post(db.session, channel, author, due)
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    publishing.Dispatcher(factory, lambda _channel: FakeAdapter(), node="n", clock=clock,
                          workers=1, rng=random.Random(1)).run()
    missed = fresh(db, post.id)
    assert missed.status == "missed"
    assert '"instant": "2026-11-11T10:00:00Z"' in missed.last_error

    def shown(zone: str, locale: str) -> str:
        return dates.format_datetime(due, "medium", tzinfo=ZoneInfo(zone), locale=locale)

    # English, in New York (05:00 EST), on the post's page and in the notification.
    author.timezone, author.locale = "America/New_York", "en"
    db.session.commit()
    login(author)
    new_york = shown("America/New_York", "en")
    assert "5:00" in new_york
    html = client.get(f"/publishing/posts/{post.id}").get_data(as_text=True)
    reason = re.search(r"data-reason>([^<]*)<", html).group(1)
    assert f"No scheduler was running at {new_york} and" in reason and "10:00" not in reason
    assert new_york in client.get("/notifications/").get_data(as_text=True)
    # Chinese, in Shanghai (18:00), for another reader of the same stored reason.
    reader = make_user("editor")
    reader.timezone, reader.locale = "Asia/Shanghai", "zh"
    db.session.commit()
    other = client.application.test_client()
    login(reader, other)
    shanghai = shown("Asia/Shanghai", "zh")
    assert "18:00" in shanghai
    html = other.get(f"/publishing/posts/{post.id}").get_data(as_text=True)
    reason = re.search(r"data-reason>([^<]*)<", html).group(1)
    assert shanghai in reason and "No scheduler" not in reason and "10:00" not in reason
    # The API: in the token owner's zone (a token has no session; the team zone is Shanghai).
    api = client.application.test_client()
    body = api.get("/api/v1/posts", headers={**bearer(db, author),
                                             "Accept-Language": "en"}).get_json()
    (item,) = [i for i in body["items"] if i["id"] == post.id]
    assert new_york in item["last_error"] and "10:00" not in item["last_error"]


def test_publishing_page_in_chinese(db, client, login, author):
    login(author)
    make_post(db.session, make_channel(db.session), author, utcnow() + timedelta(hours=1))
    html = client.get("/publishing/", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert "Upcoming" not in html and "Publish now" not in html
