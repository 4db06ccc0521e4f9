"""Marketing observances: Chinese festivals, e-commerce days and a few international ones.

Every date is computed for the asked year — lunar festivals through `lunardate` (the Chinese
calendar tables it maintains cover 1900–2099), solar ones by rule — so nothing here is a
hard-coded table of years. Names are msgids; the web layer translates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from lunardate import LunarDate

from ..errors import N_


@dataclass(frozen=True)
class Observance:
    key: str
    name: str  # msgid
    start: date
    end: date  # inclusive
    kind: str  # festival | ecommerce | international
    color: str


def _lunar(year: int, month: int, day: int) -> date | None:
    try:
        return LunarDate(year, month, day).to_solar_date()
    except ValueError:  # outside the library's tables: better no mark than a wrong one
        return None


def _single(day: date | None) -> tuple[date, date] | None:
    return None if day is None else (day, day)


def _fixed(month: int, day: int) -> Callable[[int], tuple[date, date] | None]:
    return lambda year: _single(date(year, month, day))


def _lunar_day(month: int, day: int) -> Callable[[int], tuple[date, date] | None]:
    return lambda year: _single(_lunar(year, month, day))


def _new_year_goods(year: int) -> tuple[date, date] | None:
    # 年货节: the shopping season before the Spring Festival of `year`, from 腊八 (12th lunar
    # month, 8th day) to 小年 (23rd) of the previous lunar year — both fall in Jan/Feb of `year`.
    start, end = _lunar(year - 1, 12, 8), _lunar(year - 1, 12, 23)
    if start is None or end is None:
        return None
    return start, end


def _national_day(year: int) -> tuple[date, date]:
    # 国庆 golden week: 1–7 October.
    return date(year, 10, 1), date(year, 10, 7)


def _black_friday(year: int) -> tuple[date, date]:
    # The day after the fourth Thursday of November.
    first = date(year, 11, 1)
    thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
    friday = thursday + timedelta(days=1)
    return friday, friday


FESTIVAL, ECOMMERCE, INTERNATIONAL = "festival", "ecommerce", "international"

# key, msgid, kind, colour, rule(year) -> (start, end) | None
_RULES: tuple[tuple[str, str, str, str, Callable[[int], tuple[date, date] | None]], ...] = (
    ("new_year_goods", N_("New Year Goods Festival (年货节)"), ECOMMERCE, "#fd7e14",
     _new_year_goods),
    ("valentines", N_("Valentine's Day"), INTERNATIONAL, "#d63384", _fixed(2, 14)),
    ("spring_festival", N_("Spring Festival (春节)"), FESTIVAL, "#dc3545", _lunar_day(1, 1)),
    ("lantern", N_("Lantern Festival (元宵)"), FESTIVAL, "#dc3545", _lunar_day(1, 15)),
    ("womens_day", N_("Women's Day / Goddess Day (妇女节/女神节)"), FESTIVAL, "#d63384",
     _fixed(3, 8)),
    ("520", N_("520 (I love you day)"), ECOMMERCE, "#d63384", _fixed(5, 20)),
    ("618", N_("618 Shopping Festival"), ECOMMERCE, "#fd7e14", _fixed(6, 18)),
    ("qixi", N_("Qixi Festival (七夕)"), FESTIVAL, "#d63384", _lunar_day(7, 7)),
    ("mid_autumn", N_("Mid-Autumn Festival (中秋)"), FESTIVAL, "#dc3545", _lunar_day(8, 15)),
    ("national_day", N_("National Day Golden Week (国庆)"), FESTIVAL, "#dc3545", _national_day),
    ("double11", N_("Singles' Day (双11)"), ECOMMERCE, "#fd7e14", _fixed(11, 11)),
    ("black_friday", N_("Black Friday"), INTERNATIONAL, "#212529", _black_friday),
    ("double12", N_("Double 12 (双12)"), ECOMMERCE, "#fd7e14", _fixed(12, 12)),
    ("christmas", N_("Christmas"), INTERNATIONAL, "#198754", _fixed(12, 25)),
)

KEYS: tuple[str, ...] = tuple(rule[0] for rule in _RULES)
NAMES: dict[str, str] = {rule[0]: rule[1] for rule in _RULES}


def observances_for_year(year: int, enabled: Iterable[str] | None = None) -> list[Observance]:
    """The observances of one Gregorian year, by start date. `enabled` limits the keys."""
    wanted = set(KEYS if enabled is None else enabled)
    out = []
    for key, name, kind, color, rule in _RULES:
        if key not in wanted:
            continue
        span = rule(year)
        if span is not None:
            out.append(Observance(key, name, span[0], span[1], kind, color))
    return sorted(out, key=lambda o: (o.start, o.key))


def observances_between(start: date, end: date, enabled: Iterable[str] | None = None
                        ) -> list[Observance]:
    """Observances overlapping [start, end) (end exclusive, like a calendar view range)."""
    enabled = None if enabled is None else list(enabled)
    found = []
    for year in range(start.year, end.year + 1):
        for item in observances_for_year(year, enabled):
            if item.start < end and item.end >= start:
                found.append(item)
    return found
