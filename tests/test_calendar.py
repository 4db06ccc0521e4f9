"""Calendar: the event feed, filters, conflicts, time zones, moving posts, exports, iCal."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from contentops.models import AuditEvent, Post
from contentops.services import calendar as cal
from contentops.services.users import create_token
from tests.calendar_helpers import Planner

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
NOW = datetime(2027, 1, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def editor(make_user):
    return make_user("editor", name="Lin Editor")


@pytest.fixture
def plan(db, editor):
    return Planner(db.session, editor)


def feed(db, start, end, tz="Asia/Shanghai", **filters):
    return cal.feed_events(db.session, start, end, tz=tz, now=NOW, can_move=True,
                           filters=cal.parse_filters({k: [str(v)] for k, v in filters.items()}))


# --- the feed -------------------------------------------------------------------------------

def test_feed_returns_posts_in_range_with_offset_colour_and_props(db, plan):
    wechat = plan.channel("公众号", color="#07c160")
    aud, sty = plan.audience("新会员"), plan.style("亲切")
    inside = plan.post(wechat, datetime(2027, 2, 3, 9, 0, tzinfo=SH), audience=aud, style=sty,
                       reads=120, likes=7, comments=2, shares=3)
    plan.post(wechat, datetime(2027, 3, 1, 9, 0, tzinfo=SH), title="next month")
    plan.post(wechat, None, status="unscheduled", title="no time")
    plan.commit()

    start, end = cal.month_range(date(2027, 2, 1), "Asia/Shanghai")
    events = feed(db, start, end)

    assert [e["id"] for e in events] == [str(inside.id)]
    event = events[0]
    assert event["start"] == "2027-02-03T09:00:00+08:00"
    assert event["title"] == "双11 预热"
    assert event["color"] == "#07c160" and event["textColor"] == "#ffffff"
    props = event["extendedProps"]
    assert props["status"] == "scheduled"
    assert props["channel"]["name"] == "公众号"
    assert props["audience"]["name"] == "新会员" and props["style"]["name"] == "亲切"
    assert props["author"]["name"] == "Lin Editor"
    assert props["metrics"] == {"reads": 120, "likes": 7, "comments": 2, "shares": 3,
                                "clicks": 0}
    assert event["editable"] is True


def test_status_mark_combines_review_and_publishing_state(db, plan):
    ch = plan.channel()
    when = datetime(2027, 2, 3, 9, 0, tzinfo=SH)
    cases = {
        "draft": plan.post(ch, when, review="draft"),
        "in_review": plan.post(ch, when, review="in_review"),
        "scheduled": plan.post(ch, when, review="approved"),
        "published": plan.post(ch, when, status="published"),
        "failed": plan.post(ch, when, status="failed"),
        "missed": plan.post(ch, when, status="missed", review="draft"),
    }
    plan.commit()
    start, end = cal.month_range(date(2027, 2, 1), "Asia/Shanghai")
    by_id = {e["extendedProps"]["post_id"]: e for e in feed(db, start, end)}
    for expected, post in cases.items():
        assert by_id[post.id]["extendedProps"]["status"] == expected
    # Published and failed posts cannot be dragged.
    assert by_id[cases["published"].id]["editable"] is False
    assert by_id[cases["scheduled"].id]["editable"] is True


def test_filters_narrow_the_feed(db, plan, make_user):
    other_author = make_user("editor", name="Wang")
    wechat, robot = plan.channel("公众号"), plan.channel("企业微信群", kind="webhook")
    new, sleepy = plan.audience("新会员"), plan.audience("沉睡用户")
    when = datetime(2027, 2, 3, 9, 0, tzinfo=SH)
    a = plan.post(wechat, when, audience=new)
    b = plan.post(robot, when, audience=sleepy, author=other_author)
    c = plan.post(robot, when, audience=new, review="draft")
    plan.commit()
    start, end = cal.month_range(date(2027, 2, 1), "Asia/Shanghai")

    def ids(**filters):
        return {e["extendedProps"]["post_id"] for e in feed(db, start, end, **filters)}

    assert ids() == {a.id, b.id, c.id}
    assert ids(channel=robot.id) == {b.id, c.id}
    assert ids(audience=new.id) == {a.id, c.id}
    assert ids(author=other_author.id) == {b.id}
    assert ids(status="draft") == {c.id}
    assert ids(channel=f"{wechat.id},{robot.id}", audience=sleepy.id) == {b.id}


def test_bad_filter_values_are_refused():
    with pytest.raises(cal.ValidationError) as exc:
        cal.parse_filters({"channel": ["abc"], "status": ["nope"]})
    assert set(exc.value.fields) == {"channel", "status"}


def test_conflicts_same_channel_and_audience_within_window(db, plan):
    ch = plan.channel(conflict_window_minutes=120)
    other_channel = plan.channel("微博", kind="webhook")
    new, sleepy = plan.audience("新会员"), plan.audience("沉睡用户")
    base = datetime(2027, 2, 3, 9, 0, tzinfo=SH)
    a = plan.post(ch, base, audience=new)
    b = plan.post(ch, base + timedelta(minutes=90), audience=new)     # conflicts with a
    c = plan.post(ch, base + timedelta(minutes=95), audience=sleepy)  # other audience
    d = plan.post(other_channel, base, audience=new)                   # other channel
    e = plan.post(ch, base + timedelta(hours=4), audience=new)         # outside the window
    f = plan.post(ch, base + timedelta(minutes=30), audience=new, status="cancelled")
    plan.commit()
    start, end = cal.month_range(date(2027, 2, 1), "Asia/Shanghai")
    props = {e_["extendedProps"]["post_id"]: e_["extendedProps"] for e_ in feed(db, start, end)}
    assert props[a.id]["conflicts_with"] == [b.id]
    assert props[b.id]["conflicts_with"] == [a.id]
    assert props[c.id]["conflicts_with"] == [] and props[d.id]["conflicts_with"] == []
    assert props[e.id]["conflicts_with"] == []
    assert f.id not in props  # cancelled posts are hidden unless asked for
    # A filter that hides `b` still reports the conflict on `a`.
    filtered = feed(db, start, end, status="scheduled", channel=ch.id)
    assert any(ev["extendedProps"]["conflicts_with"] == [b.id] for ev in filtered)


def test_conflict_with_a_post_just_outside_the_range(db, plan):
    ch = plan.channel()
    a = plan.post(ch, datetime(2027, 2, 28, 23, 30, tzinfo=SH))
    b = plan.post(ch, datetime(2027, 3, 1, 0, 30, tzinfo=SH))
    plan.commit()
    start, end = cal.month_range(date(2027, 2, 1), "Asia/Shanghai")
    (event,) = feed(db, start, end)
    assert event["extendedProps"]["post_id"] == a.id
    assert event["extendedProps"]["conflicts_with"] == [b.id]


# --- time zones -----------------------------------------------------------------------------

def test_shanghai_morning_shows_at_the_right_hour_in_europe(db, plan):
    ch = plan.channel()
    plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    start, end = cal.month_range(date(2027, 2, 1), "Europe/Berlin")
    (event,) = feed(db, start, end, tz="Europe/Berlin")
    assert event["start"] == "2027-02-03T02:00:00+01:00"
    (summer,) = feed(db, *cal.month_range(date(2027, 2, 1), "Europe/London"),
                     tz="Europe/London")
    assert summer["start"] == "2027-02-03T01:00:00+00:00"


def test_new_york_dst_march_and_november(db, plan):
    ch = plan.channel()
    # 2027: DST starts Sunday 14 March, ends Sunday 7 November in America/New_York.
    before = plan.post(ch, datetime(2027, 3, 13, 14, 0, tzinfo=UTC), title="before")
    after = plan.post(ch, datetime(2027, 3, 15, 13, 0, tzinfo=UTC), title="after")
    plan.commit()
    events = {e["title"]: e["start"] for e in feed(
        db, *cal.month_range(date(2027, 3, 1), "America/New_York"), tz="America/New_York")}
    # Both at 09:00 on the wall clock although 23 h + 24 h apart in UTC.
    assert events == {"before": "2027-03-13T09:00:00-05:00",
                      "after": "2027-03-15T09:00:00-04:00"}
    assert before.id and after.id

    # A November day has 25 hours; a view of it must include 00:30 and 23:30 local.
    early = plan.post(ch, datetime(2027, 11, 7, 0, 30, tzinfo=NY), title="early")
    late = plan.post(ch, datetime(2027, 11, 7, 23, 30, tzinfo=NY), title="late")
    plan.commit()
    start, end = cal.parse_range("2027-11-07", "2027-11-08", "America/New_York")
    assert end - start == timedelta(hours=25)
    got = {e["title"]: e["start"] for e in feed(db, start, end, tz="America/New_York")}
    assert got == {"early": "2027-11-07T00:30:00-04:00", "late": "2027-11-07T23:30:00-05:00"}
    assert early.id and late.id


def test_range_parsing_accepts_fullcalendar_forms_and_refuses_nonsense():
    start, end = cal.parse_range("2027-03-01T00:00:00", "2027-04-12T00:00:00",
                                 "America/New_York")
    assert start == datetime(2027, 3, 1, 5, 0, tzinfo=UTC)
    assert end == datetime(2027, 4, 12, 4, 0, tzinfo=UTC)
    # An offset in an unencoded query string arrives with a space instead of '+'.
    assert cal.parse_range("2027-03-01T00:00:00 08:00", "2027-03-02", "UTC")[0] == \
        datetime(2027, 2, 28, 16, 0, tzinfo=UTC)
    for bad in (("x", "2027-01-01"), ("2027-02-01", "2027-01-01"), ("2020-01-01", "2027-01-01"),
                (None, "2027-01-01")):
        with pytest.raises(cal.ValidationError):
            cal.parse_range(bad[0], bad[1], "UTC")


# --- the JSON API ---------------------------------------------------------------------------

def test_api_feed_in_the_requested_zone(client, login, editor, plan):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    login(editor)
    res = client.get("/api/v1/calendar?start=2027-02-01T00:00:00&end=2027-03-15T00:00:00"
                     "&timeZone=America/New_York")
    assert res.status_code == 200
    (event,) = res.get_json()
    assert event["id"] == str(post.id)
    assert event["start"] == "2027-02-02T20:00:00-05:00"

    bad = client.get("/api/v1/calendar?start=2027-02-01&end=2027-03-01&timeZone=Mars/Base")
    assert bad.status_code == 422
    assert bad.get_json()["error"]["fields"]["timeZone"]
    missing = client.get("/api/v1/calendar")
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == \
        "validation_error"


@pytest.fixture
def bearer(db):
    """Authorization headers for a user (API clients use tokens; the browser uses CSRF)."""
    def headers(user, **extra):
        _token, plain = create_token(db.session, user)
        db.session.commit()
        return {"Authorization": f"Bearer {plain}", **extra}

    return headers


def _patch(client, post_id, body, headers):
    return client.patch(f"/api/v1/posts/{post_id}", json=body, headers=headers)


def test_moving_a_post_persists_keeps_approval_and_is_audited(bearer, client, editor, plan, db):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    h = bearer(editor)
    res = _patch(client, post.id, {"scheduled_at": "2027-02-05T10:30:00",
                                   "timezone": "Asia/Shanghai"}, h)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["scheduled_at"] == "2027-02-05T02:30:00Z"
    db.session.expire_all()
    post = db.session.get(Post, post.id)
    assert post.scheduled_at == datetime(2027, 2, 5, 2, 30, tzinfo=UTC)
    assert post.piece.status == "approved" and post.piece.approved_version == 1
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "post.scheduled"))
    (event,) = list(audit)
    assert event.object_id == post.id and event.actor_id == editor.id
    assert event.data == {"from": "2027-02-03T01:00:00Z", "to": "2027-02-05T02:30:00Z"}

    # An offset wins over the zone field.
    res = _patch(client, post.id, {"scheduled_at": "2027-02-06T09:00:00-05:00"}, h)
    assert res.status_code == 200 and res.get_json()["scheduled_at"] == "2027-02-06T14:00:00Z"


def test_moving_across_new_york_dst_uses_the_wall_clock(bearer, client, editor, plan):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 3, 13, 14, 0, tzinfo=UTC))  # 09:00 EST
    plan.commit()
    h = bearer(editor)
    res = _patch(client, post.id, {"scheduled_at": "2027-03-15T09:00:00",
                                   "timezone": "America/New_York"}, h)
    assert res.get_json()["scheduled_at"] == "2027-03-15T13:00:00Z"  # 09:00 EDT
    # 01:30 on 7 November 2027 happens twice in New York: `fold` picks the occurrence.
    res = _patch(client, post.id, {"scheduled_at": "2027-11-07T01:30:00",
                                   "timezone": "America/New_York", "fold": 0}, h)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["scheduled_at"] == "2027-11-07T05:30:00Z"  # 01:30 EDT
    res = _patch(client, post.id, {"scheduled_at": "2027-11-07T01:30:00",
                                   "timezone": "America/New_York", "fold": 1}, h)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["scheduled_at"] == "2027-11-07T06:30:00Z"  # 01:30 EST


def test_a_repeated_wall_time_without_fold_is_refused_naming_both(bearer, client, editor,
                                                                   plan, db):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 3, 13, 14, 0, tzinfo=UTC))
    plan.commit()
    res = _patch(client, post.id, {"scheduled_at": "2027-11-07T01:30:00",
                                   "timezone": "America/New_York"}, bearer(editor))
    assert res.status_code == 422
    error = res.get_json()["error"]
    assert error["code"] == "validation_error" and error["message"]
    (text,) = error["fields"]["scheduled_at"]
    assert "01:30 EDT (UTC-4) or 01:30 EST (UTC-5)" in text and "America/New_York" in text
    assert "0 for 01:30 EDT (UTC-4), 1 for 01:30 EST (UTC-5)" in error["fields"]["fold"][0]
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == datetime(2027, 3, 13, 14, 0,
                                                                 tzinfo=UTC)


@pytest.mark.parametrize("zone, wall, first_valid", [
    ("America/New_York", "2027-03-14T02:30:00", "2027-03-14 03:00 EDT (UTC-4)"),
    ("Europe/London", "2027-03-28T01:15:00", "2027-03-28 02:00 BST (UTC+1)"),
    ("Australia/Lord_Howe", "2027-10-03T02:10:00", "2027-10-03 02:30 (UTC+11)"),
])
def test_a_wall_time_in_a_dst_gap_is_refused_even_with_fold(bearer, client, editor, plan, db,
                                                           zone, wall, first_valid):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 14, 0, tzinfo=UTC))
    plan.commit()
    for extra in ({}, {"fold": 0}, {"fold": 1}):
        res = _patch(client, post.id, {"scheduled_at": wall, "timezone": zone, **extra},
                     bearer(editor))
        assert res.status_code == 422, res.get_json()
        (text,) = res.get_json()["error"]["fields"]["scheduled_at"]
        assert "does not exist" in text and first_valid in text
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == datetime(2027, 2, 3, 14, 0, tzinfo=UTC)


def test_fold_is_checked_and_ignored_where_nothing_is_ambiguous(bearer, client, editor, plan):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 14, 0, tzinfo=UTC))
    plan.commit()
    h = bearer(editor)
    for bad in (2, -1, "1", True, 0.5):
        res = _patch(client, post.id, {"scheduled_at": "2027-11-07T01:30:00",
                                       "timezone": "America/New_York", "fold": bad}, h)
        assert res.status_code == 422 and "fold" in res.get_json()["error"]["fields"], bad
    # An ordinary time, and a time with an offset (an instant: never ambiguous).
    res = _patch(client, post.id, {"scheduled_at": "2027-02-05T10:30:00",
                                   "timezone": "Asia/Shanghai", "fold": 1}, h)
    assert res.status_code == 200 and res.get_json()["scheduled_at"] == "2027-02-05T02:30:00Z"
    res = _patch(client, post.id, {"scheduled_at": "2027-11-07T01:30:00-05:00",
                                   "timezone": "America/New_York"}, h)
    assert res.status_code == 200 and res.get_json()["scheduled_at"] == "2027-11-07T06:30:00Z"


@pytest.mark.parametrize("status", ["published", "publishing"])
def test_published_or_publishing_posts_cannot_move(bearer, client, editor, plan, db, status):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH), status=status)
    plan.commit()
    h = bearer(editor)
    res = _patch(client, post.id, {"scheduled_at": "2027-02-05T10:30:00+08:00"}, h)
    assert res.status_code == 409
    assert res.get_json()["error"]["code"] == "invalid_state"
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == datetime(2027, 2, 3, 1, 0, tzinfo=UTC)
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "post.scheduled")) \
        is None


def test_refused_moves_past_time_role_bad_input(bearer, client, editor, make_user, plan, db):
    ch = plan.channel()
    post = plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    h = bearer(editor)
    past = _patch(client, post.id, {"scheduled_at": "2020-01-01T09:00:00+08:00"}, h)
    assert past.status_code == 422
    assert past.get_json()["error"]["fields"]["scheduled_at"] == ["Choose a time in the future."]
    assert _patch(client, post.id, {"scheduled_at": "tomorrow"}, h).status_code == 422
    assert _patch(client, post.id, {}, h).status_code == 422
    assert _patch(client, post.id, {"scheduled_at": "2027-02-05T10:00:00",
                                    "status": "published"}, h).status_code == 422
    assert _patch(client, 999999, {"scheduled_at": "2027-02-05T10:00:00"}, h).status_code == 404

    res = _patch(client, post.id, {"scheduled_at": "2027-02-05T10:00:00+08:00"},
                 bearer(make_user("viewer")))
    assert res.status_code == 403
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == datetime(2027, 2, 3, 1, 0, tzinfo=UTC)


def test_daily_quota_refuses_with_a_clear_message_in_both_languages(bearer, client, editor,
                                                                    plan):
    mp = plan.channel("公众号订阅号", daily_quota=1, timezone="Asia/Shanghai")
    plan.post(mp, datetime(2027, 2, 5, 8, 0, tzinfo=SH))
    mover = plan.post(mp, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    h = bearer(editor)
    res = _patch(client, mover.id, {"scheduled_at": "2027-02-05T20:00:00+08:00"}, h)
    assert res.status_code == 422
    error = res.get_json()["error"]
    assert error["message"] == ("公众号订阅号 allows 1 post(s) per day and 2027-02-05 already "
                                "has 1. Choose another day.")
    assert error["fields"]["scheduled_at"] == [error["message"]]
    zh = _patch(client, mover.id, {"scheduled_at": "2027-02-05T20:00:00+08:00"},
                {**h, "Accept-Language": "zh-CN"})
    assert "公众号订阅号" in zh.get_json()["error"]["message"]
    assert "2027-02-05" in zh.get_json()["error"]["message"]
    assert zh.get_json()["error"]["message"] != error["message"]
    # The next day is free.
    ok = _patch(client, mover.id, {"scheduled_at": "2027-02-06T08:00:00+08:00"}, h)
    assert ok.status_code == 200


def test_conflict_is_a_warning_not_a_refusal(bearer, client, editor, plan):
    ch = plan.channel(conflict_window_minutes=120)
    aud = plan.audience()
    plan.post(ch, datetime(2027, 2, 5, 9, 0, tzinfo=SH), title="早安推送", audience=aud)
    mover = plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH), audience=aud)
    plan.commit()
    h = bearer(editor)
    res = _patch(client, mover.id, {"scheduled_at": "2027-02-05T10:00:00+08:00"}, h)
    assert res.status_code == 200
    (warning,) = res.get_json()["warnings"]
    assert warning["code"] == "conflict"
    assert "早安推送" in warning["message"] and "2027-02-05 09:00" in warning["message"]


def test_quota_overlay_marks_full_and_over_days(client, login, editor, plan):
    mp = plan.channel("公众号订阅号", daily_quota=1)
    plan.post(mp, datetime(2027, 2, 5, 8, 0, tzinfo=SH))
    plan.post(mp, datetime(2027, 2, 6, 8, 0, tzinfo=SH))
    plan.post(mp, datetime(2027, 2, 6, 20, 0, tzinfo=SH))  # set before the quota existed
    plan.commit()
    login(editor)
    res = client.get("/api/v1/calendar/quota?start=2027-02-01&end=2027-03-01"
                     "&timeZone=Asia/Shanghai")
    marks = {m["start"]: m for m in res.get_json()}
    assert set(marks) == {"2027-02-05", "2027-02-06"}
    assert marks["2027-02-05"]["classNames"] == ["co-quota-full"]
    assert marks["2027-02-06"]["classNames"] == ["co-quota-over"]
    assert marks["2027-02-06"]["extendedProps"]["count"] == 2
    assert marks["2027-02-06"]["display"] == "background"


def test_observance_overlay_and_toggles(client, login, editor):
    login(editor)
    res = client.get("/api/v1/calendar/observances?start=2027-01-25&end=2027-03-08"
                     "&timeZone=Asia/Shanghai")
    keys = {e["extendedProps"]["observance"]: e for e in res.get_json()}
    assert keys["spring_festival"]["start"] == "2027-02-06"
    assert keys["valentines"]["start"] == "2027-02-14"
    assert keys["new_year_goods"]["end"] == "2027-01-31"  # exclusive end of 腊八…小年
    hidden = client.get("/api/v1/calendar/observances?start=2027-01-25&end=2027-03-08"
                        "&timeZone=Asia/Shanghai&hide=valentines,lantern").get_json()
    assert {e["extendedProps"]["observance"] for e in hidden} == \
        set(keys) - {"valentines", "lantern"}


def test_unscheduled_panel_lists_posts_without_a_time(client, login, editor, plan):
    ch = plan.channel()
    waiting = plan.post(ch, None, status="unscheduled", title="待排期", review="approved")
    draft = plan.post(ch, None, status="unscheduled", title="草稿", review="draft")
    plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    login(editor)
    items = client.get("/api/v1/calendar/unscheduled").get_json()
    assert {i["post_id"]: i["status"] for i in items} == {waiting.id: "approved",
                                                          draft.id: "draft"}


# --- exports --------------------------------------------------------------------------------

def test_csv_and_json_export_of_the_visible_range(client, login, editor, plan):
    ch = plan.channel("公众号")
    plan.post(ch, datetime(2027, 2, 3, 9, 0, tzinfo=SH), title="=HYPERLINK(\"x\")", reads=5)
    plan.post(ch, datetime(2027, 4, 3, 9, 0, tzinfo=SH), title="later")
    plan.commit()
    login(editor)
    query = "start=2027-02-01&end=2027-03-01&timeZone=Asia/Shanghai"
    res = client.get(f"/calendar/export.csv?{query}")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    text = res.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert rows[0]["title"] == "'=HYPERLINK(\"x\")"  # formula neutralised
    assert rows[0]["channel"] == "公众号" and rows[0]["reads"] == "5"
    assert rows[0]["scheduled_at"] == "2027-02-03T09:00:00+08:00"
    data = json.loads(client.get(f"/calendar/export.json?{query}").data)
    assert data["time_zone"] == "Asia/Shanghai"
    assert [i["title"] for i in data["items"]] == ["=HYPERLINK(\"x\")"]
    assert client.get("/calendar/export.xml?" + query).status_code == 404
    assert client.get("/calendar/export.csv?start=x&end=y").status_code == 422


# --- iCalendar ------------------------------------------------------------------------------

def test_ical_feed_parses_back_and_token_is_regenerable(app, client, login, editor, plan, db):
    ch = plan.channel("公众号")
    aud = plan.audience("宝妈社群")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    post = plan.post(ch, soon, title="周末亲子活动", audience=aud)
    plan.post(ch, soon + timedelta(days=500), title="too far")
    plan.commit()
    login(editor)
    page = client.get("/calendar/")
    assert page.status_code == 200 and b"/calendar/feed/" not in page.data
    assert client.post("/calendar/subscription").status_code == 302
    db.session.expire_all()
    token = db.session.get(type(editor), editor.id).ical_token
    assert token and len(token) >= 40
    assert f"/calendar/feed/{token}.ics".encode() in client.get("/calendar/").data

    anonymous = app.test_client()
    res = anonymous.get(f"/calendar/feed/{token}.ics")
    assert res.status_code == 200 and res.mimetype == "text/calendar"
    parsed = Calendar.from_ical(res.data)
    events = list(parsed.walk("VEVENT"))
    assert len(events) == 1
    (event,) = events
    assert str(event["SUMMARY"]) == "[公众号] 周末亲子活动"
    assert event.decoded("DTSTART") == soon
    assert str(event["UID"]) == f"post-{post.id}@testserver"
    assert str(event["URL"]) == f"http://testserver/pieces/{post.piece_id}"
    assert "Channel: 公众号" in str(event["DESCRIPTION"])
    assert "Status: Scheduled" in str(event["DESCRIPTION"])
    assert "Audience: 宝妈社群" in str(event["DESCRIPTION"])
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(parsed["VERSION"]) == "2.0" and parsed["PRODID"]

    # Regenerating kills the old address.
    assert client.post("/calendar/subscription").status_code == 302
    assert anonymous.get(f"/calendar/feed/{token}.ics").status_code == 404
    assert anonymous.get("/calendar/feed/nope.ics").status_code == 404


def test_ical_feed_speaks_the_subscribers_language(app, client, login, editor, plan, db):
    ch = plan.channel("公众号")
    plan.post(ch, datetime.now(UTC) + timedelta(days=2), review="in_review")
    editor.locale = "zh"
    plan.commit()
    login(editor)
    client.post("/calendar/subscription")
    db.session.expire_all()
    token = db.session.get(type(editor), editor.id).ical_token
    body = app.test_client().get(f"/calendar/feed/{token}.ics").data
    (event,) = Calendar.from_ical(body).walk("VEVENT")
    assert "渠道" in str(event["DESCRIPTION"]) or "频道" in str(event["DESCRIPTION"])
    assert str(event["STATUS"]) == "TENTATIVE"


def test_calendar_page_renders_filters_and_config(client, login, editor, plan):
    ch = plan.channel("公众号")
    plan.commit()
    login(editor)
    res = client.get(f"/calendar/?channel={ch.id}&status=draft")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    assert 'id="calendar"' in html and "fullcalendar/index.global.min.js" in html
    assert "zh-cn.global.min.js" in html
    assert f'<option value="{ch.id}" selected>' in html
    assert '<option value="draft" selected>' in html
    assert client.get("/calendar/?channel=abc").status_code == 200


def test_ical_text_is_escaped_and_folded_per_rfc_5545(app, client, login, editor, plan, db):
    ch = plan.channel("公众号, 主号; 服务号")
    title = "双11,预售;第一波 \\ 反斜杠\n第二行 " + "超长的中文标题" * 12
    plan.post(ch, datetime.now(UTC) + timedelta(days=1), title=title)
    plan.commit()
    login(editor)
    client.post("/calendar/subscription")
    db.session.expire_all()
    token = db.session.get(type(editor), editor.id).ical_token
    body = app.test_client().get(f"/calendar/feed/{token}.ics").data
    physical = body.split(b"\r\n")
    assert physical[-1] == b"" and all(len(line) <= 75 for line in physical)
    for line in physical:
        line.decode()  # no UTF-8 character split across a fold
    (event,) = Calendar.from_ical(body).walk("VEVENT")
    assert str(event["SUMMARY"]) == f"[公众号, 主号; 服务号] {title}"
    assert "公众号, 主号; 服务号" in str(event["DESCRIPTION"])


@pytest.mark.postgres
def test_feed_quota_and_ical_on_postgresql(tmp_path, pg_url):
    from contentops.extensions import db as _db
    from contentops.models import User
    from contentops.services.publishing import quotas, schedule_post
    from tests.conftest import make_app

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        s = _db.session
        author = User(email="pg@example.com", name="PG", password_hash="x", role="editor",
                      notification_prefs={})
        s.add(author)
        s.flush()
        plan = Planner(s, author)
        mp = plan.channel("公众号", daily_quota=1, conflict_window_minutes=120)
        aud = plan.audience()
        a = plan.post(mp, datetime(2027, 3, 13, 14, 0, tzinfo=UTC), audience=aud)
        b = plan.post(mp, datetime(2027, 3, 15, 13, 0, tzinfo=UTC), audience=aud)
        # Fractions of a second are cut, not rounded up (epoch_seconds on PostgreSQL).
        c = plan.post(mp, datetime(2027, 3, 20, 13, 0, 59, 900_000, tzinfo=UTC),
                      status="cancelled")
        plan.commit()
        start, end = cal.month_range(date(2027, 3, 1), "America/New_York")
        events = cal.feed_events(s, start, end, tz="America/New_York", filters=cal.Filters(),
                                 now=NOW, can_move=True)
        assert [e["start"] for e in events] == ["2027-03-13T09:00:00-05:00",
                                                "2027-03-15T09:00:00-04:00"]
        shown = cal.feed_events(s, start, end, tz="America/New_York", now=NOW, can_move=True,
                                filters=cal.Filters(status=["cancelled"]))
        assert [(e["id"], e["start"]) for e in shown] == [(str(c.id),
                                                           "2027-03-20T09:00:59-04:00")]
        with pytest.raises(cal.ValidationError):
            schedule_post(s, a, datetime(2027, 3, 15, 20, 0, tzinfo=UTC), actor=author,
                          now=NOW, tz="America/New_York")
        s.rollback()
        warnings = schedule_post(s, a, datetime(2027, 3, 16, 12, 0, tzinfo=UTC), actor=author,
                                 now=NOW, tz="America/New_York")
        assert warnings == []
        s.commit()
        usage = quotas.quota_usage(s, start, end, tz="America/New_York")
        assert [str(u.day) for u in usage] == ["2027-03-15", "2027-03-16"]
        body = cal.ical_feed(s, start, end, filters=cal.Filters(), base_url="http://x", now=NOW,
                             calendar_name="c")
        assert len(Calendar.from_ical(body).walk("VEVENT")) == 2
        assert b.id
        s.remove()
        _db.engine.dispose()
