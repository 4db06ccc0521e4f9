"""Marketing observances are computed for any year, lunar ones from the Chinese calendar."""

from __future__ import annotations

from datetime import date

import pytest

from contentops.services import observances as obs

# Published calendar dates, checked against the Chinese calendar of each year.
LUNAR = {
    2024: {"spring_festival": date(2024, 2, 10), "lantern": date(2024, 2, 24),
           "qixi": date(2024, 8, 10), "mid_autumn": date(2024, 9, 17)},
    2025: {"spring_festival": date(2025, 1, 29), "lantern": date(2025, 2, 12),
           "qixi": date(2025, 8, 29), "mid_autumn": date(2025, 10, 6)},
    2026: {"spring_festival": date(2026, 2, 17), "lantern": date(2026, 3, 3),
           "qixi": date(2026, 8, 19), "mid_autumn": date(2026, 9, 25)},
    2027: {"spring_festival": date(2027, 2, 6), "lantern": date(2027, 2, 20),
           "qixi": date(2027, 8, 8), "mid_autumn": date(2027, 9, 15)},
    2030: {"spring_festival": date(2030, 2, 3), "mid_autumn": date(2030, 9, 12)},
}
BLACK_FRIDAY = {2024: date(2024, 11, 29), 2025: date(2025, 11, 28), 2026: date(2026, 11, 27),
                2027: date(2027, 11, 26), 2030: date(2030, 11, 29)}


@pytest.mark.parametrize("year", sorted(LUNAR))
def test_lunar_festivals_and_rule_based_days(year):
    found = {o.key: o for o in obs.observances_for_year(year)}
    for key, expected in LUNAR[year].items():
        assert found[key].start == expected == found[key].end, key
    assert found["black_friday"].start == BLACK_FRIDAY[year]
    assert found["black_friday"].start.weekday() == 4
    fixed = {"valentines": (2, 14), "womens_day": (3, 8), "520": (5, 20), "618": (6, 18),
             "double11": (11, 11), "double12": (12, 12), "christmas": (12, 25)}
    for key, (month, day) in fixed.items():
        assert found[key].start == date(year, month, day), key
    assert (found["national_day"].start, found["national_day"].end) == \
        (date(year, 10, 1), date(year, 10, 7))
    # 年货节 runs from 腊八 to 小年, ending before the Spring Festival.
    goods = found["new_year_goods"]
    assert goods.start < goods.end < found["spring_festival"].start
    assert (goods.end - goods.start).days == 15
    assert set(found) == set(obs.KEYS)


def test_new_year_goods_dates_2026():
    (goods,) = obs.observances_for_year(2026, ["new_year_goods"])
    assert (goods.start, goods.end) == (date(2026, 1, 26), date(2026, 2, 10))


def test_toggles_and_ranges():
    only = obs.observances_for_year(2026, ["double11", "qixi"])
    assert [o.key for o in only] == ["qixi", "double11"]
    span = obs.observances_between(date(2026, 12, 1), date(2027, 2, 20))
    keys = [o.key for o in span]
    assert keys == ["double12", "christmas", "new_year_goods", "spring_festival",
                    "valentines"]
    # A range ending on a day excludes it; the golden week overlaps a range inside it.
    assert [o.key for o in obs.observances_between(date(2026, 10, 3), date(2026, 10, 4))] == \
        ["national_day"]
    assert obs.observances_between(date(2026, 2, 14), date(2026, 2, 14)) == []


def test_years_beyond_the_lunar_tables_keep_the_solar_days():
    keys = {o.key for o in obs.observances_for_year(2100)}
    assert "double11" in keys and "christmas" in keys
    assert "spring_festival" not in keys
