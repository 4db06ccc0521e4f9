"""Content pieces: the service rules, the pages (forms, preview, filters, roles) and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contentops.errors import ValidationError
from contentops.models import AuditEvent, ContentPiece, PieceRevision, Post, Tag
from contentops.services import content as content_service
from contentops.services import review
from contentops.services.users import create_token

from .pieces_helpers import NOW, make_taxonomy, piece_data


@pytest.fixture
def t(db):
    return make_taxonomy(db.session)


@pytest.fixture
def editor(make_user):
    return make_user("editor")


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _create(db, t, editor, **overrides) -> ContentPiece:
    result = content_service.create_piece(db.session, piece_data(t, **overrides), author=editor,
                                          now=NOW)
    db.session.commit()
    return result.piece


# --- service ------------------------------------------------------------------------------

def test_create_makes_a_draft_with_a_revision_tags_and_one_post_per_channel(db, t, editor):
    piece = _create(db, t, editor, tags=["双11", " 早鸟 ", "#双11", "早鸟"])
    assert piece.status == "draft" and piece.version == 1
    assert [r.version for r in piece.revisions] == [1]
    assert piece.revisions[0].title == "双11 早鸟提醒"
    assert sorted(t2.name for t2 in piece.tags) == ["双11", "早鸟"]
    assert {p.channel_id for p in piece.posts} == {t.web.id, t.hook.id}
    assert all(p.status == "unscheduled" and p.scheduled_at is None for p in piece.posts)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "piece.created"))
    assert event.object_id == piece.id and event.actor_id == editor.id


def test_tags_are_shared_case_insensitively(db, t, editor):
    _create(db, t, editor, tags=["Promo"])
    _create(db, t, editor, tags=["promo", "New"])
    assert sorted(db.session.scalars(select(Tag.name))) == ["New", "Promo"]


def test_create_with_a_time_schedules_every_post_in_utc(db, t, editor):
    piece = _create(db, t, editor, scheduled_at="2026-11-25T20:00:00+08:00")
    assert {p.status for p in piece.posts} == {"scheduled"}
    assert {p.scheduled_at for p in piece.posts} == {datetime(2026, 11, 25, 12, 0, tzinfo=UTC)}


BAD_INPUT = [
    ({"title": ...}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": 42}, "title"),
    ({"body": ...}, "body"),
    ({"body": "x" * 100_001}, "body"),
    ({"summary": "x" * 501}, "summary"),
    ({"audience_id": ...}, "audience_id"),
    ({"audience_id": 999_999}, "audience_id"),
    ({"audience_id": "abc"}, "audience_id"),
    ({"audience_id": True}, "audience_id"),
    ({"style_id": 999_999}, "style_id"),
    ({"campaign_id": 999_999}, "campaign_id"),
    ({"channel_ids": []}, "channel_ids"),
    ({"channel_ids": "1"}, "channel_ids"),
    ({"channel_ids": [999_999]}, "channel_ids"),
    ({"channel_ids": ["x"]}, "channel_ids"),
    ({"tags": {"a": 1}}, "tags"),
    ({"tags": [1, 2]}, "tags"),
    ({"tags": ["x" * 51]}, "tags"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"scheduled_at": "2026-11-25 20:00"}, "scheduled_at"),
    ({"scheduled_at": "tomorrow"}, "scheduled_at"),
    ({"scheduled_at": 12}, "scheduled_at"),
    ({"scheduled_at": "2020-01-01T00:00:00+00:00"}, "scheduled_at"),
    ({"variants": []}, "variants"),
    ({"status": "approved"}, "status"),
]


def test_bad_input_is_refused_with_a_field_error_and_stores_nothing(db, t, editor):
    # One test walks every case: the app fixture is the slow part, not the checks.
    for overrides, field in BAD_INPUT:
        with pytest.raises(ValidationError) as info:
            content_service.create_piece(db.session, piece_data(t, **overrides),
                                         author=editor, now=NOW)
        db.session.rollback()
        assert field in info.value.fields, (overrides, info.value.fields)
        assert _count(db, ContentPiece) == 0 and _count(db, Post) == 0


def test_every_problem_is_reported_at_once(db, t, editor):
    with pytest.raises(ValidationError) as info:
        content_service.create_piece(db.session, {}, author=editor, now=NOW)
    assert {"title", "body", "audience_id", "style_id", "channel_ids"} <= set(info.value.fields)


def test_switched_off_channels_and_foreign_variants_are_refused(db, t, editor):
    with pytest.raises(ValidationError) as info:
        content_service.create_piece(db.session, piece_data(t, channel_ids=[t.off.id]),
                                     author=editor, now=NOW)
    assert "channel_ids" in info.value.fields
    with pytest.raises(ValidationError) as info:
        content_service.create_piece(
            db.session, piece_data(t, channel_ids=[t.web.id],
                                   variants={str(t.hook.id): {"title": "x"}}),
            author=editor, now=NOW)
    assert f"variants.{t.hook.id}" in info.value.fields
    with pytest.raises(ValidationError) as info:
        content_service.create_piece(
            db.session, piece_data(t, variants={str(t.web.id): {"title": "x" * 201,
                                                                 "colour": 1}}),
            author=editor, now=NOW)
    assert f"variants.{t.web.id}" in info.value.fields


def test_variants_live_on_the_posts_and_in_the_revision(db, t, editor):
    piece = _create(db, t, editor, variants={
        str(t.hook.id): {"title": "Partner title", "body": "Partner *body*"},
        str(t.web.id): {"title": "  ", "body": ""}})
    posts = {p.channel_id: p for p in piece.posts}
    assert posts[t.hook.id].title == "Partner title"
    assert posts[t.hook.id].body == "Partner *body*"
    assert posts[t.web.id].title == piece.title and posts[t.web.id].body == piece.body
    assert piece.revisions[0].variants == {
        str(t.hook.id): {"title": "Partner title", "body": "Partner *body*"}}


def test_metadata_changes_keep_the_version(db, t, editor):
    piece = _create(db, t, editor)
    result = content_service.update_piece(
        db.session, piece, {"audience_id": t.audience2.id, "tags": ["new"],
                            "campaign_id": None}, actor=editor, now=NOW)
    db.session.commit()
    assert not result.new_version and piece.version == 1
    assert piece.audience_id == t.audience2.id and piece.campaign_id is None
    assert [tag.name for tag in piece.tags] == ["new"]


def test_editing_an_approved_piece_makes_a_new_version_and_voids_the_approval(
        db, t, editor, monkeypatch):
    piece = _create(db, t, editor)
    piece.status, piece.approved_version = "approved", 1
    db.session.commit()
    calls = []
    real = review.content_changed
    monkeypatch.setattr(review, "content_changed",
                        lambda s, p, a, n: (calls.append((p.id, p.version)), real(s, p, a, n)))
    result = content_service.update_piece(db.session, piece, {"body": "New body"},
                                          actor=editor, now=NOW + timedelta(minutes=5))
    db.session.commit()
    assert result.new_version and piece.version == 2
    assert calls == [(piece.id, 2)]
    assert not piece.is_approved_as_is
    revisions = db.session.scalars(select(PieceRevision).where(
        PieceRevision.piece_id == piece.id).order_by(PieceRevision.version)).all()
    assert [(r.version, r.body) for r in revisions] == [(1, piece_data(t)["body"]),
                                                        (2, "New body")]


def test_a_variant_change_is_a_new_version_too(db, t, editor):
    piece = _create(db, t, editor)
    result = content_service.update_piece(
        db.session, piece, {"variants": {str(t.web.id): {"title": "Short"}}}, actor=editor,
        now=NOW)
    assert result.new_version and piece.version == 2
    same = content_service.update_piece(
        db.session, piece, {"variants": {str(t.web.id): {"title": "Short"}}}, actor=editor,
        now=NOW)
    assert not same.new_version and piece.version == 2


def test_changing_channels_adds_and_removes_posts_but_never_one_that_went_out(db, t, editor):
    piece = _create(db, t, editor, channel_ids=[t.web.id])
    content_service.update_piece(db.session, piece, {"channel_ids": [t.web.id, t.hook.id]},
                                 actor=editor, now=NOW)
    db.session.commit()
    assert sorted(p.channel_id for p in piece.posts) == sorted([t.web.id, t.hook.id])
    content_service.update_piece(db.session, piece, {"channel_ids": [t.hook.id]},
                                 actor=editor, now=NOW)
    db.session.commit()
    assert [p.channel_id for p in piece.posts] == [t.hook.id]
    post = piece.posts[0]
    post.status = "published"
    db.session.commit()
    with pytest.raises(ValidationError) as info:
        content_service.update_piece(db.session, piece, {"channel_ids": [t.web.id]},
                                     actor=editor, now=NOW)
    db.session.rollback()
    assert "channel_ids" in info.value.fields
    assert db.session.get(Post, post.id).status == "published"


def test_patch_cannot_clear_required_fields(db, t, editor):
    piece = _create(db, t, editor)
    with pytest.raises(ValidationError) as info:
        content_service.update_piece(db.session, piece, {"title": "", "body": None,
                                                         "audience_id": None,
                                                         "scheduled_at": None},
                                     actor=editor, now=NOW)
    assert set(info.value.fields) == {"title", "body", "audience_id", "scheduled_at"}


def test_list_filters(db, t, editor):
    a = _create(db, t, editor, title="Alpha launch", tags=["launch"])
    b = _create(db, t, editor, title="Beta", audience_id=t.audience2.id, channel_ids=[t.hook.id],
                campaign_id=None, tags=["other"])
    b.status = "approved"
    db.session.commit()

    def ids(**kwargs):
        items, total = content_service.list_pieces(
            db.session, content_service.PieceFilters(**kwargs))
        assert total == len(items)
        return sorted(p.id for p in items)

    assert ids() == sorted([a.id, b.id])
    assert ids(status="approved") == [b.id]
    assert ids(audience_id=t.audience2.id) == [b.id]
    assert ids(channel_id=t.web.id) == [a.id]
    assert ids(campaign_id=t.campaign.id) == [a.id]
    assert ids(tag="LAUNCH") == [a.id]
    assert ids(q="alpha") == [a.id]
    assert ids(q="%") == []


# --- pages --------------------------------------------------------------------------------

def _form(t, **overrides) -> dict:
    data = {
        "title": "Form piece", "body": "Some **bold** text", "summary": "",
        "audience_id": str(t.audience.id), "style_id": str(t.style.id),
        "campaign_id": "", "channel_ids": [str(t.web.id)], "tags": "a, b，c",
        "scheduled_at": "",
    }
    data.update(overrides)
    return data


def test_viewer_reads_but_cannot_write(app, db, t, editor, make_user, login):
    piece = _create(db, t, editor)
    client = login(make_user("viewer"))
    assert client.get("/pieces/").status_code == 200
    page = client.get(f"/pieces/{piece.id}")
    assert page.status_code == 200 and "双11 早鸟提醒" in page.text
    assert f"/pieces/{piece.id}/edit" not in page.text
    assert client.get("/pieces/new").status_code == 403
    assert client.post("/pieces/new", data=_form(t)).status_code == 403
    assert client.post(f"/pieces/{piece.id}/edit", data=_form(t)).status_code == 403
    assert client.post("/pieces/preview", json={"body": "x"}).status_code == 403
    assert _count(db, ContentPiece) == 1


@pytest.mark.parametrize("role", ["editor", "approver", "admin"])
def test_editors_and_above_create_through_the_form(app, db, t, make_user, login, role):
    client = login(make_user(role))
    response = client.post("/pieces/new", data=_form(t))
    assert response.status_code == 302, response.text[:2000]
    piece = db.session.scalars(select(ContentPiece)).one()
    assert response.headers["Location"].endswith(f"/pieces/{piece.id}")
    assert sorted(tag.name for tag in piece.tags) == ["a", "b", "c"]
    page = client.get(response.headers["Location"])
    assert "<strong>bold</strong>" in page.text


def test_form_errors_appear_next_to_their_fields(app, db, t, editor, login):
    client = login(editor)
    response = client.post("/pieces/new", data=_form(
        t, title="", audience_id="999999", channel_ids=[], scheduled_at="not a time",
        **{f"variant_title_{t.hook.id}": "Only for the hook"}))
    assert response.status_code == 422
    text = response.text
    assert 'data-field-error="title"' in text
    assert _count(db, ContentPiece) == 0
    # Service-level problems are shown next to their fields too.
    response = client.post("/pieces/new", data=_form(
        t, audience_id="999999", channel_ids=[str(t.web.id)], scheduled_at="not a time",
        **{f"variant_title_{t.hook.id}": "Only for the hook"}))
    assert response.status_code == 422
    for name in ("audience_id", "scheduled_at", f"variant_title_{t.hook.id}"):
        assert f'data-field-error="{name}"' in response.text, name
    assert _count(db, ContentPiece) == 0
    # What the user typed is kept.
    assert "Only for the hook" in response.text


def test_new_prefills_the_time_from_the_calendar_and_schedules_in_the_viewers_zone(
        app, db, t, editor, login):
    client = login(editor)
    page = client.get("/pieces/new?date=2030-12-01&time=20:30")
    assert 'value="2030-12-01T20:30"' in page.text
    assert 'value="2030-12-01T09:00"' in client.get("/pieces/new?date=2030-12-01").text
    # A calendar shown in Berlin time: 13:30 there is 20:30 in Shanghai.
    berlin = client.get("/pieces/new?date=2030-12-01&time=13:30&tz=Europe/Berlin").text
    assert 'value="2030-12-01T20:30"' in berlin
    assert 'value="2030-12-01T13:30"' in client.get(
        "/pieces/new?date=2030-12-01&time=13:30&tz=Not/AZone").text
    for bad in ("date=2030-13-01", "date=x&time=25:00", "date=2030-12-01%27%22%3E"):
        response = client.get(f"/pieces/new?{bad}")
        assert response.status_code == 200
        assert 'name="scheduled_at" type="datetime-local" value=""' in response.text
    response = client.post("/pieces/new", data=_form(t, scheduled_at="2030-12-01T20:30"))
    assert response.status_code == 302
    post = db.session.scalars(select(Post)).one()
    # The team zone is Asia/Shanghai (UTC+8).
    assert post.status == "scheduled"
    assert post.scheduled_at == datetime(2030, 12, 1, 12, 30, tzinfo=UTC)


def test_piece_form_refuses_a_time_the_clocks_skip_and_keeps_the_input(
        app, db, t, editor, login):
    editor.timezone = "America/New_York"
    db.session.commit()
    client = login(editor)
    # 10 March 2030: New York's clocks go from 02:00 straight to 03:00.
    response = client.post("/pieces/new", data=_form(t, title="Spring piece",
                                                     scheduled_at="2030-03-10T02:30",
                                                     fold="0", fold_for="2030-03-10T02:30"))
    assert response.status_code == 422
    errors = re.findall(r'data-field-error="scheduled_at">([^<]*)<', response.text)
    assert len(errors) == 1
    assert "does not exist in America/New_York" in errors[0]
    assert "2030-03-10 03:00 EDT (UTC-4)" in errors[0]
    assert "data-fold-choice" not in response.text  # nothing to choose: the time never happens
    assert 'value="Spring piece"' in response.text and 'value="2030-03-10T02:30"' in response.text
    assert _count(db, ContentPiece) == 0


def test_piece_form_offers_both_occurrences_of_a_repeated_time(app, db, t, editor, login):
    editor.timezone = "America/New_York"
    db.session.commit()
    client = login(editor)
    wall = "2030-11-03T01:30"  # happens twice: 01:30 EDT, then 01:30 EST
    response = client.post("/pieces/new", data=_form(t, title="Autumn piece",
                                                     scheduled_at=wall))
    assert response.status_code == 422
    (error,) = re.findall(r'data-field-error="scheduled_at">([^<]*)<', response.text)
    assert "01:30 EDT (UTC-4) or 01:30 EST (UTC-5)" in error
    assert "data-fold-choice" in response.text
    assert f'name="fold_for" value="{wall}"' in response.text
    assert re.search(r'name="fold" id="fold-0" value="0">\s*<label[^>]*>[^<]*01:30 EDT',
                     response.text)
    assert re.search(r'name="fold" id="fold-1" value="1">\s*<label[^>]*>[^<]*01:30 EST',
                     response.text)
    assert 'value="Autumn piece"' in response.text
    assert _count(db, ContentPiece) == 0
    # Submitted without a choice again: asked again, still nothing saved.
    again = client.post("/pieces/new", data=_form(t, scheduled_at=wall, fold_for=wall))
    assert again.status_code == 422 and _count(db, ContentPiece) == 0
    # A choice made for another time does not carry over to an edited one.
    stale = client.post("/pieces/new", data=_form(t, scheduled_at=wall, fold="1",
                                                  fold_for="2030-11-03T01:15"))
    assert stale.status_code == 422 and _count(db, ContentPiece) == 0
    # The second occurrence, chosen: 01:30 EST is 06:30 UTC.
    done = client.post("/pieces/new", data=_form(t, title="Autumn piece", scheduled_at=wall,
                                                 fold="1", fold_for=wall))
    assert done.status_code == 302
    post = db.session.scalars(select(Post)).one()
    assert post.scheduled_at == datetime(2030, 11, 3, 6, 30, tzinfo=UTC)


def test_edit_form_shows_the_piece_and_saves_a_new_version(app, db, t, editor, login):
    piece = _create(db, t, editor, variants={str(t.web.id): {"title": "Web title"}})
    piece.status, piece.approved_version = "approved", 1
    db.session.commit()
    client = login(editor)
    page = client.get(f"/pieces/{piece.id}/edit")
    assert page.status_code == 200
    assert "双11 早鸟提醒" in page.text and "Web title" in page.text
    assert "data-approval-warning" in page.text
    form = _form(t, title="双11 早鸟提醒 v2", channel_ids=[str(t.web.id), str(t.hook.id)],
                 **{f"variant_title_{t.web.id}": "Web title"})
    response = client.post(f"/pieces/{piece.id}/edit", data=form)
    assert response.status_code == 302, response.text[:3000]
    db.session.refresh(piece)
    assert piece.version == 2 and piece.title == "双11 早鸟提醒 v2"
    assert not piece.is_approved_as_is
    assert client.get(f"/pieces/{piece.id}").status_code == 200
    assert client.get("/pieces/999999/edit").status_code == 404
    assert client.get("/pieces/999999").status_code == 404


def test_list_page_filters_paginates_and_has_an_empty_state(app, db, t, editor, login):
    client = login(editor)
    empty = client.get("/pieces/")
    assert "data-empty-state" in empty.text and "/pieces/new" in empty.text
    for i in range(30):
        _create(db, t, editor, title=f"Piece {i:02d}", tags=["even" if i % 2 else "odd"])
    first = client.get("/pieces/")
    assert first.text.count("data-piece-id=") == 25
    second = client.get("/pieces/?page=2")
    assert second.text.count("data-piece-id=") == 5
    filtered = client.get("/pieces/?tag=even&q=Piece")
    assert filtered.text.count("data-piece-id=") == 15
    none = client.get("/pieces/?q=nothing-like-this")
    assert "No piece matches these filters." in none.text
    # Junk in the query string is ignored, never a 500.
    assert client.get("/pieces/?audience_id=abc&page=-1&status=zzz").status_code == 200


def test_preview_renders_markdown_on_the_server(app, t, editor, login):
    client = login(editor)
    response = client.post("/pieces/preview", json={"body": "# Hi\n\n<script>x</script>"})
    assert response.status_code == 200
    html = response.get_json()["html"]
    assert "<h1>Hi</h1>" in html and "<script>" not in html
    assert client.post("/pieces/preview", json={"body": "x" * 100_001}).status_code == 422
    assert client.post("/pieces/preview", data={"body": "*a*"}).get_json()["html"] == \
        "<p><em>a</em></p>\n"


def test_the_editor_loads_its_preview_script_from_static_files(app, t, editor, login):
    client = login(editor)
    page = client.get("/pieces/new").text
    assert re.search(r'<script src="/static/js/pieces.js', page)
    assert "cdn" not in page.lower()
    with client.get("/static/js/pieces.js") as script:
        assert script.status_code == 200 and b"debounce" in script.data.lower()


# --- API ----------------------------------------------------------------------------------

@pytest.fixture
def api(app, db, make_user):
    def client_for(role: str):
        user = make_user(role)
        _, plain = create_token(db.session, user)
        db.session.commit()
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
        return client

    return client_for


def test_api_create_returns_the_documented_shape(db, t, api):
    client = api("editor")
    response = client.post("/api/v1/pieces", json=piece_data(
        t, scheduled_at="2030-01-01T09:00:00+08:00"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "draft" and body["version"] == 1
    assert isinstance(body["id"], int)
    assert {p["channel_id"] for p in body["posts"]} == {t.web.id, t.hook.id}
    for post in body["posts"]:
        assert {"id", "channel_id", "status", "scheduled_at"} <= set(post)
        assert post["status"] == "scheduled"
        assert datetime.fromisoformat(post["scheduled_at"]) == datetime(2030, 1, 1, 1, 0,
                                                                        tzinfo=UTC)
    got = client.get(f"/api/v1/pieces/{body['id']}").get_json()
    assert got["title"] == "双11 早鸟提醒" and got["tags"] == ["双11", "早鸟"]
    assert "<strong>members</strong>" in got["body_html"]
    assert got["audience"] == {"id": t.audience.id, "name": "新会员"}


def test_api_validation_errors_use_the_documented_shape(db, t, api):
    client = api("editor")
    response = client.post("/api/v1/pieces", json={"title": "", "audience_id": 999999,
                                                   "channel_ids": "x", "bogus": 1})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert {"title", "body", "audience_id", "style_id", "channel_ids", "bogus"} <= \
        set(error["fields"])
    assert all(isinstance(m, list) and m and all(isinstance(x, str) for x in m)
               for m in error["fields"].values())
    bad = client.post("/api/v1/pieces", data="not json", content_type="text/plain")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"
    listed = client.post("/api/v1/pieces", json=[1, 2])
    assert listed.status_code == 400
    assert client.get("/api/v1/pieces/999999").status_code == 404
    assert client.patch("/api/v1/pieces/999999", json={}).get_json()["error"]["code"] == \
        "not_found"
    assert client.get("/api/v1/pieces?audience_id=x").status_code == 422
    assert client.get("/api/v1/pieces?per_page=1000").status_code == 422
    assert _count(db, ContentPiece) == 0


def test_api_errors_are_localised(db, t, api):
    client = api("editor")
    response = client.post("/api/v1/pieces", json={"title": ""},
                           headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    error = response.get_json()["error"]
    assert error["fields"]["title"] != ["This field is required."]
    assert re.search(r"[\u4e00-\u9fff]", error["fields"]["title"][0])


def test_api_patch_and_roles(db, t, api):
    editor = api("editor")
    viewer = api("viewer")
    created = editor.post("/api/v1/pieces", json=piece_data(t)).get_json()
    url = f"/api/v1/pieces/{created['id']}"
    assert viewer.get(url).status_code == 200
    assert viewer.get("/api/v1/pieces").get_json()["total"] == 1
    assert viewer.patch(url, json={"title": "nope"}).status_code == 403
    assert viewer.post("/api/v1/pieces", json=piece_data(t)).status_code == 403
    patched = editor.patch(url, json={"title": "New title",
                                      "variants": {str(t.hook.id): {"body": "Hook **only**"}}})
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["version"] == 2 and body["title"] == "New title"
    hook_post = next(p for p in body["posts"] if p["channel_id"] == t.hook.id)
    assert "<strong>only</strong>" in hook_post["body_html"]
    assert body["variants"] == {str(t.hook.id): {"title": None, "body": "Hook **only**"}}
    refused = editor.patch(url, json={"channel_ids": [999999]})
    assert refused.status_code == 422
    listed = viewer.get(f"/api/v1/pieces?channel_id={t.hook.id}&status=draft").get_json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert viewer.get("/api/v1/pieces?status=approved").get_json()["items"] == []


def test_api_without_a_token_is_401(app):
    assert app.test_client().get("/api/v1/pieces").status_code == 401


# --- PostgreSQL -----------------------------------------------------------------------------

@pytest.mark.postgres
def test_pieces_on_postgres(tmp_path, pg_url):
    from contentops.extensions import db as _db
    from contentops.models import User

    from .conftest import make_app, password_hash

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        try:
            t = make_taxonomy(_db.session)
            author = User(email="lin@example.com", name="Lin", role="editor",
                          password_hash=password_hash(), notification_prefs={})
            _db.session.add(author)
            _db.session.commit()
            first = content_service.create_piece(
                _db.session, piece_data(t, title="100% 满减", tags=["Promo", "会员"],
                                        scheduled_at="2030-01-01T20:00:00+08:00"),
                author=author, now=NOW).piece
            _db.session.commit()
            second = content_service.create_piece(
                _db.session, piece_data(t, title="Other", tags=["promo"]), author=author,
                now=NOW).piece
            _db.session.commit()
            assert _db.session.scalar(select(func.count()).select_from(Tag)) == 2
            assert {p.scheduled_at for p in first.posts} == {
                datetime(2030, 1, 1, 12, 0, tzinfo=UTC)}
            content_service.update_piece(_db.session, second, {"body": "v2"}, actor=author,
                                         now=NOW)
            _db.session.commit()
            assert second.version == 2 and len(second.revisions) == 2

            def ids(**kwargs):
                items, total = content_service.list_pieces(
                    _db.session, content_service.PieceFilters(**kwargs))
                return sorted(p.id for p in items), total

            assert ids(q="100%") == ([first.id], 1)
            assert ids(q="%") == ([first.id], 1)
            assert ids(tag="PROMO") == (sorted([first.id, second.id]), 2)
            assert ids(channel_id=t.web.id, tag="会员") == ([first.id], 1)
        finally:
            _db.session.remove()
            _db.drop_all()
            _db.engine.dispose()


def test_a_stale_edit_is_refused_and_changes_nothing(app, db, t, editor, make_user, login):
    piece = _create(db, t, editor)
    client = login(editor)
    page = client.get(f"/pieces/{piece.id}/edit").text
    assert 'name="version" type="hidden" value="1"' in page
    # Someone else saves version 2 meanwhile.
    content_service.update_piece(db.session, piece, {"body": "Their text"},
                                 actor=make_user("editor"), now=NOW)
    db.session.commit()
    response = client.post(f"/pieces/{piece.id}/edit",
                           data=_form(t, body="My text", version="1"))
    assert response.status_code == 409
    assert "version 2" in response.text and "My text" in response.text
    db.session.refresh(piece)
    assert piece.body == "Their text" and piece.version == 2
    ok = client.post(f"/pieces/{piece.id}/edit", data=_form(t, body="My text", version="2"))
    assert ok.status_code == 302


def test_api_patch_version_precondition(db, t, api):
    client = api("editor")
    created = client.post("/api/v1/pieces", json=piece_data(t)).get_json()
    url = f"/api/v1/pieces/{created['id']}"
    assert client.patch(url, json={"body": "v2", "version": 1}).status_code == 200
    stale = client.patch(url, json={"body": "v3", "version": 1})
    assert stale.status_code == 409
    assert stale.get_json()["error"]["code"] == "stale_version"
    assert client.patch(url, json={"version": "2"}).status_code == 422
    assert client.get(url).get_json()["body"] == "v2"


def test_only_mine_filter(app, db, t, editor, make_user, login):
    _create(db, t, editor, title="Mine")
    _create(db, t, make_user("editor"), title="Theirs")
    client = login(editor)
    page = client.get("/pieces/?mine=1").text
    assert "Mine" in page and "Theirs" not in page
