"""UTC storage, viewer-zone display (invariant 4). No Flask here."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


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


def parse_local(value: str, tz_name: str) -> datetime:
    """Parse a wall-clock time entered in a zone (e.g. a form's datetime-local) into UTC."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz_name))
    return parsed.astimezone(UTC)


def to_zone(value: datetime | None, tz_name: str) -> datetime | None:
    if value is None:
        return None
    return as_utc(value).astimezone(ZoneInfo(tz_name))


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")
