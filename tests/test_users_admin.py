"""Admin user pages (add, role, deactivate) and API tokens (create, revoke)."""

from __future__ import annotations

from contentops.models import ApiToken, AuditEvent, User
from contentops.services import users as user_service

from .conftest import PASSWORD


def test_admin_adds_a_user_with_a_generated_password_shown_once(client, make_user, login, db,
                                                                app):
    login(make_user("admin"))
    response = client.post("/users/new", data={"email": "Li.Na@Example.com", "name": "李娜",
                                                "role": "approver", "password": ""})
    assert response.status_code == 200
    password = response.text.split("data-generated-password>", 1)[1].split("<", 1)[0]
    assert len(password) >= 12
    user = db.session.query(User).filter_by(email="li.na@example.com").one()
    assert user.role == "approver" and user.name == "李娜"
    assert password not in client.get("/users/").text
    # The new user can sign in with it.
    other = app.test_client()
    assert other.post("/login", data={"email": "li.na@example.com",
                                      "password": password}).status_code == 302


def test_add_user_refuses_bad_input_next_to_fields(client, make_user, login, db):
    admin = make_user("admin")
    login(admin)
    dup = client.post("/users/new", data={"email": admin.email, "role": "editor"})
    assert dup.status_code == 422 and 'data-field-error="email"' in dup.text
    bad = client.post("/users/new", data={"email": "nope", "role": "boss", "password": "short"})
    assert bad.status_code == 422
    for name in ("role", "password"):
        assert f'data-field-error="{name}"' in bad.text
    assert db.session.query(User).count() == 1


def test_change_role_and_deactivate(client, make_user, login, db, app):
    admin = make_user("admin")
    editor = make_user("editor")
    login(admin)
    client.post(f"/users/{editor.id}/role", data={"role": "approver"})
    db.session.refresh(editor)
    assert editor.role == "approver"
    _t, plain = user_service.create_token(db.session, editor, "script")
    db.session.commit()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    assert api.get("/api/v1/posts", headers=headers).status_code == 200
    signed_in = app.test_client()
    signed_in.post("/login", data={"email": editor.email, "password": PASSWORD})
    client.post(f"/users/{editor.id}/deactivate")
    db.session.refresh(editor)
    assert editor.active is False
    assert api.get("/api/v1/posts", headers=headers).status_code == 401
    assert signed_in.get("/posts/").status_code == 302  # the session ends too
    refused = app.test_client().post("/login", data={"email": editor.email,
                                                     "password": PASSWORD})
    assert refused.status_code == 200
    client.post(f"/users/{editor.id}/activate")
    db.session.refresh(editor)
    assert editor.active is True
    actions = {e.action for e in db.session.query(AuditEvent)}
    assert {"user.role_changed", "user.deactivated", "user.activated"} <= actions


def test_admin_cannot_lock_themselves_out(client, make_user, login, db):
    admin = make_user("admin")
    login(admin)
    response = client.post(f"/users/{admin.id}/deactivate", follow_redirects=True)
    assert "cannot deactivate yourself" in response.text
    client.post(f"/users/{admin.id}/role", data={"role": "viewer"})
    db.session.refresh(admin)
    assert admin.active and admin.role == "admin"


def test_bad_role_changes_nothing(client, make_user, login, db):
    login(make_user("admin"))
    editor = make_user("editor")
    client.post(f"/users/{editor.id}/role", data={"role": "owner"})
    db.session.refresh(editor)
    assert editor.role == "editor"
    assert client.post("/users/424242/role", data={"role": "viewer"}).status_code == 404


def test_everyone_creates_and_revokes_their_own_tokens(client, make_user, login, db, app):
    user = make_user("viewer")
    login(user)
    page = client.post("/users/me/tokens", data={"name": "报表脚本"})
    assert page.status_code == 200
    plain = page.text.split("data-new-token>", 1)[1].split("<", 1)[0]
    assert plain.startswith("co_")
    token = db.session.query(ApiToken).one()
    assert token.user_id == user.id and token.token_hash != plain
    api = app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    assert api.get("/api/v1/posts", headers=headers).status_code == 200
    listing = client.get("/users/me/tokens").text
    assert "报表脚本" in listing and plain not in listing
    client.post(f"/users/me/tokens/{token.id}/revoke")
    assert api.get("/api/v1/posts", headers=headers).status_code == 401
    assert "Revoked" in client.get("/users/me/tokens").text
    empty = client.post("/users/me/tokens", data={"name": ""})
    assert empty.status_code == 422 and 'data-field-error="name"' in empty.text


def test_nobody_revokes_someone_elses_token_except_admins(client, make_user, login, db):
    owner = make_user("editor")
    token, _plain = user_service.create_token(db.session, owner, "x")
    db.session.commit()
    login(make_user("editor"))
    assert client.post(f"/users/me/tokens/{token.id}/revoke").status_code == 404
    db.session.refresh(token)
    assert token.revoked_at is None
    admin_client = client.application.test_client()
    admin = make_user("admin")
    admin_client.post("/login", data={"email": admin.email, "password": PASSWORD})
    admin_client.post(f"/users/{owner.id}/tokens/{token.id}/revoke")
    db.session.refresh(token)
    assert token.revoked_at is not None


def test_users_page_lists_roles_in_chinese(client, make_user, login):
    login(make_user("admin"))
    page = client.get("/users/", headers={"Accept-Language": "zh-CN"})
    assert "管理员" in page.text and "审批人" in page.text


def test_api_lists_and_revokes_tokens(client, make_user, db):
    owner = make_user("editor")
    first, plain = user_service.create_token(db.session, owner, "ci")
    second, other_plain = user_service.create_token(db.session, owner, "laptop")
    stranger, stranger_plain = user_service.create_token(db.session, make_user("viewer"), "s")
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    listed = client.get("/api/v1/tokens", headers=headers).get_json()
    assert [t["name"] for t in listed] == ["ci", "laptop"]
    assert all("token_hash" not in t and plain not in str(t) for t in listed)
    # Someone else's token looks like no token at all.
    foreign = client.delete(f"/api/v1/tokens/{second.id}",
                            headers={"Authorization": f"Bearer {stranger_plain}"})
    assert foreign.status_code == 404 and foreign.get_json()["error"]["code"] == "not_found"
    revoked = client.delete(f"/api/v1/tokens/{second.id}", headers=headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert client.get("/api/v1/tokens",
                      headers={"Authorization": f"Bearer {other_plain}"}).status_code == 401
    admin_token = user_service.create_token(db.session, make_user("admin"), "a")[1]
    db.session.commit()
    assert client.delete(f"/api/v1/tokens/{stranger.id}", headers={
        "Authorization": f"Bearer {admin_token}"}).status_code == 200
