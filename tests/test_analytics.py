"""Analytics numbers checked against a small, hand-computed fixture (Asia/Shanghai, UTC+8)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from contentops.models import Campaign, MetricBucket
from contentops.services import analytics as an

from .feedback_fixtures import make_post

TZ = "Asia/Shanghai"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday 20:00 in Shanghai


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def data(db):
    s = db.session
    p1 = make_post(s, title="P1", audience="新会员", style="亲切", campaign="双11",
                   published_at=utc(2026, 11, 2, 12), reads=100, likes=10, comments=5, shares=5)
    p2 = make_post(s, title="P2", audience="新会员", style="专业", campaign="双11",
                   published_at=utc(2026, 11, 3, 1), reads=200, likes=10)
    p3 = make_post(s, title="P3", audience="沉睡用户", style="亲切", channel_name="企业微信群",
                   kind="wecom_robot", published_at=utc(2026, 11, 9, 12, 30), reads=50, likes=5,
                   shares=5)
    p4 = make_post(s, title="P4", audience="沉睡用户", style="专业", channel_name="企业微信群",
                   kind="wecom_robot", campaign="双11", published_at=utc(2026, 11, 10, 1, 10))
    p5 = make_post(s, title="P5 not out yet", status="scheduled", reads=999)
    p6 = make_post(s, title="P6 October", published_at=utc(2026, 10, 1), reads=1000, likes=1)
    s.query(Campaign).filter_by(name="双11").update({"goal_reads": 1000})
    s.add_all([
        MetricBucket(post_id=p1.id, hour=utc(2026, 11, 5, 15), reads=30, likes=0, comments=0,
                     shares=0, clicks=0),
        MetricBucket(post_id=p1.id, hour=utc(2026, 11, 5, 16), reads=20, likes=0, comments=0,
                     shares=0, clicks=1),
        MetricBucket(post_id=p3.id, hour=utc(2026, 11, 8, 2), reads=0, likes=5, comments=0,
                     shares=0, clicks=0),
        MetricBucket(post_id=p5.id, hour=utc(2026, 11, 6, 2), reads=999, likes=0, comments=0,
                     shares=0, clicks=0),
    ])
    s.commit()
    return {"p1": p1, "p2": p2, "p3": p3, "p4": p4, "p5": p5, "p6": p6}


def november(**ids) -> an.Filters:
    return an.Filters.from_dates(date(2026, 11, 1), date(2026, 11, 30), TZ, **ids)


def test_summary(db, data):
    s = an.summary(db.session, november())
    assert (s["posts"], s["reads"], s["likes"], s["comments"], s["shares"]) == (4, 350, 25, 5, 10)
    assert s["engagement"] == 40
    assert s["engagement_rate"] == pytest.approx(40 / 350)


def test_audience_by_style_matrix(db, data):
    m = an.matrix(db.session, november(), "audience", "style")
    names = {(r["name"], c["name"]): m["cells"].get((r["id"], c["id"]))
             for r in m["rows"] for c in m["cols"]}
    assert names[("新会员", "亲切")]["engagement_rate"] == pytest.approx(0.2)
    assert names[("新会员", "专业")]["engagement_rate"] == pytest.approx(0.05)
    assert names[("沉睡用户", "亲切")]["engagement_rate"] == pytest.approx(0.2)
    assert names[("沉睡用户", "专业")]["posts"] == 1
    assert names[("沉睡用户", "专业")]["engagement_rate"] is None  # no reads: no rate
    flat = an.matrix_rows(m, "audience", "style")
    assert len(flat) == 4


def test_by_channel_and_filters(db, data):
    rows = an.breakdown(db.session, november(), "channel")
    assert [(r["name"], r["posts"], r["reads"], r["engagement"]) for r in rows] == [
        ("企业微信群", 2, 50, 10), ("Web", 2, 300, 30)]
    assert rows[0]["engagement_rate"] == pytest.approx(0.2)
    assert rows[1]["engagement_rate"] == pytest.approx(0.1)
    only = an.summary(db.session, november(channel_id=data["p3"].channel_id))
    assert (only["posts"], only["reads"]) == (2, 50)
    aud = an.summary(db.session, november(audience_id=data["p1"].piece.audience_id))
    assert (aud["posts"], aud["reads"]) == (2, 300)


def test_top_and_bottom_posts(db, data):
    top = an.ranked_posts(db.session, november())
    assert [p["title"] for p in top] == ["P1", "P3", "P2"]  # P4 has no reads
    bottom = an.ranked_posts(db.session, november(), bottom=True)
    assert [p["title"] for p in bottom] == ["P2", "P3", "P1"]


def test_campaign_report_against_goal(db, data):
    (row,) = an.campaign_report(db.session, november())
    assert (row["name"], row["posts"], row["reads"], row["engagement"]) == ("双11", 3, 300, 30)
    assert row["goal_progress"] == pytest.approx(0.3)
    assert row["engagement_rate"] == pytest.approx(0.1)


def test_totals_over_time_by_local_day(db, data):
    rows = an.totals_over_time(db.session, november(), TZ)
    assert [(r["day"], r["reads"], r["likes"], r["clicks"]) for r in rows] == [
        ("2026-11-05", 30, 0, 0), ("2026-11-06", 20, 0, 1), ("2026-11-07", 0, 0, 0),
        ("2026-11-08", 0, 5, 0)]


def test_best_time_and_suggestion(db, data):
    slots = an.best_times(db.session, november(), TZ)
    assert set(slots) == {(0, 20), (1, 9)}  # Monday 20:00 and Tuesday 09:00 local
    assert slots[(0, 20)]["posts"] == 2
    assert slots[(0, 20)]["engagement_rate"] == pytest.approx(30 / 150)
    assert slots[(1, 9)]["engagement_rate"] == pytest.approx(10 / 200)
    hint = an.suggest_time(db.session, channel_id=None, audience_id=None, tz=TZ, now=NOW)
    assert (hint["weekday"], hint["hour"], hint["posts"]) == (0, 20, 2)
    assert hint["next_at"] == utc(2026, 11, 30, 12)  # next Monday 20:00, not "now"
    # Too little history for one audience: falls back to the channel as a whole.
    aud = an.suggest_time(db.session, channel_id=None,
                          audience_id=data["p1"].piece.audience_id, tz=TZ, now=NOW)
    assert (aud["weekday"], aud["hour"], aud["audience_specific"]) == (0, 20, False)
    assert an.suggest_time(db.session, channel_id=999, audience_id=None, tz=TZ, now=NOW) is None


def test_page_and_csv_exports(client, db, data, make_user, login):
    login(make_user("viewer"))
    q = "from=2026-11-01&to=2026-11-30"
    page = client.get(f"/analytics/?{q}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-summary="reads">350<' in html
    assert "chart.umd.min.js" in html and 'data-table="best-time"' in html
    csv = client.get(f"/analytics/export/matrix.csv?{q}").get_data(as_text=True)
    lines = csv.lstrip("\ufeff").splitlines()
    assert lines[0] == "audience,style,posts,reads,likes,comments,shares,clicks,engagement," \
                       "engagement_rate,reached,staff_confirmed,staff_total,confirmation_rate"
    assert "新会员,亲切,1,100,10,5,5,0,20,0.2000,0,0,0," in lines
    over = client.get(f"/analytics/export/over_time.csv?{q}").get_data(as_text=True)
    assert "2026-11-06,20,0,0,0,1" in over
    for report in ("channel", "audience", "style", "campaign", "top", "bottom", "campaigns",
                   "best_time"):
        r = client.get(f"/analytics/export/{report}.csv?{q}&channel_id={data['p1'].channel_id}")
        assert r.status_code == 200 and r.mimetype == "text/csv", report
    assert client.get("/analytics/export/nope.csv").status_code == 404
    # Filters narrow every block; bad values are ignored, never a 500.
    r = client.get(f"/analytics/?{q}&channel_id={data['p3'].channel_id}&rows=channel&cols=x")
    assert r.status_code == 200 and 'data-summary="reads">50<' in r.get_data(as_text=True)
    assert client.get("/analytics/?from=garbage&audience_id=abc").status_code == 200


def test_best_time_api(client, db, data, make_user, login):
    login(make_user("viewer"))
    r = client.get(f"/api/v1/analytics/best-time?channel_id={data['p1'].channel_id}")
    assert r.status_code == 200
    assert r.get_json()["suggestion"] is None  # one post per slot: not enough history
    # Two recent posts at the same local weekday and hour engaging at 50% win.
    from datetime import timedelta

    from contentops.timeutil import utcnow

    slot = (utcnow() - timedelta(days=7)).replace(hour=7, minute=5)  # 15:05 in Shanghai
    for weeks in (0, 1):
        make_post(db.session, title=f"recent {weeks}", published_at=slot - timedelta(weeks=weeks),
                  reads=100, likes=50)
    db.session.commit()
    r = client.get("/api/v1/analytics/best-time?tz=Asia/Shanghai")
    hint = r.get_json()["suggestion"]
    assert (hint["weekday"], hint["hour"]) == (slot.astimezone(ZoneInfo(TZ)).weekday(), 15)
    assert hint["engagement_rate"] == pytest.approx(0.5)
    assert hint["next_at_local"].endswith("T15:00") and hint["next_at"].endswith("07:00:00Z")


def test_demo_history_adds_up_to_the_totals(db):
    from sqlalchemy import func, select

    from contentops.services.feedback import demo as feedback_demo

    post = make_post(db.session, published_at=utc(2026, 11, 20, 3), reads=1234, likes=57,
                     comments=3, shares=11, clicks=40)
    db.session.commit()
    assert feedback_demo.load(db.session, now=NOW) == 1
    assert feedback_demo.load(db.session, now=NOW) == 0  # safe to run again
    db.session.commit()
    sums = db.session.execute(select(*[func.sum(getattr(MetricBucket, m)) for m in
                                       ("reads", "likes", "comments", "shares", "clicks")])
                              .where(MetricBucket.post_id == post.id)).one()
    assert tuple(sums) == (1234, 57, 3, 11, 40)
    first = db.session.scalar(select(func.min(MetricBucket.hour)))
    assert first == utc(2026, 11, 20, 3)
