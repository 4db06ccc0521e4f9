"""Template formatting (web/formatting.py) gives exactly what Flask-Babel gives, faster."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import flask_babel
import pytest
from flask_babel import force_locale

from contentops.web import formatting


@pytest.fixture
def request_in(app, make_user):
    def enter(locale: str, tz: str):
        user = make_user("viewer")
        user.locale, user.timezone = locale, tz
        from contentops.extensions import db

        db.session.commit()
        ctx = app.test_request_context("/", headers={"Accept-Language": locale})
        ctx.push()
        from flask_login import login_user

        login_user(user)
        flask_babel.refresh()
        return ctx
    return enter


@pytest.mark.parametrize("locale, tz", [("en", "America/New_York"), ("zh", "Asia/Shanghai")])
def test_same_text_as_flask_babel(request_in, locale, tz):
    ctx = request_in(locale, tz)
    try:
        assert str(flask_babel.get_locale()).startswith(locale)
        rnd = random.Random(7)
        numbers = [0, 7, 999, 1000, -1000, 1234567, -98765432, 10**12, 3.5, 1234.5678]
        numbers += [rnd.randrange(-10**9, 10**9) for _ in range(300)]
        for n in numbers:
            assert formatting.format_number(n) == flask_babel.format_decimal(n)
        for p in (0, 0.1234, 1.5, 0.00049):
            assert formatting.format_percent(p) == flask_babel.format_percent(p, "#,##0.0%")
        # Around the New York DST change too.
        start = datetime(2027, 3, 13, 12, 0, tzinfo=UTC)
        for hours in range(0, 72, 5):
            when = start + timedelta(hours=hours, minutes=17)
            for fmt in ("short", "medium"):
                assert formatting.format_datetime(when, fmt) == \
                    flask_babel.format_datetime(when, fmt)
                assert formatting.format_date(when, fmt) == flask_babel.format_date(when, fmt)
        assert formatting.format_number(None) == formatting.format_datetime(None) == ""
    finally:
        ctx.pop()


def test_force_locale_inside_a_request_is_respected(request_in):
    ctx = request_in("en", "UTC")
    try:
        when = datetime(2027, 2, 3, 9, 0, tzinfo=UTC)
        english = formatting.format_datetime(when, "medium")
        with force_locale("zh"):
            chinese = formatting.format_datetime(when, "medium")
            assert chinese == flask_babel.format_datetime(when, "medium")
        assert english == flask_babel.format_datetime(when, "medium") != chinese
        assert "2027" in chinese and "年" in chinese
    finally:
        ctx.pop()
