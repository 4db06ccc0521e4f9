"""N of M on a post's page: the progress card (who sent, when, reach, reminders, deadline), the
"remind those who have not sent" button within WeCom's three reminders per broadcast in 24
hours, deadline notices naming who did not send, and what the editor hears at the hand-off.
Seeded through the real flow: dispatcher → WeCom fake → senders confirm → track_due."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from contentops.models.review import Notification
from contentops.services import notifications

from .staff_support import StaffFlow, wecom_fake


@pytest.fixture
def fake():
    service = wecom_fake().start()
    yield service
    service.stop()


@pytest.fixture
def editor(make_user):
    return make_user("editor", email="editor@example.com", name="Editor Wang")


def messages_of(db, user) -> list[str]:
    db.session.expire_all()
    rows = db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                              .order_by(Notification.id))
    return [notifications.render_text(n.message, n.params, "en") for n in rows]


def card_of(html: str) -> str:
    start = html.index('data-testid="staff-progress"')
    return html[start:html.index("</section>", start)]


def test_card_shows_n_of_m_reach_and_senders(db, fake, editor, client, login):
    flow = StaffFlow(db, fake, editor)
    flow.dispatch()
    # The editor hears who has it until when — not "post it by hand".
    told = messages_of(db, editor)
    assert any("handed to 3 senders" in m and "until" in m for m in told), told
    assert not any("by hand" in m for m in told)
    flow.confirm("zhangsan")
    flow.track()
    login(editor)
    card = card_of(client.get(f"/publishing/posts/{flow.post.id}").get_data(as_text=True))
    assert "1 of 3 staff sent" in card
    assert re.search(r'data-reach="reached">2<', card)
    assert re.search(r'data-reach="not_friend">1<', card)
    assert re.search(r'data-reach="already_received">0<', card)
    assert 'data-sender="zhangsan" data-sender-status="sent"' in card
    assert 'data-sender="lisi" data-sender-status="pending"' in card
    assert "Deadline:" in card and 'data-action="remind"' in card
    # The piece page lists it too.
    piece_html = client.get(f"/pieces/{flow.post.piece_id}").get_data(as_text=True)
    assert "1 of 3 staff sent" in piece_html


def test_remind_goes_to_wecom_three_times_a_day_then_stops(db, fake, editor, client, login):
    flow = StaffFlow(db, fake, editor)
    flow.dispatch()
    flow.confirm("zhangsan")
    flow.track()
    login(editor)
    url = f"/publishing/posts/{flow.post.id}/remind"
    for _ in range(3):
        page = client.post(url, follow_redirects=True).get_data(as_text=True)
        assert "Reminded: lisi, wangwu" in page
    reminded = [c[1]["msgid"] for c in fake.calls if c[0] == "remind_groupmsg_send"]
    assert sorted(reminded) == sorted([flow.msgid("lisi"), flow.msgid("wangwu")] * 3)
    page = client.post(url, follow_redirects=True).get_data(as_text=True)
    assert "the most WeCom allows" in page
    assert len([c for c in fake.calls if c[0] == "remind_groupmsg_send"]) == 6
    card = card_of(page)
    assert 'data-action="remind"' not in card and 'data-staff="no-remind"' in card
    # The tracker keeps what it learns without losing the reminders.
    flow.track()
    entries = {s["id"]: s for s in flow.fresh().progress["staff"]}
    assert len(entries["lisi"]["reminded"]) == 3


def test_deadline_with_someone_missing_publishes_and_names_them(db, fake, editor):
    flow = StaffFlow(db, fake, editor, config={"deadline_hours": 1})
    flow.dispatch()
    flow.confirm("lisi")
    flow.track(3600)
    post = flow.fresh()
    assert post.status == "published" and (post.staff_confirmed, post.staff_total) == (1, 3)
    told = messages_of(db, editor)
    assert any("2 of 3 did not send it (zhangsan, wangwu)" in m for m in told), told
    # WeCom reminds the two who did not send.
    assert sorted(c[1]["msgid"] for c in fake.calls if c[0] == "remind_groupmsg_send") == \
        sorted([flow.msgid("zhangsan"), flow.msgid("wangwu")])


def test_deadline_with_nobody_sent_is_missed_and_still_reminds(db, fake, editor):
    flow = StaffFlow(db, fake, editor, config={"deadline_hours": 1})
    flow.dispatch()
    flow.track(3600)
    post = flow.fresh()
    assert post.status == "missed"
    told = messages_of(db, editor)
    assert any("was not published" in m and "zhangsan, lisi, wangwu" in m for m in told), told
    assert len([c for c in fake.calls if c[0] == "remind_groupmsg_send"]) == 3


def test_moments_have_no_reminder(db, fake, editor, client, login):
    flow = StaffFlow(db, fake, editor, config={"kind": "moment"})
    flow.dispatch()
    fake.finish_jobs()
    flow.track()
    login(editor)
    page = client.get(f"/publishing/posts/{flow.post.id}").get_data(as_text=True)
    card = card_of(page)
    assert "0 of 3 staff sent" in card
    assert 'data-action="remind"' not in card and "no reminder for 朋友圈" in card
    page = client.post(f"/publishing/posts/{flow.post.id}/remind",
                       follow_redirects=True).get_data(as_text=True)
    assert "no reminder for 朋友圈" in page


def test_viewers_cannot_remind(db, fake, editor, client, login, make_user):
    flow = StaffFlow(db, fake, editor)
    flow.dispatch()
    login(make_user("viewer"))
    assert client.post(f"/publishing/posts/{flow.post.id}/remind").status_code in (302, 403)
    assert not [c for c in fake.calls if c[0] == "remind_groupmsg_send"]
