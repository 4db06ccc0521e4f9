"""Audiences, styles and campaigns: the service, the admin pages and the JSON API."""

from __future__ import annotations

from datetime import date

import pytest

from contentops.errors import DomainError, ValidationError
from contentops.models import Audience, Campaign, ContentPiece, Style
from contentops.services import taxonomy
from contentops.services import users as user_service


def test_create_update_delete_each_kind(db):
    audience = taxonomy.create_record(db.session, "audience",
                                      {"name": " 新会员 ", "description": "近 30 天注册"})
    assert audience.name == "新会员"
    style = taxonomy.create_record(db.session, "style",
                                   {"name": "亲切", "guidelines": "用“你”称呼读者"})
    campaign = taxonomy.create_record(db.session, "campaign", {
        "name": "双11 大促", "starts_on": "2026-11-01", "ends_on": "2026-11-11",
        "goal": "预热期积累预约", "goal_reads": "30000"})
    db.session.commit()
    assert campaign.starts_on == date(2026, 11, 1) and campaign.goal_reads == 30000
    taxonomy.update_record(db.session, "style", style, {"guidelines": "短句"})
    assert style.name == "亲切" and style.guidelines == "短句"  # untouched keys stay
    assert taxonomy.record_dict(campaign)["ends_on"] == "2026-11-11"
    assert taxonomy.record_dict(style)["guidelines"] == "短句"
    taxonomy.delete_record(db.session, "audience", audience)
    db.session.commit()
    assert db.session.get(Audience, audience.id) is None


@pytest.mark.parametrize("kind,data,field", [
    ("audience", {}, "name"),
    ("audience", {"name": "   "}, "name"),
    ("audience", {"name": "x" * 101}, "name"),
    ("audience", {"name": 5}, "name"),
    ("style", {"name": "s", "guidelines": "x" * 10_001}, "guidelines"),
    ("campaign", {"name": "c", "starts_on": "11/01/2026"}, "starts_on"),
    ("campaign", {"name": "c", "starts_on": "2026-11-11", "ends_on": "2026-11-01"},
     "ends_on"),
    ("campaign", {"name": "c", "goal_reads": "lots"}, "goal_reads"),
    ("campaign", {"name": "c", "goal_reads": -3}, "goal_reads"),
    ("campaign", {"name": "c", "goal_reads": True}, "goal_reads"),
])
def test_bad_input_is_refused_per_field(db, kind, data, field):
    with pytest.raises(ValidationError) as info:
        taxonomy.create_record(db.session, kind, data)
    assert field in info.value.fields
    db.session.rollback()
    assert db.session.query(Audience).count() == 0


def test_names_are_unique_case_insensitively(db):
    taxonomy.create_record(db.session, "campaign", {"name": "Double 11"})
    with pytest.raises(ValidationError) as info:
        taxonomy.create_record(db.session, "campaign", {"name": "double 11"})
    assert "name" in info.value.fields


def test_a_record_in_use_cannot_be_deleted(db, make_user):
    style = taxonomy.create_record(db.session, "style", {"name": "专业"})
    db.session.add(ContentPiece(title="t", author_id=make_user().id, style=style))
    db.session.commit()
    with pytest.raises(DomainError) as info:
        taxonomy.delete_record(db.session, "style", style)
    assert info.value.code == "in_use"
    assert taxonomy.usage_counts(db.session, "style") == {style.id: 1}


# --- Pages ------------------------------------------------------------------------------------

def test_admin_manages_audiences_through_the_pages(client, make_user, login, db):
    login(make_user("admin"))
    assert "No audiences yet" in client.get("/settings/audiences/").text
    created = client.post("/settings/audiences/new",
                          data={"name": "宝妈社群", "description": "母婴群"})
    assert created.status_code == 302
    audience = db.session.query(Audience).one()
    listing = client.get("/settings/audiences/").text
    assert "宝妈社群" in listing and "was added" in listing
    edit = client.get(f"/settings/audiences/{audience.id}")
    assert edit.status_code == 200 and "母婴群" in edit.text
    client.post(f"/settings/audiences/{audience.id}", data={"name": "宝妈 1 群",
                                                           "description": ""})
    db.session.refresh(audience)
    assert audience.name == "宝妈 1 群" and audience.description == ""
    client.post(f"/settings/audiences/{audience.id}/delete")
    assert db.session.query(Audience).count() == 0


