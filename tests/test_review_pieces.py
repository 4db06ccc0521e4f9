"""Review inside the pieces area: invariant 1 through the real editor service, the review
panel on the piece page, and live checks in the editor (browser)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contentops.services import content, review
from contentops.timeutil import utcnow

from .builders import Make


def _data(make: Make, ch, **extra):
    audience, style = (make.audience(), make.style())
    return {"title": "周末会员日", "body": "全场**八折**。", "audience_id": audience.id,
            "style_id": style.id, "channel_ids": [ch.id], **extra}


def test_invariant_1_through_the_editor_service(db, make):
    editor, approver = make.user("editor"), make.user("approver")
    ch = make.channel(name="Team hook")
    now = utcnow()
    when = now + timedelta(hours=3)
    piece = content.create_piece(db.session, _data(make, ch, scheduled_at=when.isoformat()),
                                 author=editor, now=now).piece
    review.submit(db.session, piece, editor, now)
    review.approve(db.session, piece, approver, now, version=1)
    db.session.commit()
    post = piece.posts[0]
    assert post.status == "scheduled" and make.claimable_ids() == {post.id}

    content.update_piece(db.session, piece, {"body": "全场**七折**。"}, actor=editor, now=now)
    db.session.commit()
    assert piece.version == 2 and piece.status == "draft" and post.hold is not None
    assert make.claimable_ids() == set()
    # A change that readers do not see (tags) makes no new version and keeps nothing held
    # twice; re-approval of version 2 releases the post.
    review.submit(db.session, piece, editor, now)
    with pytest.raises(review.StaleVersion):
        review.approve(db.session, piece, approver, now, version=1)
    review.approve(db.session, piece, approver, now, version=2)
    db.session.commit()
    db.session.refresh(post)
    assert post.hold is None and make.claimable_ids() == {post.id}


def test_panel_on_the_piece_page(app, db, make, login):
    editor = make.user("editor")
    ch = make.channel(name="Team hook")
    piece = content.create_piece(db.session, _data(make, ch, title="全网第一的福利"), author=editor,
                                 now=utcnow()).piece
    db.session.commit()
    client = app.test_client()
    login(editor, client)
    page = client.get(f"/pieces/{piece.id}").get_data(as_text=True)
    assert 'id="review-panel"' in page and 'data-testid="panel-findings"' in page
    assert "全网第一" in page
    edit_page = client.get(f"/pieces/{piece.id}/edit").get_data(as_text=True)
    assert 'id="compliance-checks"' in edit_page and "js/review.js" in edit_page


@pytest.mark.browser
def test_live_checks_in_the_editor(db, make, page, live_server, browser_login):
    editor = make.user("editor")
    ch = make.channel(name="Team hook")
    piece = content.create_piece(db.session, _data(make, ch), author=editor, now=utcnow()).piece
    db.session.commit()
    browser_login(editor)
    page.goto(f"{live_server.url}/pieces/{piece.id}/edit")
    box = page.locator("#compliance-checks")
    page.wait_for_selector('#compliance-checks[data-checked]:not([data-checked=""])',
                           state="attached")
    assert box.locator("[data-finding]").count() == 0
    page.fill("input[name=title]", "史无前例的会员日")
    page.locator("#compliance-checks [data-finding=ad_law_term]").wait_for()
    assert "史无前例" in box.inner_text()
    assert box.locator("[data-count=errors]").inner_text() == "1"
    page.fill("textarea[name=body]", "详见 http://example.com")
    page.locator("#compliance-checks [data-finding=insecure_link]").wait_for()
    page.fill("input[name=title]", "会员日")
    page.locator("#compliance-checks [data-finding=ad_law_term]").wait_for(state="detached")
