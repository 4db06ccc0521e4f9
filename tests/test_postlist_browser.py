"""The post list in a real browser: filter, sort by a metric, page; usable on a phone."""

from __future__ import annotations

import pytest

from .test_postlist import seed

pytestmark = pytest.mark.browser


def test_filter_sort_and_page_in_the_browser(page, live_server, browser_login, make_user, db):
    data = seed(db, make_user("editor"), n=60)
    browser_login(make_user("viewer"))
    page.goto(f"{live_server.url}/posts/")
    assert page.locator("tbody tr").count() == 50
    # Sort by reads: first click sorts biggest first.
    page.click("a[data-sort-key=reads]")
    page.wait_for_url("**sort=-reads**")
    reads = [int(t.replace(",", "")) for t in page.locator("td[data-metric=reads]")
             .all_inner_texts()]
    assert reads == sorted(reads, reverse=True)
    assert reads[0] == max(p.reads for p in data["posts"])
    # Filter by channel and state; the sort is kept.
    blog = data["channels"][0]
    page.select_option("#f-channel_id", str(blog.id))
    page.select_option("#f-status", "published")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**channel_id=**")
    assert "sort=-reads" in page.url
    rows = page.locator("tbody tr")
    expected = sum(1 for p in data["posts"] if p.channel_id == blog.id
                   and p.status == "published")
    assert rows.count() == expected
    assert set(page.locator("[data-status]").all_inner_texts()) == {"Published"}
    # Clearing shows everything again, over two pages.
    page.click("text=Clear")
    page.wait_for_url(f"{live_server.url}/posts/")
    page.click("a[rel=next]")
    page.wait_for_url("**page=2**")
    assert page.locator("tbody tr").count() == 10


def test_post_list_fits_a_phone(browser, live_server, make_user, db):
    seed(db, make_user("editor"))
    user = make_user("viewer")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    phone = context.new_page()
    try:
        phone.goto(f"{live_server.url}/login")
        phone.fill("input[name=email]", user.email)
        from .conftest import PASSWORD

        phone.fill("input[name=password]", PASSWORD)
        phone.click("button[type=submit]")
        phone.wait_for_url(lambda url: "/login" not in url)
        phone.goto(f"{live_server.url}/posts/")
        assert phone.locator("h1").inner_text() == "发布"
        # The page itself does not scroll sideways; the table scrolls inside its card.
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        assert phone.locator("th:has-text('阅读')").is_visible()
        assert not phone.locator("th:has-text('受众')").is_visible()  # secondary column hidden
    finally:
        context.close()