def test_pages_show_errors_next_to_fields_and_store_nothing(client, make_user, login, db):
    login(make_user("admin"))
    response = client.post("/settings/campaigns/new", data={
        "name": "", "starts_on": "2026-11-11", "ends_on": "2026-11-01", "goal_reads": "x"})
    assert response.status_code == 422
    for name in ("name", "ends_on", "goal_reads"):
        assert f'data-field-error="{name}"' in response.text
    assert 'value="2026-11-11"' in response.text  # what was typed is kept
    assert db.session.query(Campaign).count() == 0


def test_style_guidelines_and_campaign_dates_round_trip(client, make_user, login, db):
    login(make_user("admin"))
    client.post("/settings/styles/new", data={"name": "幽默", "guidelines": "一个梗就够"})
    style = db.session.query(Style).one()
    assert style.guidelines == "一个梗就够"
    client.post("/settings/campaigns/new", data={"name": "年货节", "starts_on": "2026-12-20",
                                                 "ends_on": "2027-01-20", "goal": "50 个询单"})
    campaign = db.session.query(Campaign).one()
    page = client.get(f"/settings/campaigns/{campaign.id}").text
    assert 'value="2026-12-20"' in page and "50 个询单" in page


def test_deleting_a_used_record_explains_why_not(client, make_user, login, db):
    admin = make_user("admin")
    audience = taxonomy.create_record(db.session, "audience", {"name": "沉睡用户"})
    db.session.add(ContentPiece(title="t", author_id=admin.id, audience=audience))
    db.session.commit()
    login(admin)
    response = client.post(f"/settings/audiences/{audience.id}/delete", follow_redirects=True)
    assert "cannot be deleted" in response.text
    assert db.session.get(Audience, audience.id) is not None


def test_settings_overview_in_chinese(client, make_user, login):
    login(make_user("admin"))
    page = client.get("/settings/", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "受众" in page.text and "风格" in page.text


def test_unknown_ids_are_404(client, make_user, login):
    login(make_user("admin"))
    assert client.get("/settings/styles/424242").status_code == 404
    assert client.post("/settings/styles/424242/delete").status_code == 404


# --- API --------------------------------------------------------------------------------------

@pytest.fixture
def bearer(db, make_user):
    def make(role: str) -> dict:
        _t, plain = user_service.create_token(db.session, make_user(role), "t")
        db.session.commit()
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.mark.parametrize("collection,extra", [
    ("audiences", {}), ("styles", {"guidelines": "短句"}),
    ("campaigns", {"starts_on": "2026-11-01", "ends_on": "2026-11-11", "goal_reads": 100}),
])
def test_api_create_list_show_update_delete(client, bearer, collection, extra):
    admin = bearer("admin")
    created = client.post(f"/api/v1/{collection}",
                          json={"name": "One", "description": "d", **extra}, headers=admin)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["name"] == "One" and body["description"] == "d"
    for key, value in extra.items():
        assert body[key] == value
    viewer = bearer("viewer")
    listed = client.get(f"/api/v1/{collection}", headers=viewer).get_json()
    assert [r["name"] for r in listed] == ["One"]
    shown = client.get(f"/api/v1/{collection}/{body['id']}", headers=viewer)
    assert shown.get_json() == body
    patched = client.patch(f"/api/v1/{collection}/{body['id']}", json={"name": "Two"},
                           headers=admin)
    assert patched.status_code == 200 and patched.get_json()["name"] == "Two"
    assert client.delete(f"/api/v1/{collection}/{body['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/{collection}/{body['id']}", headers=viewer).status_code == 404


def test_api_errors_have_the_documented_shape(client, bearer):
    admin = bearer("admin")
    bad = client.post("/api/v1/campaigns", json={"name": "", "ends_on": 5}, headers=admin)
    assert bad.status_code == 422
    error = bad.get_json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == {"name", "ends_on"}
    not_json = client.post("/api/v1/audiences", data="name=x", headers=admin)
    assert not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "bad_request"
    assert client.post("/api/v1/styles", json={"name": "x"},
                       headers=bearer("editor")).status_code == 403
    zh = client.post("/api/v1/audiences", json={}, headers={**admin,
                                                            "Accept-Language": "zh-CN"})
    assert zh.get_json()["error"]["fields"]["name"] == ["此字段为必填项。"] or \
        zh.get_json()["error"]["fields"]["name"][0] != "This field is required."
