"""Staff totals written by the engine itself: a 企业微信 broadcast published through the
dispatcher against the WeCom fake, senders confirming on their phones (the fake), track_due
following them — the post's staff_confirmed / staff_total / reached, the post list's "sent by
staff" cell and the API's `staff` come from that, not from hand-set columns."""

from __future__ import annotations

import pytest

from contentops.services.publishing.handoff import staff_values
from contentops.services.users import create_token

from .staff_support import StaffFlow, wecom_fake


@pytest.fixture
def fake():
    service = wecom_fake().start()
    yield service
    service.stop()


def test_staff_values_read_the_progress():
    progress = {"confirmed": 1, "total": 3, "reached": 2,
                "staff": [{"id": "a", "status": "sent", "reached": 2},
                          {"id": "b", "status": "pending"}, {"id": "c", "status": "pending"}]}
    assert staff_values(progress) == {"staff_confirmed": 1, "staff_total": 3, "reached": 2}
    # Counted from the entries when the totals are not there yet; invalid senders do not count.
    assert staff_values({"staff": [{"id": "a", "status": "sent", "reached": 4},
                                   {"id": "b", "status": "invalid"}]}) == {
        "staff_confirmed": 1, "staff_total": 1, "reached": 4}
    # A 公众号 publish job is not about staff: the columns stay "not handed to staff".
    assert staff_values({"media_id": "m", "confirmed": 0, "total": 1}) == {}
    assert staff_values(None) == {}


def test_totals_follow_the_senders_end_to_end(db, fake, make_user, client, login):
    flow = StaffFlow(db, fake, make_user("editor"))
    flow.dispatch()
    post = flow.fresh()
    assert post.status == "awaiting_staff"
    assert (post.staff_confirmed, post.staff_total, post.reached) == (0, 3, 0)

    flow.confirm("zhangsan")  # two customers reached, one no longer a friend
    assert flow.track().waiting == 1
    post = flow.fresh()
    assert post.status == "awaiting_staff"
    assert (post.staff_confirmed, post.staff_total, post.reached) == (1, 3, 2)
    assert post.progress["not_friend"] == 1

    flow.confirm("lisi")
    flow.confirm("wangwu")
    assert flow.track().published == 1
    post = flow.fresh()
    assert post.status == "published"
    assert (post.staff_confirmed, post.staff_total, post.reached) == (3, 3, 5)

    viewer = make_user("viewer")
    login(viewer)
    html = client.get("/posts/").get_data(as_text=True)
    row = html.split(f'data-post="{post.id}"')[1].split("</tr>")[0]
    assert "3 of 3" in row and "5 reached" in row
    _, token = create_token(db.session, make_user("editor"))
    db.session.commit()
    items = client.get("/api/v1/posts", headers={"Authorization": f"Bearer {token}"}
                       ).get_json()["items"]
    assert next(i for i in items if i["id"] == post.id)["staff"] == {
        "confirmed": 3, "total": 3, "reached": 5}
