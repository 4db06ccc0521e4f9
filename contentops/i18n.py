"""Locale and time-zone selection, and helpers for translating domain messages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel import dates
from flask import current_app, request
from flask_babel import get_locale, gettext
from flask_login import current_user

from .errors import DomainError, ValidationError

LOCALE_COOKIE = "contentops_lang"


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    cookie = request.cookies.get(LOCALE_COOKIE)
    if cookie in languages:
        return cookie
    return request.accept_languages.best_match(languages) or "en"


def select_timezone() -> str:
    if getattr(current_user, "is_authenticated", False) and current_user.timezone:
        return current_user.timezone
    return current_app.config["CONTENTOPS_TIMEZONE"]


def translate(message: str, params: dict | None = None) -> str:
    """Translate a domain msgid (marked with N_) and fill its %(name)s params."""
    text = gettext(message)
    if params:
        try:
            return text % params
        except (KeyError, ValueError, TypeError):
            return text
    return text


def error_message(exc: DomainError) -> str:
    return translate(exc.message, exc.params)


def error_fields(exc: DomainError) -> dict[str, list[str]]:
    if not isinstance(exc, ValidationError):
        return {}
    return {name: [translate(m, exc.params) for m in msgs] for name, msgs in exc.fields.items()}


def format_datetime_in(value: datetime, tz_name: str, fmt: str = "medium") -> str:
    """A time in a given zone (e.g. an API caller's own, not the request's), in the
    request's language."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    locale = get_locale() or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    return dates.format_datetime(value, fmt, tzinfo=ZoneInfo(tz_name), locale=locale)
