"""Channel quotas, pacing warnings and conflicts when scheduling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contentops.channels.base import Capabilities
from contentops.errors import ValidationError
from contentops.services.publishing import quotas, schedule_post
from tests.calendar_helpers import Planner

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def plan(db, make_user):
    return Planner(db.session, make_user("editor"))


def codes(findings):
    return [(f.code, f.severity) for f in findings]


def test_daily_quota_counts_the_channels_own_day(db, plan):
    # 23:30 Shanghai on the 4th is 15:30 UTC; the quota day is the Shanghai day.
    mp = plan.channel("公众号", daily_quota=1, timezone="Asia/Shanghai",
                      conflict_window_minutes=0)
    plan.post(mp, datetime(2027, 2, 4, 23, 30, tzinfo=SH))
    mover = plan.post(mp, None, status="unscheduled")
    plan.commit()
    assert codes(quotas.check_schedule(db.session, mover, datetime(2027, 2, 4, 8, 0,
                                                                   tzinfo=SH))) == \
        [("daily_quota", "error")]
    assert quotas.check_schedule(db.session, mover, datetime(2027, 2, 5, 0, 10, tzinfo=SH)) == []
    # The post itself does not count against its own move within the same day.
    same_day = plan.post(mp, None, status="unscheduled")
    plan.commit()
    first = db.session.get(type(same_day), same_day.id - 2)
    assert quotas.check_schedule(db.session, first, datetime(2027, 2, 4, 9, 0, tzinfo=SH)) == []


def test_cancelled_failed_and_missed_posts_free_their_slot(db, plan):
    mp = plan.channel("公众号", daily_quota=1)
    for status in ("cancelled", "failed", "missed"):
        plan.post(mp, datetime(2027, 2, 4, 9, 0, tzinfo=SH), status=status)
    mover = plan.post(mp, None, status="unscheduled")
    plan.commit()
    assert quotas.check_schedule(db.session, mover, datetime(2027, 2, 4, 12, 0, tzinfo=SH)) == []


def test_team_zone_is_used_when_the_channel_has_none(db, plan):
    robot = plan.channel("群机器人", daily_quota=1)
    plan.post(robot, datetime(2027, 3, 14, 23, 0, tzinfo=NY))  # 03:00 UTC on the 15th
    mover = plan.post(robot, None, status="unscheduled")
    plan.commit()
    when = datetime(2027, 3, 14, 8, 0, tzinfo=NY)
    assert codes(quotas.check_schedule(db.session, mover, when, tz="America/New_York")) == \
        [("daily_quota", "error")]
    # Counted in Shanghai days the two fall on the 15th and the 14th: no clash.
    assert quotas.check_schedule(db.session, mover, when, tz="Asia/Shanghai") == []


def test_day_bounds_follow_dst():
    day, start, end = quotas.day_bounds(datetime(2027, 3, 14, 12, 0, tzinfo=UTC), NY)
    assert str(day) == "2027-03-14" and end - start == timedelta(hours=23)
    day, start, end = quotas.day_bounds(datetime(2027, 11, 7, 12, 0, tzinfo=UTC), NY)
    assert str(day) == "2027-11-07" and end - start == timedelta(hours=25)
    assert start == datetime(2027, 11, 7, 4, 0, tzinfo=UTC)


def test_per_minute_limit_warns(db, plan):
    robot = plan.channel("企业微信群机器人", per_minute_limit=2, conflict_window_minutes=0)
    minute = datetime(2027, 2, 4, 9, 0, tzinfo=SH)
    plan.post(robot, minute)
    plan.post(robot, minute + timedelta(seconds=30))
    mover = plan.post(robot, None, status="unscheduled")
    plan.commit()
    assert codes(quotas.check_schedule(db.session, mover, minute + timedelta(seconds=59))) == \
        [("per_minute_limit", "warning")]
    assert quotas.check_schedule(db.session, mover, minute + timedelta(minutes=1)) == []


def test_adapter_capabilities_tighten_the_channel_settings(db, plan, monkeypatch):
    from contentops.channels.webhook import WebhookAdapter

    monkeypatch.setattr(WebhookAdapter, "capabilities",
                        Capabilities(idempotent=True, daily_quota=1, per_minute=20))
    ch = plan.channel("订阅号", daily_quota=5, per_minute_limit=60)
    plan.commit()
    assert quotas.effective_limits(ch) == (1, 20)
    unknown = plan.channel("未来渠道", kind="not_installed", daily_quota=3)
    assert quotas.effective_limits(unknown) == (3, None)


def test_conflict_window_is_per_channel_and_can_be_off(db, plan):
    aud = plan.audience()
    tight = plan.channel("社群", conflict_window_minutes=30)
    off = plan.channel("邮件", conflict_window_minutes=0)
    base = datetime(2027, 2, 4, 9, 0, tzinfo=SH)
    plan.post(tight, base, audience=aud)
    plan.post(off, base, audience=aud)
    a = plan.post(tight, None, status="unscheduled", audience=aud)
    b = plan.post(off, None, status="unscheduled", audience=aud)
    plan.commit()
    assert codes(quotas.check_schedule(db.session, a, base + timedelta(minutes=29))) == \
        [("conflict", "warning")]
    assert quotas.check_schedule(db.session, a, base + timedelta(minutes=30)) == []
    assert quotas.check_schedule(db.session, b, base) == []


def test_schedule_post_refuses_on_quota_and_changes_nothing(db, plan):
    mp = plan.channel("公众号", daily_quota=1)
    plan.post(mp, datetime(2027, 2, 4, 9, 0, tzinfo=SH))
    mover = plan.post(mp, datetime(2027, 2, 3, 9, 0, tzinfo=SH))
    plan.commit()
    with pytest.raises(ValidationError) as exc:
        schedule_post(db.session, mover, datetime(2027, 2, 4, 18, 0, tzinfo=SH), actor=None,
                      now=NOW)
    assert exc.value.params["quota"] == 1 and exc.value.params["day"] == "2027-02-04"
    assert mover.scheduled_at == datetime(2027, 2, 3, 1, 0, tzinfo=UTC)


def test_quota_usage_reports_full_and_over_days(db, plan):
    mp = plan.channel("公众号", daily_quota=1, timezone="Asia/Shanghai")
    free = plan.channel("微博")
    plan.post(mp, datetime(2027, 2, 4, 9, 0, tzinfo=SH))
    plan.post(mp, datetime(2027, 2, 5, 9, 0, tzinfo=SH))
    plan.post(mp, datetime(2027, 2, 5, 19, 0, tzinfo=SH))
    plan.post(free, datetime(2027, 2, 5, 9, 0, tzinfo=SH))
    plan.commit()
    start = datetime(2027, 2, 1, tzinfo=SH)
    usage = quotas.quota_usage(db.session, start, start + timedelta(days=28), tz="Asia/Shanghai")
    assert [(str(u.day), u.count, u.over) for u in usage] == [("2027-02-04", 1, False),
                                                              ("2027-02-05", 2, True)]
    assert quotas.quota_usage(db.session, start, start + timedelta(days=28),
                              tz="Asia/Shanghai", channel_ids=[free.id]) == []
