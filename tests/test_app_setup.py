"""App factory, configuration, database pragmas, accounts and the CLI."""

from __future__ import annotations

import sqlite3

from sqlalchemy import text

from contentops import create_app
from contentops.config import load_settings
from contentops.extensions import db
from contentops.models import ApiToken, User
from contentops.security import token_digest

from .conftest import PASSWORD, make_app


def test_secret_key_is_generated_once_and_kept(tmp_path):
    env = {"CONTENTOPS_INSTANCE_PATH": str(tmp_path / "inst")}
    first = load_settings(env=env)["SECRET_KEY"]
    second = load_settings(env=env)["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "inst" / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_configures_the_app(tmp_path):
    env = {
        "CONTENTOPS_INSTANCE_PATH": str(tmp_path / "i"),
        "CONTENTOPS_SECRET_KEY": "from-env",
        "CONTENTOPS_TIMEZONE": "Europe/Berlin",
        "CONTENTOPS_DATABASE_URL": "postgresql+psycopg://u@db.example/x",
    }
    settings = load_settings(env=env)
    assert settings["SECRET_KEY"] == "from-env"
    assert settings["CONTENTOPS_TIMEZONE"] == "Europe/Berlin"
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    default = load_settings(env={"CONTENTOPS_INSTANCE_PATH": str(tmp_path / "j")})
    assert default["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'j' / 'contentops.db'}"
    assert default["CONTENTOPS_TIMEZONE"] == "Asia/Shanghai"


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(app):
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_foreign_keys_are_enforced(app, db):
    from contentops.models import ContentPiece

    db.session.add(ContentPiece(title="x", author_id=424242))
    try:
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        assert isinstance(exc.orig, sqlite3.IntegrityError)
    else:
        raise AssertionError("a piece with a missing author was stored")


def test_health_reports_database_and_scheduler(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert set(body["scheduler"]) >= {"alive", "last_heartbeat"}


def test_login_logout_and_wrong_password(client, make_user):
    user = make_user("editor")
    bad = client.post("/login", data={"email": user.email, "password": "nope"})
    assert bad.status_code == 200 and "Wrong e-mail address or password" in bad.text
    assert 'value="' + user.email + '"' in bad.text  # what was typed is kept
    ok = client.post("/login?next=/posts", data={"email": user.email, "password": PASSWORD})
    assert ok.status_code == 302 and ok.headers["Location"] == "/posts"
    assert client.get("/profile").status_code == 200
    client.post("/logout")
    assert client.get("/profile").status_code == 302


def test_login_refuses_open_redirects_and_inactive_users(client, make_user):
    user = make_user("viewer")
    response = client.post("/login?next=https://evil.example/",
                           data={"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    inactive = make_user("editor", active=False)
    refused = client.post("/login", data={"email": inactive.email, "password": PASSWORD})
    assert refused.status_code == 200


def test_login_form_errors_are_next_to_the_field(client):
    response = client.post("/login", data={"email": "not-an-email", "password": ""})
    assert response.status_code == 200
    assert 'data-field-error="email"' in response.text
    assert 'data-field-error="password"' in response.text


def test_forms_require_a_csrf_token(tmp_path, make_user):
    app = make_app(tmp_path / "csrf", WTF_CSRF_ENABLED=True)
    with app.app_context():
        db.create_all()
        client = app.test_client()
        page = client.get("/login")
        assert 'name="csrf_token"' in page.text
        response = client.post("/login", data={"email": "a@example.com", "password": "x"})
        assert response.status_code == 400
        assert "expired" in response.text
        db.engine.dispose()


def test_passwords_are_hashed_with_scrypt(app, make_user):
    user = make_user("editor")
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash


def test_cli_init_creates_first_admin_once(tmp_path):
    app = make_app(tmp_path)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "Password" in first.output
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0 and "Password" not in second.output
    with app.app_context():
        assert db.session.query(User).filter_by(role="admin").count() == 1
        db.engine.dispose()


def test_cli_user_add_and_token_create(tmp_path):
    app = make_app(tmp_path)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    added = runner.invoke(args=["user", "add", "ed@example.com", "--role", "editor",
                                "--password", "long enough pw"])
    assert added.exit_code == 0, added.output
    bad_role = runner.invoke(args=["user", "add", "x@example.com", "--role", "boss"])
    assert bad_role.exit_code != 0
    bad_email = runner.invoke(args=["user", "add", "nope", "--role", "editor"])
    assert bad_email.exit_code == 1 and "email" in bad_email.output
    created = runner.invoke(args=["token", "create", "ed@example.com"])
    assert created.exit_code == 0
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("co_")
    with app.app_context():
        stored = db.session.query(ApiToken).one()
        assert stored.token_hash == token_digest(token) and token not in stored.token_hash
        db.engine.dispose()
    client = app.test_client()
    assert client.get("/api/v1/health").status_code == 200
    missing = runner.invoke(args=["token", "create", "nobody@example.com"])
    assert missing.exit_code == 1


def test_create_app_without_config_uses_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTENTOPS_INSTANCE_PATH", str(tmp_path / "envinst"))
    app = create_app()
    assert app.instance_path == str(tmp_path / "envinst")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("envinst/contentops.db")
