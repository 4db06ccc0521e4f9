"""In a real browser: a visitor likes and comments on a public page; an editor approves the
comment and sees the like, the comment and the read on the post list."""

from __future__ import annotations

import pytest

from .feedback_fixtures import make_post

pytestmark = pytest.mark.browser


def test_like_and_comment_on_a_public_page_show_on_the_post_list(
        app, db, make_user, page, live_server, browser_login, browser):
    post = make_post(db.session, title="双11 早鸟攻略", slug="early-bird")
    db.session.commit()
    post_id = post.id

    # A visitor in their own browser context (no staff session).
    visitor = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    vpage = visitor.new_page()
    vpage.set_default_timeout(10_000)
    with vpage.expect_response(lambda r: r.url.endswith("/p/early-bird/read")):
        vpage.goto(f"{live_server.url}/p/early-bird")
    vpage.click("#feedback [data-feedback=like]")
    vpage.wait_for_selector("#feedback [data-feedback=unlike]")
    assert vpage.inner_text("#feedback [data-feedback=likes]") == "1"
    vpage.fill("#fb-author", "小红")
    vpage.fill("#fb-text", "收藏了，周末就去买！")
    vpage.click(".co-comment-form button")
    vpage.wait_for_selector("#feedback .alert-success")
    # Not shown before a moderator approves it.
    assert "收藏了" not in vpage.inner_text("#feedback [data-feedback=comments]")
    visitor.close()

    browser_login(make_user("editor"))
    page.goto(f"{live_server.url}/feedback/comments")
    page.click("[data-comment-id] button.btn-success")
    page.wait_for_selector("text=Nothing here.")

    page.goto(f"{live_server.url}/posts/?sort=-likes")
    row = page.locator(f"tr[data-post='{post_id}']")
    assert row.locator("td[data-metric=likes]").inner_text().strip() == "1"
    assert row.locator("td[data-metric=comments]").inner_text().strip() == "1"
    assert row.locator("td[data-metric=reads]").inner_text().strip().startswith("1")

    # And the approved comment is on the public page now.
    page.goto(f"{live_server.url}/p/early-bird")
    assert "收藏了，周末就去买！" in page.inner_text("#feedback [data-feedback=comments]")
