"""The calendar in headless Chromium: a 公众号 mass-send channel's full day is tinted, and a
drop onto it is refused with the message shown and the post snapped back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contentops.models import Post
from tests.builders import Make, mp_config
from tests.calendar_helpers import Planner
from tests.test_calendar_browser import SH, day_cell, drag, event_el, open_month

pytestmark = pytest.mark.browser


@pytest.fixture
def editor(make_user):
    return make_user("editor", name="Lin Editor")


def test_full_mass_send_day_is_tinted_and_a_drop_onto_it_reverts(page, live_server,
                                                                 browser_login, editor, db):
    channel = Make(db.session).channel(
        "wechat_mp", name="品牌订阅号", color="#07c160", conflict_window_minutes=0,
        config=mp_config(account_type="subscription", mode="mass_send"))
    plan = Planner(db.session, editor)
    plan.post(channel, datetime(2027, 2, 12, 8, 0, tzinfo=SH), title="已占用")
    post = plan.post(channel, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="想换天")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)

    tint = day_cell(page, "2027-02-12").locator(".fc-bg-event.co-quota-mass-send")
    tint.wait_for()
    assert tint.get_attribute("data-mass-send") == "day"
    assert "品牌订阅号" in tint.get_attribute("title")
    assert "co-quota-full" in tint.get_attribute("class")
    # Only full days are tinted: the free 11th is not, the mover's own day (the 9th) is.
    assert day_cell(page, "2027-02-11").locator(".co-quota-mass-send").count() == 0
    assert day_cell(page, "2027-02-09").locator(".co-quota-mass-send").count() == 1

    drag(page, event_el(page, post.id), day_cell(page, "2027-02-12"))
    message = page.locator('#cal-message[data-kind="danger"]')
    message.wait_for()
    assert "is a subscription account: it may mass-send once a day" in message.inner_text()
    assert "2027-02-12" in message.inner_text()
    assert day_cell(page, "2027-02-09").locator(f'[data-post-id="{post.id}"]').count() == 1
    assert day_cell(page, "2027-02-12").locator(f'[data-post-id="{post.id}"]').count() == 0
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == \
        datetime(2027, 2, 9, 9, 0, tzinfo=SH).astimezone(UTC)
