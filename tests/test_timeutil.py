"""LocalClock (the calendar's fast epoch -> local ISO 8601) and epoch_seconds in SQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contentops.models import Post
from contentops.models.types import epoch_seconds
from contentops.timeutil import LocalClock

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata",
         "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "UTC"]


def _epoch(*args: int, tz: str = "UTC") -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp())


@pytest.mark.parametrize("tz", ZONES)
def test_local_clock_matches_zoneinfo_everywhere(tz):
    clock, zone = LocalClock(tz), ZoneInfo(tz)
    rnd = random.Random(tz)
    for _ in range(20_000):
        epoch = rnd.randrange(0, 2_200_000_000)
        assert clock.isoformat(epoch) == datetime.fromtimestamp(epoch, zone).isoformat()


@pytest.mark.parametrize("tz, day", [
    ("America/New_York", (2027, 3, 14)), ("America/New_York", (2027, 11, 7)),
    ("Europe/London", (2027, 3, 28)), ("Australia/Lord_Howe", (2027, 4, 4)),
])
def test_local_clock_every_minute_of_a_transition_day(tz, day):
    clock, zone = LocalClock(tz), ZoneInfo(tz)
    start = _epoch(*day, tz=tz) - 86400
    for epoch in range(start, start + 3 * 86400, 60):
        assert clock.isoformat(epoch + 7) == datetime.fromtimestamp(epoch + 7, zone).isoformat()


def test_new_york_wall_clock_across_the_march_change():
    clock = LocalClock("America/New_York")
    assert clock.isoformat(_epoch(2027, 3, 14, 6, 59, 59)) == "2027-03-14T01:59:59-05:00"
    assert clock.isoformat(_epoch(2027, 3, 14, 7, 0, 0)) == "2027-03-14T03:00:00-04:00"


def test_epoch_seconds_in_sql_floors_to_the_second(db):
    from contentops.models import User
    from tests.calendar_helpers import Planner

    author = User(email="e@example.com", name="E", password_hash="x", role="editor",
                  notification_prefs={})
    db.session.add(author)
    db.session.flush()
    plan = Planner(db.session, author)
    when = datetime(2027, 3, 14, 6, 59, 59, 999_000, tzinfo=UTC)
    post = plan.post(plan.channel(), when)
    plan.commit()
    got = db.session.scalar(select(epoch_seconds(Post.scheduled_at)).where(Post.id == post.id))
    assert got == _epoch(2027, 3, 14, 6, 59, 59)
