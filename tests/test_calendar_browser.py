"""The calendar page in headless Chromium: rendering, drag and drop, filters, creating."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from contentops.models import Post
from tests.calendar_helpers import Planner

pytestmark = pytest.mark.browser

SH = ZoneInfo("Asia/Shanghai")
MONTH = "2027-02-01"  # a month in the future, so every post in it may still move


@pytest.fixture
def editor(make_user):
    return make_user("editor", name="Lin Editor")


@pytest.fixture
def plan(db, editor):
    return Planner(db.session, editor)


def open_month(page, live_server, query: str = "") -> None:
    page.goto(f"{live_server.url}/calendar/?view=dayGridMonth&date={MONTH}{query}")
    page.wait_for_selector("#calendar .fc-daygrid-body")
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")


def drag(page, source, target) -> None:
    """Drag with real mouse events, in steps, as FullCalendar's pointer tracking expects."""
    box = source.bounding_box()
    goal = target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 5, box["y"] + box["height"] / 2 + 5, steps=3)
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=12)
    page.mouse.up()


def day_cell(page, day: str):
    return page.locator(f'#calendar td.fc-daygrid-day[data-date="{day}"]')


def event_el(page, post_id: int):
    return page.locator(f'#calendar .fc-event[data-post-id="{post_id}"]')


def test_month_view_renders_posts_with_status_and_audience(page, live_server, browser_login,
                                                           editor, plan):
    wechat = plan.channel("公众号", color="#07c160")
    aud, sty = plan.audience("宝妈社群"), plan.style("亲切")
    scheduled = plan.post(wechat, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="情人节预热",
                          audience=aud, style=sty)
    draft = plan.post(wechat, datetime(2027, 2, 16, 20, 0, tzinfo=SH), title="元宵活动",
                      review="draft")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)

    first = event_el(page, scheduled.id)
    first.wait_for()
    assert day_cell(page, "2027-02-09").locator(f'[data-post-id="{scheduled.id}"]').count() == 1
    assert "情人节预热" in first.inner_text() and "09:00" in first.inner_text()
    assert "宝妈社群 · 亲切" in first.inner_text()
    assert first.get_attribute("data-status") == "scheduled"
    assert first.locator("i.bi-clock").count() == 1
    assert "宝妈社群" in first.get_attribute("title")
    assert event_el(page, draft.id).get_attribute("data-status") == "draft"
    # The Spring Festival overlay (6 Feb 2027) is on by default.
    assert day_cell(page, "2027-02-06").locator('[data-observance="spring_festival"]').count() == 1


def test_dragging_a_post_to_another_day_persists(page, live_server, browser_login, editor, plan,
                                                 db):
    ch = plan.channel("公众号")
    post = plan.post(ch, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="拖我")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)

    drag(page, event_el(page, post.id), day_cell(page, "2027-02-11"))
    page.wait_for_selector('#cal-message[data-kind="success"]')
    assert day_cell(page, "2027-02-11").locator(f'[data-post-id="{post.id}"]').count() == 1
    db.session.expire_all()
    moved = db.session.get(Post, post.id)
    assert moved.scheduled_at == datetime(2027, 2, 11, 9, 0, tzinfo=SH).astimezone(UTC)
    assert moved.piece.status == "approved"  # moving time keeps the approval

    page.reload()
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")
    assert day_cell(page, "2027-02-11").locator(f'[data-post-id="{post.id}"]').count() == 1


def test_refused_drag_snaps_back_with_a_message(page, live_server, browser_login, editor, plan,
                                                db):
    mp = plan.channel("公众号订阅号", daily_quota=1)
    plan.post(mp, datetime(2027, 2, 12, 8, 0, tzinfo=SH), title="已占用")
    post = plan.post(mp, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="想换天")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)

    drag(page, event_el(page, post.id), day_cell(page, "2027-02-12"))
    message = page.locator('#cal-message[data-kind="danger"]')
    message.wait_for()
    assert "allows 1 post(s) per day" in message.inner_text()
    assert day_cell(page, "2027-02-09").locator(f'[data-post-id="{post.id}"]').count() == 1
    assert day_cell(page, "2027-02-12").locator(f'[data-post-id="{post.id}"]').count() == 0
    db.session.expire_all()
    assert db.session.get(Post, post.id).scheduled_at == \
        datetime(2027, 2, 9, 9, 0, tzinfo=SH).astimezone(UTC)


def test_filter_narrows_events_and_is_kept_in_the_url(page, live_server, browser_login, editor,
                                                      plan):
    wechat, robot = plan.channel("公众号"), plan.channel("企业微信群", color="#1e90ff")
    a = plan.post(wechat, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="公众号文章")
    b = plan.post(robot, datetime(2027, 2, 9, 12, 0, tzinfo=SH), title="群消息")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)
    event_el(page, a.id).wait_for()
    event_el(page, b.id).wait_for()

    page.select_option("#filter-channel", str(robot.id))
    event_el(page, a.id).wait_for(state="detached")
    assert event_el(page, b.id).count() == 1
    assert parse_qs(urlsplit(page.url).query)["channel"] == [str(robot.id)]

    # The shared link opens the same narrowed view.
    page.goto(page.url)
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")
    event_el(page, b.id).wait_for()
    assert event_el(page, a.id).count() == 0
    assert page.locator("#filter-channel").input_value() == str(robot.id)


