"""The web channel's own feedback, comment moderation, CSV import/export and hook keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import render_template_string
from sqlalchemy import select

from contentops.cli import feedback_import
from contentops.models import AuditEvent, FeedbackEvent, Post, WebComment, WebLike
from contentops.services import feedback as fb
from contentops.services.feedback import csv_import as feedback_csv
from contentops.services.feedback import pages as web
from contentops.services.feedback.ingest import ingest

from .feedback_fixtures import make_post

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UA = {"User-Agent": "Mozilla/5.0 test"}


def fresh(db, post) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post.id)


def test_reads_are_deduplicated_per_visitor_per_day_without_raw_ips(db):
    post = make_post(db.session, slug="hello")
    db.session.commit()
    secret = "k"
    assert web.record_read(db.session, post, visitor="a:10.1.2.3|UA", secret_key=secret, now=NOW)
    assert not web.record_read(db.session, post, visitor="a:10.1.2.3|UA", secret_key=secret,
                               now=NOW + timedelta(hours=3))
    assert web.record_read(db.session, post, visitor="a:10.9.9.9|UA", secret_key=secret, now=NOW)
    assert web.record_read(db.session, post, visitor="a:10.1.2.3|UA", secret_key=secret,
                           now=NOW + timedelta(days=1))
    db.session.commit()
    assert fresh(db, post).reads == 3
    for event in db.session.scalars(select(FeedbackEvent)):
        assert "10.1.2.3" not in event.event_id and "10.9.9.9" not in event.event_id


def test_read_beacon_sets_a_visitor_cookie_and_counts_once(client, db):
    post = make_post(db.session, slug="beacon")
    db.session.commit()
    first = client.post("/p/beacon/read", headers=UA)
    assert first.status_code == 200 and first.get_json() == {"counted": True}
    assert "Set-Cookie" not in first.headers  # no cookie needed to count reads
    assert client.post("/p/beacon/read", headers=UA).get_json() == {"counted": False}
    other = client.application.test_client()
    assert other.post("/p/beacon/read", headers={"User-Agent": "other"}).get_json() == {
        "counted": True}
    assert fresh(db, post).reads == 2
    assert client.post("/p/nosuch/read").status_code == 404
    draft = make_post(db.session, slug="draft", status="scheduled")
    db.session.commit()
    assert client.post("/p/draft/read").status_code == 404
    assert fresh(db, draft).reads == 0


def test_like_once_per_visitor_and_undo(client, db):
    post = make_post(db.session, slug="likeme")
    db.session.commit()
    json_headers = {**UA, "Accept": "application/json"}
    assert client.post("/p/likeme/like", data={"action": "like"},
                       headers=json_headers).get_json() == {"liked": True, "likes": 1}
    assert client.post("/p/likeme/like", data={"action": "like"},
                       headers=json_headers).get_json() == {"liked": True, "likes": 1}
    other = client.application.test_client()
    r = other.post("/p/likeme/like", data={"action": "like"}, headers=UA)
    assert r.status_code == 302 and r.headers["Location"].endswith("/p/likeme#feedback")
    assert fresh(db, post).likes == 2
    assert client.post("/p/likeme/like", data={"action": "unlike"},
                       headers=json_headers).get_json() == {"liked": False, "likes": 1}
    assert db.session.query(WebLike).count() == 1


def test_comment_moderation_honeypot_and_rate_limit(client, db, make_user, login):
    post = make_post(db.session, slug="talk")
    db.session.commit()
    visitor = client.application.test_client()
    # A bot fills the hidden field: told "thanks", nothing stored.
    r = visitor.post("/p/talk/comments", data={"author": "bot", "text": "spam",
                                               "website": "http://spam"})
    assert r.status_code == 302
    assert db.session.query(WebComment).count() == 0
    # Missing fields come back next to the fields.
    visitor.post("/p/talk/comments", data={"author": "", "text": ""})
    with client.application.test_request_context("/p/talk"):
        pass
    for i in range(3):
        assert visitor.post("/p/talk/comments",
                            data={"author": "小红", "text": f"写得好 {i}"}).status_code == 302
    visitor.post("/p/talk/comments", data={"author": "小红", "text": "too fast"})
    assert db.session.query(WebComment).count() == 3  # the 4th in 10 minutes is refused
    assert fresh(db, post).comments == 0  # nothing counts before approval

    editor = make_user("editor")
    staff = client.application.test_client()
    login(editor, staff)
    page = staff.get("/feedback/comments").get_data(as_text=True)
    assert "写得好 0" in page
    first = db.session.scalars(select(WebComment).order_by(WebComment.id)).first()
    assert staff.post(f"/feedback/comments/{first.id}/approve").status_code == 302
    assert staff.post(f"/feedback/comments/{first.id + 1}/reject").status_code == 302
    assert fresh(db, post).comments == 1
    assert [c.text for c in web.approved_comments(db.session, post.id)] == ["写得好 0"]
    # Rejecting an approved comment takes it back off the count.
    staff.post(f"/feedback/comments/{first.id}/reject")
    assert fresh(db, post).comments == 0
    assert db.session.query(AuditEvent).filter(AuditEvent.action.like("comment.%")).count() == 3
    viewer = client.application.test_client()
    login(make_user("viewer"), viewer)
    assert viewer.post(f"/feedback/comments/{first.id}/approve").status_code == 403


def test_comment_validation_errors_shown_next_to_fields(app, client, db):
    post = make_post(db.session, slug="errs")
    db.session.commit()
    client.post("/p/errs/comments", data={"author": "", "text": "x" * 2001})
    with client.session_transaction() as sess:
        state = sess["fb_comment"]
    assert state["errors"]["author"] and state["errors"]["text"]
    with app.test_request_context("/p/errs"):
        from flask import session

        session.update({"fb_comment": state})
        html = render_template_string('{% include "public/_feedback.html" %}', post=post)
    assert 'data-field-error="author"' in html and 'data-field-error="text"' in html


def test_public_include_shows_likes_and_approved_comments_only(app, db):
    post = make_post(db.session, slug="inc", likes=4)
    db.session.add_all([
        WebComment(post_id=post.id, author="A", text="approved one", status="approved",
                   visitor="x", created_at=NOW),
        WebComment(post_id=post.id, author="B", text="pending one", status="pending",
                   visitor="y", created_at=NOW),
    ])
    db.session.commit()
    with app.test_request_context("/p/inc"):
        html = render_template_string('{% include "public/_feedback.html" %}', post=post)
    assert "approved one" in html and "pending one" not in html
    assert 'data-feedback="likes">4<' in html
    assert 'name="website"' in html  # the honeypot
    # The read beacon: a script file (the CSP allows no inline script) told the slug.
    assert 'data-slug="inc"' in html and "/static/js/public.js" in html


def test_share_clicks_counted_once_per_visitor_day_and_network(client, db):
    post = make_post(db.session, slug="share", external_url="https://example.com/p/share")
    db.session.commit()
    r = client.get("/p/share/share/weibo", headers=UA)
    assert r.status_code == 302 and r.headers["Location"].startswith(
        "https://service.weibo.com/share/share.php?url=https%3A%2F%2Fexample.com")
    client.get("/p/share/share/weibo", headers=UA)
    assert client.post("/p/share/share/copy", headers=UA).get_json() == {"ok": True}
    assert client.get("/p/share/share/myspace").status_code == 404
    assert fresh(db, post).shares == 2


# --- CSV ------------------------------------------------------------------------------------

def test_csv_round_trip_and_reimport_changes_nothing(db, tmp_path):
    a = make_post(db.session, title="A", channel_name="朋友圈", kind="manual", external_id="m-1")
    b = make_post(db.session, title="B", channel_name="朋友圈", kind="manual")
    db.session.commit()
    content = (
        "post_id,channel_id,external_id,kind,count,occurred_at,reads,likes\n"
        f"{b.id},,,read,5,2026-11-20T10:00:00+08:00,,\n"
        f",{a.channel_id},m-1,,,2026-11-20T10:00:00+08:00,120,8\n"
    )
    parsed = feedback_csv.parse(content)
    preview = feedback_csv.preview(db.session, parsed, now=NOW)
    assert (preview.rows, preview.new, preview.duplicates, preview.errors) == (2, 3, 0, [])
    assert preview.changes == {b.id: {"reads": 5}, a.id: {"reads": 120, "likes": 8}}
    assert fresh(db, a).reads == 0  # a preview writes nothing
    feedback_csv.apply(db.session, parsed, now=NOW)
    db.session.commit()
    again = feedback_csv.apply(db.session, feedback_csv.parse(content), now=NOW)
    db.session.commit()
    assert (again.accepted, again.duplicates) == (0, 3)
    assert (fresh(db, a).reads, fresh(db, a).likes, fresh(db, b).reads) == (120, 8, 5)
    # Export, then import the export: everything is already counted.
    exported = feedback_csv.export(db.session)
    assert exported.splitlines()[0] == ",".join(feedback_csv.COLUMNS)
    back = feedback_csv.preview(db.session, feedback_csv.parse(exported), now=NOW)
    assert (back.new, back.duplicates, back.errors) == (0, 3, [])


def test_csv_row_errors_name_the_row_and_block_the_import(db):
    post = make_post(db.session)
    db.session.commit()
    content = ("post_id,kind,count\n"
               f"{post.id},read,3\n"
               f"{post.id},poke,1\n"
               "999999,read,1\n"
               f"{post.id},read,lots\n")
    preview = feedback_csv.preview(db.session, feedback_csv.parse(content), now=NOW)
    assert [e.row for e in preview.errors] == [3, 4, 5]


def test_csv_import_page_preview_then_confirm(client, db, make_user, login):
    import io

    post = make_post(db.session, title="Manual post")
    db.session.commit()
    login(make_user("editor"))
    data = f"post_id,kind,count\n{post.id},read,7\n".encode()
    r = client.post("/feedback/import", data={"file": (io.BytesIO(data), "f.csv")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Manual post" in html and "<strong>7</strong>" in html
    assert fresh(db, post).reads == 0
    r = client.post("/feedback/import", data={"content": data.decode(), "confirm": "1"})
    assert r.status_code == 302
    assert fresh(db, post).reads == 7
    r = client.post("/feedback/import", data={"file": (io.BytesIO(data), "f.csv")},
                    content_type="multipart/form-data")
    assert 'data-preview="nothing"' in r.get_data(as_text=True)
    bad = b"post_id,kind\n999999,read\n"
    r = client.post("/feedback/import", data={"file": (io.BytesIO(bad), "f.csv")},
                    content_type="multipart/form-data")
    assert 'data-table="row-errors"' in r.get_data(as_text=True)
    r = client.post("/feedback/import", data={"file": (io.BytesIO(b"a,b\n1,2\n"), "f.csv")},
                    content_type="multipart/form-data")
    assert 'data-field-error="file"' in r.get_data(as_text=True)


def test_cli_import(app, db, tmp_path):
    post = make_post(db.session)
    db.session.commit()
    path = tmp_path / "f.csv"
    path.write_text(f"post_id,kind,count\n{post.id},like,2\n", encoding="gb18030")
    runner = app.test_cli_runner()
    result = runner.invoke(feedback_import, [str(path)])
    assert result.exit_code == 0, result.output
    assert "1 new events" in result.output
    result = runner.invoke(feedback_import, [str(path)])
    assert "0 new events, 1 already counted" in result.output
    assert fresh(db, post).likes == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("post_id,kind\n999999,read\n")
    result = runner.invoke(feedback_import, [str(bad)])
    assert result.exit_code == 1 and "row 2" in result.output


def test_hook_key_page_shows_key_once(client, db, make_user, login):

    post = make_post(db.session)
    db.session.commit()
    login(make_user("admin"))
    r = client.post("/feedback/hooks", data={"channel_id": post.channel_id})
    html = r.get_data(as_text=True)
    assert "data-new-key" in html and r.headers["Cache-Control"] == "no-store"
    key = html.split("data-new-key>")[1].split("<")[0]
    assert key.startswith("fh_")
    assert key not in client.get("/feedback/hooks").get_data(as_text=True)
    body = b'{"events": []}'
    r = client.post(f"/api/v1/feedback/hooks/{post.channel_id}", data=body,
                    headers={"X-ContentOps-Signature": fb.sign(body, key)})
    assert r.status_code == 200


def test_post_list_shows_a_trend_line(client, db, make_user, login):
    from contentops.timeutil import utcnow

    post = make_post(db.session, title="Trending")
    quiet = make_post(db.session, title="Quiet")
    db.session.commit()
    now = utcnow()
    ingest(db.session, [
        {"event_id": f"t{d}", "post_id": post.id, "kind": "read", "count": d + 1,
         "occurred_at": (now - timedelta(days=d)).isoformat()} for d in range(3)], now=now)
    db.session.commit()
    assert fb.trends(db.session, [post.id], now=now)[post.id][-3:] == [3, 2, 1]
    login(make_user("viewer"))
    html = client.get("/posts/?sort=-reads").get_data(as_text=True)
    row = html.split(f'data-post="{post.id}"')[1].split("</tr>")[0]
    assert 'class="co-sparkline"' in row and 'data-values="0,0,0,0,0,0,0,0,0,0,0,3,2,1"' in row
    quiet_row = html.split(f'data-post="{quiet.id}"')[1].split("</tr>")[0]
    assert "co-sparkline" not in quiet_row


def test_piece_page_breakdown_comments_and_timeline(client, db, make_user, login):

    web_post = make_post(db.session, title="Breakdown", slug="bd", reads=40, likes=4)
    db.session.add(WebComment(post_id=web_post.id, author="访客", text="网页评论",
                              status="approved", visitor="v", created_at=NOW))
    db.session.commit()
    ingest(db.session, [{"event_id": "c1", "post_id": web_post.id, "kind": "comment",
                            "text": "群里的回复", "author": "群友"}], now=NOW)
    db.session.commit()
    login(make_user("viewer"))
    html = client.get(f"/pieces/{web_post.piece_id}").get_data(as_text=True)
    assert 'data-table="piece-breakdown"' in html
    # (4 likes + 1 comment) / 40 reads
    assert f'data-post-id="{web_post.id}"' in html and "12.5%" in html
    assert "网页评论" in html and "群里的回复" in html
    assert 'id="piece-timeline"' in html


def test_scheduling_form_offers_the_best_time_hint(client, db, make_user, login):
    make_post(db.session)
    db.session.commit()
    login(make_user("editor"))
    html = client.get("/pieces/new").get_data(as_text=True)
    assert "data-best-time-hint" in html and "/api/v1/analytics/best-time" in html
