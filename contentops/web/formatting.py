"""Template filters for times, numbers and labels in the viewer's locale and zone.

Flask-Babel's helpers look the locale and zone up again on every call; a post list page
formats a few hundred values, so the lookups are done once per request (kept on `g`) and
Babel is called directly with them. Whole numbers, the bulk of a metrics table, take a
plain `format(n, ",")` where that is what the locale's pattern gives (checked once per
locale against Babel itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from babel import Locale, dates, numbers
from flask import Flask, current_app, g
from flask_babel import get_locale, get_timezone, gettext

_PLAIN_GROUPING: dict[str, str | None] = {}


def _grouping_symbol(locale: Locale) -> str | None:
    """The group separator if Babel writes whole numbers as plain thousands groups."""
    key = str(locale)
    if key not in _PLAIN_GROUPING:
        probe = numbers.format_decimal(-1234567890, locale=locale)
        symbol = numbers.get_group_symbol(locale)
        plain = format(-1234567890, ",").replace(",", symbol)
        _PLAIN_GROUPING[key] = symbol if probe == plain else None
    return _PLAIN_GROUPING[key]


@dataclass
class _Request:
    locale: Locale
    tz: Any
    group: str | None
    labels: dict[str, str] = field(default_factory=dict)


def _request() -> _Request:
    locale = get_locale() or Locale.parse(current_app.config.get("BABEL_DEFAULT_LOCALE", "en"))
    ctx = g.get("_formatting")
    # Checked against the current locale: force_locale() can switch it inside a request.
    if ctx is None or ctx.locale is not locale:
        ctx = g._formatting = _Request(locale, get_timezone(), _grouping_symbol(locale))
    return ctx


def format_datetime(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    ctx = _request()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return dates.format_datetime(value, fmt, tzinfo=ctx.tz, locale=ctx.locale)


def format_date(value: date | datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    ctx = _request()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(ctx.tz)
    return dates.format_date(value, fmt, locale=ctx.locale)


def format_number(value: Any) -> str:
    if value is None:
        return ""
    ctx = _request()
    if type(value) is int and ctx.group is not None:
        return format(value, ",") if ctx.group == "," else format(value, ",").replace(
            ",", ctx.group)
    return numbers.format_decimal(value, locale=ctx.locale)


def format_percent(value: Any) -> str:
    if value is None:
        return ""
    return numbers.format_percent(value, "#,##0.0%", locale=_request().locale)


def label(table: dict[str, str], key: str | None) -> str:
    """A translated label from one of the labels tables, memoised for the request."""
    if key not in table:
        return key or ""
    memo = _request().labels
    text = memo.get(table[key])
    if text is None:
        text = memo[table[key]] = gettext(table[key])
    return text


def register(app: Flask) -> None:
    app.add_template_filter(format_datetime, "dt")
    app.add_template_filter(format_date, "format_date")
    app.add_template_filter(format_number, "format_number")
    app.add_template_filter(format_percent, "format_percent")
