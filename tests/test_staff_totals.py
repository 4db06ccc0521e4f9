"""Posts handed to staff count into the post list ("sent by staff") and into analytics by
audience × style × channel: how many staff members sent them and how many customers they
reached."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contentops.services import analytics as an

from .feedback_fixtures import make_post

TZ = "Asia/Shanghai"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def data(db):
    s = db.session
    a = make_post(s, title="客户群发 A", channel_name="客户群发", kind="wecom_customer",
                  audience="新会员", style="亲切", published_at=utc(2026, 11, 2, 12),
                  staff_confirmed=2, staff_total=3, reached=120)
    b = make_post(s, title="客户群发 B", channel_name="客户群发", kind="wecom_customer",
                  audience="新会员", style="亲切", published_at=utc(2026, 11, 3, 12),
                  staff_confirmed=3, staff_total=3, reached=80)
    c = make_post(s, title="朋友圈", channel_name="朋友圈", kind="manual", audience="沉睡用户",
                  style="专业", published_at=utc(2026, 11, 4, 12), staff_confirmed=1,
                  staff_total=2)
    web = make_post(s, title="Web", published_at=utc(2026, 11, 5, 12), reads=300)
    s.commit()
    return {"a": a, "b": b, "c": c, "web": web}


def november(**ids) -> an.Filters:
    return an.Filters.from_dates(date(2026, 11, 1), date(2026, 11, 30), TZ, **ids)


def test_analytics_sum_reach_and_confirmations(db, data):
    s = an.summary(db.session, november())
    assert (s["reached"], s["staff_confirmed"], s["staff_total"]) == (200, 6, 8)
    assert s["confirmation_rate"] == pytest.approx(6 / 8)
    by_channel = {r["name"]: r for r in an.breakdown(db.session, november(), "channel")}
    assert by_channel["客户群发"]["reached"] == 200
    assert by_channel["客户群发"]["confirmation_rate"] == pytest.approx(5 / 6)
    assert by_channel["Web"]["staff_total"] == 0 and by_channel["Web"]["confirmation_rate"] is None
    m = an.matrix(db.session, november(), "audience", "style")
    names = {r["name"]: r["id"] for r in m["rows"]}
    cols = {c["name"]: c["id"] for c in m["cols"]}
    cell = m["cells"][(names["沉睡用户"], cols["专业"])]
    assert (cell["staff_confirmed"], cell["staff_total"], cell["reached"]) == (1, 2, 0)


def test_post_list_and_api_show_sent_by_staff(client, db, make_user, login, data):
    login(make_user("viewer"))
    html = client.get("/posts/?sort=-staff").get_data(as_text=True)
    rows = html.split('data-post="')[1:]
    assert rows[0].startswith(str(data["b"].id))  # 3 of 3 first, posts without staff last
    assert rows[-1].startswith(str(data["web"].id))
    assert "2 of 3" in html and "120 reached" in html
    from contentops.services.users import create_token

    _, token = create_token(db.session, make_user("editor"))
    db.session.commit()
    items = {i["id"]: i for i in client.get(
        "/api/v1/posts", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]}
    assert items[data["a"].id]["staff"] == {"confirmed": 2, "total": 3, "reached": 120}
    assert items[data["web"].id]["staff"] is None

