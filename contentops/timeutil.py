"""UTC storage, viewer-zone display (invariant 4). No Flask here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .errors import N_, ValidationError


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    return value.astimezone(UTC)


def is_valid_timezone(name: str) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone_choices() -> list[str]:
    return sorted(available_timezones())


def parse_iso(value: str) -> datetime:
    """Parse ISO 8601 *with* an offset; 'Z' accepted. Raises ValueError otherwise."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("missing UTC offset")
    return parsed.astimezone(UTC)


def parse_local(value: str, tz_name: str, fold: int | None = None) -> datetime:
    """Parse a wall-clock time entered in a zone (e.g. a form's datetime-local) into UTC.

    A text with an offset is an instant and is taken as is. A wall-clock time goes through
    resolve_local, so a time the zone skips or repeats raises a WallClockError.
    """
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return resolve_local(parsed, tz_name, fold)


# --- wall-clock times around DST changes -----------------------------------------------------
#
# Policy (the same for the forms and the API):
# - A time in a gap (02:30 on the night New York springs forward) never happens. It is
#   refused, never silently moved: a post shifted by an hour would go out at a time nobody
#   chose. The message names the first valid time after the gap so the fix is one edit.
# - A time that happens twice (01:30 on the night New York falls back) is refused unless the
#   caller says which occurrence: fold=0 is the first (still on summer time), fold=1 the
#   second, as in PEP 495. Guessing would put the post an hour early or late half the time.
# - fold is ignored for every other time, so a form or client may always send it.
# - A text with a UTC offset is an instant, never ambiguous; nothing here applies to it.


class WallClockError(Exception):
    """A wall-clock time the zone skips or repeats. `message` is a msgid, `params` its values."""

    message: str = ""

    def __init__(self, naive: datetime, zone: str, params: dict[str, Any]) -> None:
        super().__init__(self.message % params)
        self.naive = naive
        self.zone = zone
        self.params = params

    def as_validation_error(self, field: str = "scheduled_at") -> ValidationError:
        return ValidationError({field: [self.message]}, params=self.params)


class NonexistentTimeError(WallClockError):
    message = N_("%(time)s does not exist in %(zone)s: the clocks go forward then. The first "
                 "valid time after the gap is %(first_valid)s.")

    def __init__(self, naive: datetime, zone: str, first_valid: datetime) -> None:
        self.first_valid = first_valid  # aware, in the zone
        super().__init__(naive, zone, {
            "time": _wall_text(naive), "zone": zone,
            "first_valid": f"{_wall_text(first_valid)} {offset_label(first_valid)}"})


class AmbiguousTimeError(WallClockError):
    message = N_("%(time)s happens twice in %(zone)s as the clocks go back: %(earlier)s or "
                 "%(later)s. Choose which one.")

    def __init__(self, naive: datetime, zone: str, earlier: datetime, later: datetime) -> None:
        self.earlier, self.later = earlier, later  # aware, in the zone; fold 0 and fold 1
        super().__init__(naive, zone, {
            "time": _wall_text(naive), "zone": zone,
            "earlier": occurrence_label(earlier), "later": occurrence_label(later)})

    def choices(self) -> list[tuple[int, str]]:
        """(fold, label) for a form's choice of occurrence."""
        return [(0, occurrence_label(self.earlier)), (1, occurrence_label(self.later))]


def _wall_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M" if not value.second else "%Y-%m-%d %H:%M:%S")


def offset_label(value: datetime) -> str:
    """'EDT (UTC-4)', 'GMT (UTC+0)', '(UTC+10:30)': the zone's abbreviation when it has a
    real one (Lord Howe's is just '+11'), then the offset."""
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    utc = f"UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")
    abbr = value.tzname() or ""
    return f"{abbr} ({utc})" if abbr and abbr[0] not in "+-" else f"({utc})"


def occurrence_label(value: datetime) -> str:
    """'01:30 EDT (UTC-4)': one occurrence of a repeated wall-clock time."""
    return f"{value.strftime('%H:%M')} {offset_label(value)}"


def resolve_local(naive: datetime, tz: str | ZoneInfo, fold: int | None = None) -> datetime:
    """A wall-clock time in a zone as an aware UTC datetime, refusing what DST makes unclear.

    Raises NonexistentTimeError for a time in a gap and AmbiguousTimeError for a repeated
    time when `fold` (0: first occurrence, 1: second) is not given. See the policy above.
    """
    if naive.tzinfo is not None:
        raise ValueError("resolve_local takes a wall-clock (naive) time")
    if fold not in (None, 0, 1):
        raise ValueError("fold must be 0 or 1")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    name = str(zone.key) if getattr(zone, "key", None) else str(tz)
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    # A skipped time does not survive the round trip through UTC (02:30 comes back 03:30).
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise NonexistentTimeError(naive, name, _gap_end(first, second, zone))
    if first.utcoffset() != second.utcoffset():
        if fold is None:
            raise AmbiguousTimeError(naive, name, first, second)
        return (second if fold else first).astimezone(UTC)
    return first.astimezone(UTC)


def _gap_end(first: datetime, second: datetime, zone: ZoneInfo) -> datetime:
    """The first valid local time after the gap that `first`/`second` fall into.

    In a gap, fold=0 reads the time with the offset from before the change and fold=1 with
    the one after, so the change itself lies between the two UTC readings: bisect to the
    second (changes are on whole minutes, but nothing here depends on it).
    """
    low = int(min(first.timestamp(), second.timestamp()))  # before the change
    high = int(max(first.timestamp(), second.timestamp()))  # at or after it
    after = datetime.fromtimestamp(high, zone).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == after:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, zone)


def to_zone(value: datetime | None, tz_name: str) -> datetime | None:
    if value is None:
        return None
    return as_utc(value).astimezone(ZoneInfo(tz_name))


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


class LocalClock:
    """Epoch seconds -> ISO 8601 local time with offset in one zone, fast for many values.

    A zone's offset is the same all through a UTC day except on the day of a transition,
    so each day's offset is looked up once and the text is built with integer arithmetic;
    days with a transition take the exact (slower) path.
    """

    def __init__(self, tz_name: str) -> None:
        self.zone = ZoneInfo(tz_name)
        self._days: dict[int, tuple[int, str] | None] = {}
        self._dates: dict[int, str] = {}

    def isoformat(self, epoch: int) -> str:
        day = epoch // 86400
        try:
            parts = self._days[day]
        except KeyError:
            parts = self._days[day] = self._day(day)
        if parts is None:
            return datetime.fromtimestamp(epoch, self.zone).isoformat()
        local_day, seconds = divmod(epoch + parts[0], 86400)
        try:
            date_text = self._dates[local_day]
        except KeyError:
            date_text = self._dates[local_day] = date.fromordinal(_EPOCH_ORDINAL + local_day
                                                                  ).isoformat() + "T"
        # Concatenating pre-formatted pieces is ~3x faster than an f-string with formats.
        return date_text + _HH_MM[seconds // 60] + _SS[seconds % 60] + parts[1]

    def _day(self, day: int) -> tuple[int, str] | None:
        first = datetime.fromtimestamp(day * 86400, self.zone)
        last = datetime.fromtimestamp(day * 86400 + 86399, self.zone)
        offset = first.utcoffset()
        if offset is None or offset != last.utcoffset():
            return None
        text = first.isoformat()
        return int(offset.total_seconds()), text[19:]  # e.g. 28800, "+08:00"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HH_MM = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SS = [f"{s:02d}" for s in range(60)]
