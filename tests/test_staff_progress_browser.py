"""A post's N-of-M staff progress on its page in a real browser, seeded through the real flow:
dispatcher → WeCom fake → two of three senders confirm → track_due; then reminding the one who
has not sent."""

from __future__ import annotations

import pytest

from .staff_support import StaffFlow, wecom_fake

pytestmark = pytest.mark.browser


@pytest.fixture
def fake():
    service = wecom_fake().start()
    yield service
    service.stop()


def test_post_page_shows_two_of_three_and_reminds_the_third(page, live_server, browser_login,
                                                            make_user, db, fake):
    editor = make_user("editor")
    flow = StaffFlow(db, fake, editor)
    flow.dispatch()
    flow.confirm("zhangsan")
    flow.confirm("lisi")
    flow.track()
    browser_login(editor)
    page.goto(f"{live_server.url}/publishing/posts/{flow.post.id}")
    card = page.get_by_test_id("staff-progress")
    assert card.locator("[data-staff=summary]").inner_text() == "2 of 3 staff sent"
    assert card.locator("[data-reach=reached]").inner_text() == "4"
    assert card.locator("[data-reach=not_friend]").inner_text() == "1"
    assert card.locator("[data-reach=already_received]").inner_text() == "0"
    pending = card.locator("tr[data-sender-status=pending]")
    assert pending.count() == 1 and "wangwu" in pending.inner_text()
    assert "Not yet" in pending.inner_text()
    assert card.locator("tr[data-sender-status=sent]").count() == 2
    assert "Deadline:" in card.locator("[data-staff=deadline]").inner_text()
    card.locator("[data-action=remind]").click()
    page.wait_for_load_state()
    assert "Reminded: wangwu" in page.locator("body").inner_text()
    row = page.get_by_test_id("staff-progress").locator("tr[data-sender=wangwu]")
    assert row.locator("td").nth(4).inner_text().startswith("1")
    assert [c[1]["msgid"] for c in fake.calls if c[0] == "remind_groupmsg_send"] == [
        flow.msgid("wangwu")]
