"""LocalClock (the calendar's fast epoch -> local ISO 8601), epoch_seconds in SQL, and
wall-clock times around DST changes (resolve_local) and instants in stored reasons."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contentops.models import Post
from contentops.models.types import epoch_seconds
from contentops.reasons import encode_reason, instant_param, reason_text
from contentops.timeutil import (
    AmbiguousTimeError,
    LocalClock,
    NonexistentTimeError,
    parse_local,
    resolve_local,
)

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


# --- resolve_local: wall-clock times around DST changes ------------------------------------

@pytest.mark.parametrize("zone, wall, first_valid, label", [
    # New York springs forward at 02:00 EST -> 03:00 EDT.
    ("America/New_York", datetime(2027, 3, 14, 2, 30), datetime(2027, 3, 14, 7, 0),
     "2027-03-14 03:00 EDT (UTC-4)"),
    ("America/New_York", datetime(2027, 3, 14, 2, 0), datetime(2027, 3, 14, 7, 0),
     "2027-03-14 03:00 EDT (UTC-4)"),
    # London at 01:00 GMT -> 02:00 BST.
    ("Europe/London", datetime(2027, 3, 28, 1, 59), datetime(2027, 3, 28, 1, 0),
     "2027-03-28 02:00 BST (UTC+1)"),
    # Lord Howe moves by half an hour, 02:00 -> 02:30 (+10:30 -> +11); no abbreviation.
    ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 15), datetime(2027, 10, 2, 15, 30),
     "2027-10-03 02:30 (UTC+11)"),
])
def test_a_time_in_a_gap_is_refused_with_the_first_valid_time(zone, wall, first_valid, label):
    for fold in (None, 0, 1):  # a chosen occurrence does not make a skipped time exist
        with pytest.raises(NonexistentTimeError) as caught:
            resolve_local(wall, zone, fold)
        exc = caught.value
        assert exc.first_valid.astimezone(UTC) == first_valid.replace(tzinfo=UTC)
        assert exc.params["first_valid"] == label
        assert label in str(exc) and zone in str(exc) and "does not exist" in str(exc)
    # The suggested time itself is accepted as is.
    suggested = exc.first_valid.replace(tzinfo=None)
    assert resolve_local(suggested, zone) == first_valid.replace(tzinfo=UTC)


@pytest.mark.parametrize("zone, wall, first, second, labels", [
    ("America/New_York", datetime(2027, 11, 7, 1, 30), datetime(2027, 11, 7, 5, 30),
     datetime(2027, 11, 7, 6, 30), ("01:30 EDT (UTC-4)", "01:30 EST (UTC-5)")),
    ("Europe/London", datetime(2027, 10, 31, 1, 0), datetime(2027, 10, 31, 0, 0),
     datetime(2027, 10, 31, 1, 0), ("01:00 BST (UTC+1)", "01:00 GMT (UTC+0)")),
    # Lord Howe falls back 02:00 -> 01:30: only half an hour repeats.
    ("Australia/Lord_Howe", datetime(2027, 4, 4, 1, 45), datetime(2027, 4, 3, 14, 45),
     datetime(2027, 4, 3, 15, 15), ("01:45 (UTC+11)", "01:45 (UTC+10:30)")),
])
def test_a_repeated_time_needs_a_fold(zone, wall, first, second, labels):
    with pytest.raises(AmbiguousTimeError) as caught:
        resolve_local(wall, zone)
    exc = caught.value
    assert f"{labels[0]} or {labels[1]}" in str(exc)
    assert exc.choices() == [(0, labels[0]), (1, labels[1])]
    assert resolve_local(wall, zone, fold=0) == first.replace(tzinfo=UTC)
    assert resolve_local(wall, zone, fold=1) == second.replace(tzinfo=UTC)
    # The same through the text a form sends.
    assert parse_local(wall.isoformat(timespec="minutes"), zone, 1) == second.replace(tzinfo=UTC)


@pytest.mark.parametrize("zone, wall, utc", [
    ("America/New_York", datetime(2027, 3, 14, 1, 59), datetime(2027, 3, 14, 6, 59)),
    ("America/New_York", datetime(2027, 3, 14, 3, 0), datetime(2027, 3, 14, 7, 0)),
    ("America/New_York", datetime(2027, 11, 7, 2, 0), datetime(2027, 11, 7, 7, 0)),
    ("America/New_York", datetime(2027, 11, 7, 0, 59), datetime(2027, 11, 7, 4, 59)),
    ("Australia/Lord_Howe", datetime(2027, 4, 4, 2, 0), datetime(2027, 4, 3, 15, 30)),
    ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 30), datetime(2027, 10, 2, 15, 30)),
    ("Asia/Shanghai", datetime(2027, 11, 11, 20, 0), datetime(2027, 11, 11, 12, 0)),
])
def test_ordinary_times_resolve_whatever_the_fold(zone, wall, utc):
    for fold in (None, 0, 1):
        assert resolve_local(wall, zone, fold) == utc.replace(tzinfo=UTC)


def test_every_minute_of_transition_days_is_classified_as_zoneinfo_does():
    """Gap iff the round trip changes the time; repeated iff the folds' offsets differ."""
    for zone_name, day in (("America/New_York", (2027, 3, 14)), ("America/New_York",
                           (2027, 11, 7)), ("Australia/Lord_Howe", (2027, 4, 4)),
                           ("Australia/Lord_Howe", (2027, 10, 3))):
        kinds = {"gap": 0, "twice": 0}
        for minute in range(24 * 60):
            wall = datetime(*day) + timedelta(minutes=minute)
            try:
                resolve_local(wall, zone_name)
            except NonexistentTimeError:
                kinds["gap"] += 1
            except AmbiguousTimeError:
                kinds["twice"] += 1
        expected = 60 if "New_York" in zone_name else 30
        assert kinds == ({"gap": expected, "twice": 0} if day[1] in (3, 10)
                         else {"gap": 0, "twice": expected}), zone_name


def test_resolve_local_refuses_aware_times_and_bad_folds():
    with pytest.raises(ValueError):
        resolve_local(datetime(2027, 1, 1, tzinfo=UTC), "UTC")
    with pytest.raises(ValueError):
        resolve_local(datetime(2027, 1, 1), "UTC", fold=2)


def test_an_offset_in_the_text_is_an_instant_never_ambiguous():
    assert parse_local("2027-11-07T01:30:00-05:00", "America/New_York") == datetime(
        2027, 11, 7, 6, 30, tzinfo=UTC)


# --- instants in stored reasons ------------------------------------------------------------

def test_instant_params_are_written_by_the_reader_and_in_utc_without_one():
    moment = datetime(2027, 3, 14, 7, 0, tzinfo=UTC)
    stored = encode_reason("Due at %(time)s.", {"time": instant_param(moment)})
    assert '"instant": "2027-03-14T07:00:00Z"' in stored
    assert reason_text(stored) == "Due at 2027-03-14 07:00 UTC."
    seen = []

    def in_new_york(value):
        seen.append(value)
        return value.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")

    assert reason_text(stored, instant=in_new_york) == "Due at 03:00."
    assert seen == [moment]
    # Plain text params (reasons stored before instants were typed) stay as they were.
    legacy = encode_reason("Due at %(time)s.", {"time": "2027-03-14T07:00:00Z"})
    assert reason_text(legacy, instant=in_new_york) == "Due at 2027-03-14T07:00:00Z."
