"""The review flow in a real browser: badge, queue, approve, comment, both languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from contentops.services import review
from contentops.timeutil import utcnow

from .builders import NOW, Make

TOMORROW = NOW + timedelta(days=1)


def piece_of(make: Make, author, *, when=TOMORROW, title="秋季新品上市",
             body="欢迎来店里看看。", **kwargs):
    """A draft piece by `author`, its posts scheduled (tomorrow unless said)."""
    return make.piece(author=author, when=when, title=title, body=body, **kwargs)


pytestmark = pytest.mark.browser


def test_approver_reviews_from_the_queue(db, make, page, live_server, browser_login):
    editor = make.user("editor", name="Lin")
    approver = make.user("approver", name="Wang")
    piece = piece_of(make, editor, title="双11 会员预告", body="全场**八折**，仅限会员。")
    review.submit(db.session, piece, editor, utcnow() - timedelta(minutes=90))
    db.session.commit()

    browser_login(approver)
    assert page.locator("#review-badge").inner_text() == "1"
    assert page.locator("[data-testid=unread-count]").inner_text() == "1"
    page.click("nav >> text=Review")
    row = page.locator("#review-queue tbody tr")
    assert row.count() == 1 and "双11 会员预告" in row.inner_text()
    assert re.search(r"(1 hour|90 minutes|2 hours)", row.inner_text())
    row.locator("text=Review").last.click()
    page.wait_for_url(f"**/review/pieces/{piece.id}")
    assert "<strong>八折</strong>" in page.locator(".channel-preview").first.inner_html()

    page.fill("#review-comments textarea[name=body]", "@Lin 价格确认过了")
    page.click("#review-comments button:has-text('Comment')")
    assert "价格确认过了" in page.locator("#review-comments").inner_text()

    page.fill("form.review-action input[name=comment]", "可以发")
    page.click("[data-action=approve]")
    assert page.locator("[data-testid=review-status]").inner_text() == "Approved"
    assert page.locator("#review-badge").count() == 0
    assert "approved it" in page.locator("#review-history").inner_text()

    page.click("button[name=lang][value=zh]")
    assert page.locator("[data-testid=review-status]").inner_text() in ("已批准", "已通过")
    assert "批准了" in page.locator("#review-history").inner_text()