def test_clicking_a_day_opens_the_editor_prefilled(page, live_server, browser_login, editor,
                                                   plan):
    plan.channel("公众号")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)
    day_cell(page, "2027-02-18").locator(".fc-daygrid-day-frame").click(position={"x": 10,
                                                                                "y": 60})
    page.wait_for_url("**/pieces/new?**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["date"] == ["2027-02-18"] and query["time"] == ["09:00"]
    assert query["tz"] == ["Asia/Shanghai"]
    # The editor opens with the clicked day and time filled in.
    assert page.locator("input[name=scheduled_at]").input_value() == "2027-02-18T09:00"


def test_a_viewer_in_europe_sees_the_shanghai_morning_at_their_hour(page, live_server,
                                                                    browser_login, make_user,
                                                                    plan, db):
    ch = plan.channel("公众号")
    post = plan.post(ch, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="早安")
    viewer = make_user("viewer")
    viewer.timezone = "Europe/Berlin"
    plan.commit()
    browser_login(viewer)
    open_month(page, live_server)
    text = event_el(page, post.id).inner_text()
    assert "02:00" in text
    # Switching to the team zone shows the Shanghai wall clock.
    page.select_option("#cal-tz", "Asia/Shanghai")
    page.wait_for_selector(f'#calendar [data-post-id="{post.id}"]:has-text("09:00")')
    assert "tz=Asia%2FShanghai" in page.url or "tz=Asia/Shanghai" in page.url
    # Viewers cannot drag.
    assert event_el(page, post.id).get_attribute("class").find("fc-event-draggable") == -1


def test_dragging_an_unscheduled_post_from_the_side_panel(page, live_server, browser_login,
                                                          editor, plan, db):
    ch = plan.channel("公众号")
    post = plan.post(ch, None, status="unscheduled", title="待排期文章")
    plan.commit()
    browser_login(editor)
    open_month(page, live_server)
    item = page.locator(f'#cal-unscheduled li[data-post-id="{post.id}"]')
    item.wait_for()
    drag(page, item, day_cell(page, "2027-02-15"))
    page.wait_for_selector('#cal-message[data-kind="success"]')
    event_el(page, post.id).wait_for()
    assert day_cell(page, "2027-02-15").locator(f'[data-post-id="{post.id}"]').count() == 1
    item.wait_for(state="detached")
    db.session.expire_all()
    scheduled = db.session.get(Post, post.id)
    assert scheduled.status == "scheduled"
    assert scheduled.scheduled_at == datetime(2027, 2, 15, 9, 0, tzinfo=SH).astimezone(UTC)


def test_month_view_renders_the_demo_plan(page, live_server, browser_login, make_user, app,
                                          db):
    from sqlalchemy import select

    from contentops.services.demo import load_demo
    from contentops.timeutil import utcnow

    now = utcnow()
    load_demo(db.session, secret_key=app.config["SECRET_KEY"], now=now)
    db.session.commit()
    viewer = make_user("viewer")
    browser_login(viewer)
    page.goto(f"{live_server.url}/calendar/")
    page.wait_for_selector("#calendar .fc-event[data-post-id]")
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")
    # The grid shows whole weeks around the month: take its range from the page.
    first, last = page.evaluate("[ContentOpsCalendar.view.activeStart.toISOString(),"
                                " ContentOpsCalendar.view.activeEnd.toISOString()]")
    start = datetime.fromisoformat(first[:19]).replace(tzinfo=SH)
    end = datetime.fromisoformat(last[:19]).replace(tzinfo=SH)
    assert start <= now < end
    in_month = set(db.session.scalars(select(Post.id).where(
        Post.scheduled_at >= start, Post.scheduled_at < end, Post.status != "cancelled")))
    assert len(in_month) >= 5
    rendered = {int(x) for x in page.eval_on_selector_all(
        "#calendar .fc-event[data-post-id]", "els => els.map(e => e.dataset.postId)")}
    assert rendered and rendered <= in_month
    assert len(rendered) >= min(5, len(in_month))
    statuses = set(page.eval_on_selector_all(
        "#calendar .fc-event[data-post-id]", "els => els.map(e => e.dataset.status)"))
    assert len(statuses) >= 2  # published, scheduled, in review … each with its own mark


def test_week_view_drag_changes_the_time_of_day(page, live_server, browser_login, editor, plan,
                                                db):
    ch = plan.channel("公众号")
    post = plan.post(ch, datetime(2027, 2, 9, 9, 0, tzinfo=SH), title="改时间")
    plan.commit()
    browser_login(editor)
    page.goto(f"{live_server.url}/calendar/?view=timeGridWeek&date=2027-02-09")
    page.wait_for_selector('#calendar[data-loading="0"]', state="attached")
    source = event_el(page, post.id)
    source.wait_for()
    column = page.locator('#calendar td.fc-timegrid-col[data-date="2027-02-10"]').bounding_box()
    lane = page.locator('#calendar td.fc-timegrid-slot-lane[data-time="14:00:00"]')
    lane.scroll_into_view_if_needed()
    source.scroll_into_view_if_needed()
    box, slot = source.bounding_box(), lane.bounding_box()
    column = page.locator('#calendar td.fc-timegrid-col[data-date="2027-02-10"]').bounding_box()
    # Grab the event at its top edge and drop that edge on 14:00 of the next day.
    grab_y = box["y"] + 3
    page.mouse.move(box["x"] + box["width"] / 2, grab_y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 5, grab_y + 5, steps=3)
    page.mouse.move(column["x"] + column["width"] / 2, slot["y"] + 3, steps=12)
    page.mouse.up()
    page.wait_for_selector('#cal-message[data-kind="success"]')
    db.session.expire_all()
    local = db.session.get(Post, post.id).scheduled_at.astimezone(SH)
    # Pixel rounding may land on either 15-minute snap of the 14:00 slot.
    assert local.date().isoformat() == "2027-02-10"
    assert (local.hour, local.minute) in {(14, 0), (14, 15)}
