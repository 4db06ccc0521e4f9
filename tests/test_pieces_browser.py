"""The piece editor in a real browser: live preview, creating a piece, payloads that stay inert."""

from __future__ import annotations

import pytest

from contentops.models import ContentPiece
from contentops.services import content as content_service

from .pieces_helpers import NOW, make_taxonomy, piece_data
from .xss_corpus import PAYLOADS

pytestmark = pytest.mark.browser


def _watch_dialogs(page) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog) -> None:
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired


def test_live_preview_and_create(db, make_user, page, live_server, browser_login):
    t = make_taxonomy(db.session)
    editor = make_user("editor")
    fired = _watch_dialogs(page)
    browser_login(editor)
    page.goto(f"{live_server.url}/pieces/new?date=2030-05-04&time=10:15")
    assert page.input_value("input[name=scheduled_at]") == "2030-05-04T10:15"

    page.fill("input[name=title]", "会员日预告")
    page.locator("textarea[name=body]").press_sequentially(
        "Hello **会员** <img src=x onerror=alert(1)>", delay=5)
    preview = page.locator("#body-preview")
    preview.locator("strong").wait_for()
    assert preview.locator("strong").inner_text() == "会员"
    # The tag is shown as text, never turned into an element.
    assert preview.locator("img").count() == 0
    assert "<img src=x" in preview.inner_text()

    page.select_option("select[name=audience_id]", str(t.audience.id))
    page.select_option("select[name=style_id]", str(t.style.id))
    page.check(f"#channel-{t.web.id}")
    page.fill("input[name=tags]", "会员日, 预告")
    page.click("button[type=submit]:has-text('Create piece')")
    page.wait_for_url("**/pieces/*")
    assert page.locator("[data-piece-title]").inner_text() == "会员日预告"
    assert page.locator("[data-piece-body] strong").inner_text() == "会员"
    piece = db.session.query(ContentPiece).one()
    assert [p.channel_id for p in piece.posts] == [t.web.id]
    assert piece.posts[0].status == "scheduled"
    assert fired == []


def test_editor_shows_errors_next_to_fields(db, make_user, page, live_server, browser_login):
    make_taxonomy(db.session)
    browser_login(make_user("editor"))
    page.goto(f"{live_server.url}/pieces/new")
    page.click("button[type=submit]:has-text('Create piece')")
    for name in ("title", "body", "audience_id", "style_id", "channel_ids"):
        assert page.locator(f"[data-field-error={name}]").count() >= 1, name
    assert db.session.query(ContentPiece).count() == 0


def test_payloads_never_run_in_the_browser(db, make_user, page, live_server, browser_login):
    t = make_taxonomy(db.session)
    editor = make_user("editor")
    ids = []
    for payload in PAYLOADS:
        result = content_service.create_piece(db.session, piece_data(
            t, title=payload[:200], body=payload, summary=payload[:500], tags=[payload[:50]],
            variants={str(t.web.id): {"title": payload[:200], "body": payload}}),
            author=editor, now=NOW)
        ids.append(result.piece.id)
    db.session.commit()
    fired = _watch_dialogs(page)
    browser_login(editor)
    page.goto(f"{live_server.url}/pieces/?per_page=100")
    assert page.locator("[data-piece-id]").count() == len(PAYLOADS)
    for piece_id in ids[::7]:
        page.goto(f"{live_server.url}/pieces/{piece_id}")
        page.goto(f"{live_server.url}/pieces/{piece_id}/edit")
    page.wait_for_timeout(300)
    assert fired == []
    assert page.evaluate("typeof window.XSS") == "undefined"
