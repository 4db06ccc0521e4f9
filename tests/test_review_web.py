"""Review pages and API over HTTP: queue and badge, panel actions, double submits, stale
versions, comments, diff, previews, live checks, reviewer links, settings, notifications."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from contentops.models import AuditEvent, ContentPiece
from contentops.models.review import Approval, Comment, Notification, ReviewLink
from contentops.services import review, users
from contentops.timeutil import utcnow

from .builders import NOW, Make

TOMORROW = NOW + timedelta(days=1)


def piece_of(make: Make, author, *, when=TOMORROW, title="秋季新品上市",
             body="欢迎来店里看看。", **kwargs):
    """A draft piece by `author`, its posts scheduled (tomorrow unless said)."""
    return make.piece(author=author, when=when, title=title, body=body, **kwargs)


@pytest.fixture
def team(make):
    return {"editor": make.user("editor", name="Lin"),
            "approver": make.user("approver", name="Wang"),
            "admin": make.user("admin", name="Boss")}


def as_user(app, login, user):
    client = app.test_client()
    login(user, client)
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def test_queue_page_badge_and_bell(app, db, login, team, make):
    piece = piece_of(make, team["editor"], title="双11 预热")
    review.submit(db.session, piece, team["editor"], utcnow() - timedelta(hours=2))
    db.session.commit()
    client = as_user(app, login, team["approver"])
    page = text(client.get("/review/"))
    assert "双11 预热" in page and "Team hook" in page and "新会员" in page and "亲切" in page
    assert re.search(r'id="review-badge"[^>]*>1<', page)
    assert re.search(r'data-testid="unread-count">1<', page)  # told about the submission
    # Editors have no queue and no badge.
    editor_page = text(as_user(app, login, team["editor"]).get("/notifications/"))
    assert "review-badge" not in editor_page


def test_queue_empty_state_in_chinese(app, login, team):
    client = as_user(app, login, team["approver"])
    client.set_cookie("contentops_lang", "zh")
    page = text(client.get("/review/", headers={"Accept-Language": "zh"}))
    assert 'data-testid="queue-empty"' in page
    assert "审核" in page


def test_panel_approve_and_double_submit_does_nothing_twice(app, db, login, team, make):
    piece = piece_of(make, team["editor"])
    review.submit(db.session, piece, team["editor"], NOW)
    db.session.commit()
    client = as_user(app, login, team["approver"])
    page = text(client.get(f"/review/pieces/{piece.id}"))
    assert 'data-action="approve"' in page and 'data-action="request_changes"' in page
    form = {"state": "in_review", "version": "1", "comment": "OK"}
    first = client.post(f"/review/pieces/{piece.id}/approve", data=form)
    assert first.status_code == 302
    second = client.post(f"/review/pieces/{piece.id}/approve", data=form,
                         follow_redirects=True)
    assert "That was already done." in text(second)
    assert db.session.scalars(select(Approval)).all().__len__() == 1
    assert db.session.get(ContentPiece, piece.id).status == "approved"


def test_self_approval_refused_in_the_page(app, db, login, team, make):
    approver = team["approver"]
    piece = piece_of(make, approver)
    review.submit(db.session, piece, approver, NOW)
    db.session.commit()
    client = as_user(app, login, approver)
    page = text(client.get(f"/review/pieces/{piece.id}"))
    assert 'data-action="approve"' not in page
    response = client.post(f"/review/pieces/{piece.id}/approve",
                           data={"version": "1", "state": "in_review"}, follow_redirects=True)
    assert "You cannot approve your own piece" in text(response)
    assert db.session.get(ContentPiece, piece.id).status == "in_review"


def test_stale_version_shows_what_changed(app, db, login, team, make):
    piece = piece_of(make, team["editor"], title="秋季上新", body="全场八折")
    review.submit(db.session, piece, team["editor"], NOW)
    db.session.commit()
    client = as_user(app, login, team["approver"])
    client.get(f"/review/pieces/{piece.id}")  # the approver opens version 1 …
    make.edit(piece, team["editor"], at=NOW, body="全场七折")  # … the editor saves version 2
    review.submit(db.session, piece, team["editor"], NOW)
    db.session.commit()
    response = client.post(f"/review/pieces/{piece.id}/approve",
                           data={"version": "1", "state": "in_review"})
    assert response.status_code == 409
    page = text(response)
    assert "you saw version 1, it is now version 2" in page
    # Character-level diff: only 八 → 七 is marked.
    assert '<del class="diff-del">八</del><ins class="diff-ins">七</ins>' in page
    assert db.session.get(ContentPiece, piece.id).status == "in_review"


def test_invalid_transition_is_a_clear_message(app, db, login, team, make):
    piece = piece_of(make, team["editor"])
    client = as_user(app, login, team["editor"])
    response = client.post(f"/review/pieces/{piece.id}/withdraw", follow_redirects=True)
    assert "is not possible while the piece is Draft" in text(response)


def test_submit_blocked_by_compliance_in_the_page(app, db, login, team, make):
    piece = piece_of(make, team["editor"], title="全网第一的口红")
    client = as_user(app, login, team["editor"])
    page = text(client.get(f"/review/pieces/{piece.id}"))
    assert "全网第一" in page and "disabled" in page
    response = client.post(f"/review/pieces/{piece.id}/submit", data={"state": "draft"},
                           follow_redirects=True)
    assert "block submission" in text(response)
    assert db.session.get(ContentPiece, piece.id).status == "draft"
    admin = as_user(app, login, team["admin"])
    admin.post(f"/review/pieces/{piece.id}/submit",
               data={"state": "draft", "override_reason": "品牌注册商标含此词"})
    assert db.session.get(ContentPiece, piece.id).status == "in_review"


def test_comments_are_threaded_sanitised_and_deduplicated(app, db, login, team, make):
    piece = piece_of(make, team["editor"])
    client = as_user(app, login, team["approver"])
    data = {"body": "<script>alert(1)</script> 第二段要改 @Lin", "nonce": "n-1"}
    client.post(f"/review/pieces/{piece.id}/comments", data=data)
    client.post(f"/review/pieces/{piece.id}/comments", data=data)  # sent twice
    rows = db.session.scalars(select(Comment)).all()
    assert len(rows) == 1
    editor = as_user(app, login, team["editor"])
    editor.post(f"/review/pieces/{piece.id}/comments",
                data={"body": "好的，已改", "parent_id": str(rows[0].id)})
    page = text(editor.get(f"/review/pieces/{piece.id}"))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert re.search(r'ms-4 border-start ps-3 mb-2" id="comment-\d+"', page)  # a reply
    mention = db.session.scalars(select(Notification).where(
        Notification.kind == "mention")).one()
    assert mention.user_id == team["editor"].id
    empty = editor.post(f"/review/pieces/{piece.id}/comments", data={"body": "   "},
                        follow_redirects=True)
    assert "Write a comment first." in text(empty)


def test_history_diff_and_previews(app, db, login, team, make):
    piece = piece_of(make, team["editor"], title="会员日", body="第一段\n\n**欢迎**光临")
    make.edit(piece, team["editor"], at=NOW, title="会员日活动", body="第一段\n\n**欢迎**再次光临")
    client = as_user(app, login, team["editor"])
    page = text(client.get(f"/review/pieces/{piece.id}"))
    assert 'data-action="piece.edit"' not in page  # a draft edit is not a transition
    assert "Preview per channel" in page
    assert "<strong>欢迎</strong>再次光临" in page  # webhook body_html from render()
    assert "&#34;body_markdown&#34;" in page or "&quot;body_markdown&quot;" in page
    diff_page = text(client.get(f"/review/pieces/{piece.id}/diff?a=1&b=2"))
    assert '<ins class="diff-ins">活动</ins>' in diff_page
    assert '<ins class="diff-ins">再次</ins>' in diff_page
    assert text(client.get(f"/review/pieces/{piece.id}/diff?a=x&b=99")).count("diff") > 0
    assert client.get("/review/pieces/999999").status_code == 404


def test_live_checks_endpoint(app, db, login, team, make):
    ch = make.channel(name="Team hook")
    piece = piece_of(make, team["editor"])
    client = as_user(app, login, team["editor"])
    response = client.post("/review/checks", json={
        "title": "史无前例的优惠", "body": "![](http://a.cn/x.png)",
        "audience_id": piece.audience_id, "style_id": "", "channel_ids": [ch.id, "x"]})
    data = response.get_json()
    assert response.status_code == 200
    got = {(f["code"], f["severity"]) for f in data["findings"]}
    assert {("ad_law_term", "error"), ("style_missing", "error"), ("image_alt", "warning"),
            ("insecure_link", "warning")} <= got
    assert data["errors"] >= 2
    assert client.post("/review/checks", data="nope").status_code == 400
    zh = client.post("/review/checks", json={"title": "最佳"},
                     headers={"Accept-Language": "zh"})
    assert any("广告法" in f["message"] for f in zh.get_json()["findings"])


def test_reviewer_link_lifecycle(app, db, login, team, make):
    piece = piece_of(make, team["editor"], title="客户确认稿")
    review.submit(db.session, piece, team["editor"], NOW)
    db.session.commit()
    editor = as_user(app, login, team["editor"])
    response = editor.post(f"/review/pieces/{piece.id}/links",
                           data={"days": "3", "note": "品牌方"}, follow_redirects=True)
    url = re.search(r"(http://[^\s<\"]+/review/external/[^\s<\"]+)", text(response)).group(1)
    path = url.split("localhost", 1)[-1] if "localhost" in url else "/" + url.split("/", 3)[3]
    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200 and "客户确认稿" in text(page)
    # Comment without a name is refused next to the field; with a name it is stored.
    refused = visitor.post(path, data={"comment": "hi"})
    assert "Tell us your name." in text(refused)
    visitor.post(path, data={"name": "李经理", "comment": "logo 再大一点"})
    visitor.post(path, data={"name": "李经理", "decision": "changes_requested",
                             "comment": "价格写错了"})
    db.session.expire_all()
    assert db.session.get(ContentPiece, piece.id).status == "changes_requested"
    again = visitor.post(path, data={"name": "李经理", "decision": "approved"})
    assert "already recorded" in text(again)
    link = db.session.scalars(select(ReviewLink)).one()
    assert link.decision == "changes_requested" and link.reviewer_name == "李经理"
    labels = {c.author_label for c in db.session.scalars(select(Comment))}
    assert labels == {"李经理"}
    assert db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "piece.external_changes_requested")).one().actor_label == "李经理"
    # Tampered, revoked and expired links show a clear page.
    bad = visitor.get(path[:-3] + "abc")
    assert bad.status_code == 404 and "not valid" in text(bad)
    editor.post(f"/review/links/{link.id}/revoke")
    revoked = visitor.get(path)
    assert revoked.status_code == 410 and "withdrawn" in text(revoked)
    _old, token = review.create_link(db.session, piece, team["editor"],
                                     utcnow() - timedelta(days=2),
                                     secret_key=app.config["SECRET_KEY"], days=1)
    db.session.commit()
    expired = visitor.get(f"/review/external/{token}")
    assert expired.status_code == 410 and "expired" in text(expired)


def test_external_approval_does_not_release_posts(app, db, login, team, make):
    piece = piece_of(make, team["editor"])
    review.submit(db.session, piece, team["editor"], NOW)
    link, token = review.create_link(db.session, piece, team["editor"], utcnow(),
                                     secret_key=app.config["SECRET_KEY"])
    db.session.commit()
    app.test_client().post(f"/review/external/{token}",
                           data={"name": "Client", "decision": "approved"})
    db.session.expire_all()
    assert db.session.get(ContentPiece, piece.id).status == "in_review"
    assert db.session.get(ReviewLink, link.id).decision == "approved"


def test_review_settings_terms_and_self_approval(app, db, login, team):
    admin = as_user(app, login, team["admin"])
    page = text(admin.get("/review/settings"))
    assert "国家级" in page and "史无前例" in page
    bad = admin.post("/review/settings/terms", data={"term": "", "severity": "error"})
    assert bad.status_code == 422 and 'data-field-error="term"' in text(bad)
    admin.post("/review/settings/terms", data={"term": "秒杀价", "severity": "warning"})
    assert "秒杀价" in text(admin.get("/review/settings"))
    from contentops.models.review import ComplianceTerm

    term = db.session.scalars(select(ComplianceTerm).where(ComplianceTerm.term == "秒杀价")).one()
    admin.post(f"/review/settings/terms/{term.id}/delete")
    assert "秒杀价" not in text(admin.get("/review/settings"))
    admin.post("/review/settings", data={"allow_self_approval": "on"})
    from contentops.services import app_settings

    assert app_settings.get(db.session, "review.allow_self_approval") is True
    assert as_user(app, login, team["approver"]).get("/review/settings").status_code == 403


def test_notification_pages(app, db, login, team, make):
    piece = piece_of(make, team["editor"])
    review.submit(db.session, piece, team["editor"], NOW)
    review.approve(db.session, piece, team["approver"], NOW)
    db.session.commit()
    client = as_user(app, login, team["editor"])
    page = text(client.get("/notifications/"))
    assert "Wang approved “秋季新品上市” (version 1)." in page
    client.set_cookie("contentops_lang", "zh")
    zh = text(client.get("/notifications/", headers={"Accept-Language": "zh"}))
    assert "秋季新品上市" in zh and "批准" in zh
    client.post("/notifications/read")
    assert db.session.scalar(select(Notification).where(
        Notification.user_id == team["editor"].id, Notification.read_at.is_(None))) is None
    client.post("/notifications/settings", data={"pref": ["app:mention", "email:mention",
                                                          "bogus:x"]})
    db.session.expire_all()
    prefs = db.session.get(type(team["editor"]), team["editor"].id).notification_prefs
    assert prefs["app:mention"] is True and prefs["app:approved"] is False
    assert "bogus:x" not in prefs


# --- API -------------------------------------------------------------------------------------

@pytest.fixture
def bearer(db):
    def make(user):
        _token, plain = users.create_token(db.session, user)
        db.session.commit()
        return {"Authorization": f"Bearer {plain}"}

    return make


def test_api_submit_approve_request_changes_comments(app, db, team, bearer, make):
    client = app.test_client()
    piece = piece_of(make, team["editor"])
    ed, ap = bearer(team["editor"]), bearer(team["approver"])
    r = client.post(f"/api/v1/pieces/{piece.id}/submit", headers=ed, json={})
    assert r.status_code == 200 and r.get_json()["status"] == "in_review"
    r = client.post(f"/api/v1/pieces/{piece.id}/approve", headers=ed, json={})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    r = client.post(f"/api/v1/pieces/{piece.id}/request-changes", headers=ap, json={})
    assert r.status_code == 422 and "comment" in r.get_json()["error"]["fields"]
    r = client.post(f"/api/v1/pieces/{piece.id}/request-changes", headers=ap,
                    json={"comment": "标题改短", "version": 1})
    assert r.get_json()["status"] == "changes_requested"
    r = client.post(f"/api/v1/pieces/{piece.id}/approve", headers=ap, json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "invalid_transition"
    client.post(f"/api/v1/pieces/{piece.id}/submit", headers=ed)
    r = client.post(f"/api/v1/pieces/{piece.id}/approve", headers=ap,
                    json={"version": 7})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "stale_version"
    r = client.post(f"/api/v1/pieces/{piece.id}/approve", headers=ap,
                    json={"version": "1"})
    assert r.status_code == 422 and "version" in r.get_json()["error"]["fields"]
    r = client.post(f"/api/v1/pieces/{piece.id}/approve", headers=ap,
                    json={"version": 1, "comment": "通过"})
    body = r.get_json()
    assert r.status_code == 200 and body["status"] == "approved"
    assert body["approved_version"] == 1 and body["approvals"][0]["user_id"] == \
        team["approver"].id
    r = client.post(f"/api/v1/pieces/{piece.id}/comments", headers=ap,
                    json={"body": "<b>好</b>", "nonce": "abc"})
    assert r.status_code == 201 and r.get_json()["body"] == "<b>好</b>"
    again = client.post(f"/api/v1/pieces/{piece.id}/comments", headers=ap,
                        json={"body": "<b>好</b>", "nonce": "abc"})
    assert again.get_json()["id"] == r.get_json()["id"]
    reply = client.post(f"/api/v1/pieces/{piece.id}/comments", headers=ed,
                        json={"body": "谢谢", "parent_id": r.get_json()["id"]})
    assert reply.get_json()["parent_id"] == r.get_json()["id"]
    listing = client.get(f"/api/v1/pieces/{piece.id}/comments", headers=ed).get_json()
    assert [c["body"] for c in listing["items"]] == ["标题改短", "<b>好</b>", "谢谢"]
    assert client.post("/api/v1/pieces/999999/approve", headers=ap,
                       json={}).status_code == 404
    r = client.post(f"/api/v1/pieces/{piece.id}/comments", headers=ed, json={"body": 5})
    assert r.status_code == 422


def test_api_submit_reports_compliance_findings(app, db, team, bearer, make):
    piece = piece_of(make, team["editor"], title="国家级品质")
    r = app.test_client().post(f"/api/v1/pieces/{piece.id}/submit",
                               headers=bearer(team["editor"]), json={})
    error = r.get_json()["error"]
    assert r.status_code == 422 and error["code"] == "compliance_failed"
    assert error["fields"]["title"] and error["findings"][0]["params"]["term"] == "国家级"
