"""WeCom's per-customer receive limit (a month's days / 7 a week / 1 a day) modelled in the quota
layer: scheduling warns, the calendar marks full periods, counted across channels of one corp."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from contentops.services.publishing import quotas, receive_limits, schedule_post
from tests.calendar_helpers import Planner

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def plan(db, make_user):
    return Planner(db.session, make_user("editor"))


def wecom(plan, name, rule="month", kind="single", corp="ww-corp"):
    channel = plan.channel(name, kind="wecom_customer", conflict_window_minutes=0)
    channel.config = {"corp_id": corp, "kind": kind, "senders": ["zhangsan"],
                      "frequency_rule": rule}
    return channel


def codes(findings):
    return [(f.code, f.severity) for f in findings]


def test_daily_rule_warns_on_the_second_broadcast_of_a_shanghai_day(db, plan):
    a = wecom(plan, "客户群发 A", rule="day")
    b = wecom(plan, "客户群发 B", rule="day")
    moment = wecom(plan, "朋友圈", rule="day", kind="moment")
    groups = wecom(plan, "客户群", rule="day", kind="group")
    other_corp = wecom(plan, "另一家企业", rule="day", corp="ww-other")
    plan.post(a, datetime(2027, 2, 4, 23, 30, tzinfo=SH))  # 15:30 UTC
    mover = plan.post(b, None, status="unscheduled")
    plan.post(a, datetime(2027, 2, 4, 9, 0, tzinfo=SH), status="cancelled")
    plan.commit()
    # Same corp, same Shanghai day: the customer would not receive it.
    (finding,) = quotas.check_schedule(db.session, mover, datetime(2027, 2, 4, 8, 0, tzinfo=SH))
    assert (finding.code, finding.severity) == ("receive_limit", "warning")
    assert finding.params["allowed"] == 1 and finding.params["count"] == 1
    assert quotas.check_schedule(db.session, mover,
                                 datetime(2027, 2, 5, 0, 10, tzinfo=SH)) == []
    # 朋友圈, customer groups and another corp have limits of their own (or none).
    for channel in (moment, groups, other_corp):
        other = plan.post(channel, None, status="unscheduled")
        plan.commit()
        assert quotas.check_schedule(db.session, other,
                                     datetime(2027, 2, 4, 8, 0, tzinfo=SH)) == []


def test_monthly_rule_allows_as_many_as_the_month_has_days(db, plan):
    ch = wecom(plan, "客户群发")
    for day in range(1, 28):  # February 2027 has 28 days
        plan.post(ch, datetime(2027, 2, day, 10, 0, tzinfo=SH))
    mover = plan.post(ch, None, status="unscheduled")
    plan.commit()
    assert quotas.check_schedule(db.session, mover, datetime(2027, 2, 28, 10, tzinfo=SH)) == []
    plan.post(ch, datetime(2027, 2, 28, 9, 0, tzinfo=SH))
    plan.commit()
    assert codes(quotas.check_schedule(db.session, mover,
                                       datetime(2027, 2, 28, 20, tzinfo=SH))) == \
        [("receive_limit", "warning")]
    # March starts a new period.
    assert quotas.check_schedule(db.session, mover, datetime(2027, 3, 1, 8, tzinfo=SH)) == []


def test_weekly_rule_counts_monday_to_sunday(db, plan):
    ch = wecom(plan, "客户群发", rule="week")
    for day in range(1, 8):  # Mon 1 Feb … Sun 7 Feb 2027
        plan.post(ch, datetime(2027, 2, day, 10, 0, tzinfo=SH))
    mover = plan.post(ch, None, status="unscheduled")
    plan.commit()
    assert codes(quotas.check_schedule(db.session, mover, datetime(2027, 2, 3, 21,
                                                                   tzinfo=SH))) == \
        [("receive_limit", "warning")]
    assert quotas.check_schedule(db.session, mover, datetime(2027, 2, 8, 9, tzinfo=SH)) == []


def test_scheduling_over_the_limit_warns_but_goes_ahead(db, plan):
    ch = wecom(plan, "客户群发", rule="day")
    plan.post(ch, datetime(2027, 2, 4, 10, 0, tzinfo=SH))
    mover = plan.post(ch, None, status="unscheduled")
    plan.commit()
    warnings = schedule_post(db.session, mover, datetime(2027, 2, 4, 20, tzinfo=SH),
                             actor=None, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert [w.code for w in warnings] == ["receive_limit"]
    assert mover.status == "scheduled"


def test_calendar_marks_each_day_of_a_full_period(db, plan, client, login, make_user):
    ch = wecom(plan, "客户群发", rule="week")
    for day in range(1, 8):
        plan.post(ch, datetime(2027, 2, day, 10, 0, tzinfo=SH))
    daily = wecom(plan, "每日一条", rule="day", corp="ww-other")
    plan.post(daily, datetime(2027, 2, 10, 10, 0, tzinfo=SH))
    plan.post(daily, datetime(2027, 2, 10, 12, 0, tzinfo=SH))
    plan.commit()
    full = receive_limits.usage(db.session, datetime(2027, 2, 1, tzinfo=SH),
                                datetime(2027, 3, 1, tzinfo=SH), tz="Asia/Shanghai")
    weekly = [f.day.day for f in full if f.channel_id == ch.id]
    assert weekly == [1, 2, 3, 4, 5, 6, 7]
    (over,) = [f for f in full if f.channel_id == daily.id]
    assert over.day.day == 10 and over.over
    login(make_user("editor"))
    res = client.get("/api/v1/calendar/quota?start=2027-02-01&end=2027-03-01"
                     "&timeZone=Asia/Shanghai")
    marks = [m for m in res.get_json() if m["id"].startswith("receive-")]
    assert len(marks) == 8
    (ten,) = [m for m in marks if m["start"] == "2027-02-10"]
    assert ten["classNames"] == ["co-quota-over"]
    assert "每日一条" in ten["title"] and "2 of 1" in ten["title"]
