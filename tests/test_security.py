"""Security headers, cookie flags, sign-in rate limits and password rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contentops.config import load_settings
from contentops.models import LoginFailure, User
from contentops.services import login_throttle as throttle
from contentops.services import users as user_service
from contentops.services.passwords import password_errors
from contentops.web import auth as auth_view

from .conftest import PASSWORD, make_app
from .feedback_fixtures import make_post

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1]
            for part in (p.strip() for p in header.split(";")) if part}


# --- Headers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/api/v1/health", "/static/js/app.js", "/nowhere"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()  # a static file is streamed from an open file
    csp = _csp(response)
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no nonces, no eval
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'self'"
    assert csp["form-action"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]


def test_public_post_pages_cannot_be_framed_either(client, db):
    make_post(db.session, slug="framed")
    db.session.commit()
    response = client.get("/p/framed")
    assert response.status_code == 200
    assert _csp(response)["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    # Markdown bodies may show images from other sites.
    assert "https:" in _csp(response)["img-src"].split()


def test_tracking_keeps_its_stricter_referrer_policy(client):
    response = client.get("/t/o/1/nosuch.gif")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Content-Security-Policy" in response.headers


_SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*["']""", re.IGNORECASE)


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")),
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script(template):
    """The CSP refuses inline script, so none may be written: behaviour goes in static/js."""
    source = template.read_text(encoding="utf-8")
    for match in _SCRIPT.finditer(source):
        attrs = match.group(1)
        assert "src=" in attrs or 'type="application/json"' in attrs, (
            f"{template.name}: inline <script{attrs}> (move it to static/js)")
    assert not _HANDLER.search(source), f"{template.name}: on* attribute (use a listener)"
    assert "javascript:" not in source.lower()


# --- Cookies ----------------------------------------------------------------------------------

def _cookie(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def _sign_in_cookies(tmp_path, base_url: str):
    app = make_app(tmp_path, CONTENTOPS_BASE_URL=base_url)
    from contentops.extensions import db

    with app.app_context():
        db.create_all()
        user, _ = user_service.create_user(db.session, "cookie@example.com", "editor",
                                           password=PASSWORD)
        db.session.commit()
        response = app.test_client().post("/login", data={
            "email": "cookie@example.com", "password": PASSWORD, "remember": "y"})
        assert response.status_code == 302
        cookies = _cookie(response, "session"), _cookie(response, "remember_token")
        db.session.remove()
        db.engine.dispose()
    return cookies


def test_cookies_are_secure_httponly_and_lax_over_https(tmp_path):
    for cookie in _sign_in_cookies(tmp_path, "https://contentops.example.com"):
        assert "; Secure" in cookie
        assert "; HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def test_cookies_are_not_marked_secure_over_plain_http(tmp_path):
    for cookie in _sign_in_cookies(tmp_path, "http://127.0.0.1:5000"):
        assert "; Secure" not in cookie  # the browser would drop them on http
        assert "; HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def test_secure_cookie_setting_follows_the_base_url_unless_overridden(tmp_path):
    def settings(**env):
        return load_settings({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"}, env=env)

    assert settings(CONTENTOPS_BASE_URL="https://a.example")["SESSION_COOKIE_SECURE"] is True
    assert settings(CONTENTOPS_BASE_URL="https://a.example")["REMEMBER_COOKIE_SECURE"] is True
    assert settings(CONTENTOPS_BASE_URL="http://a.example")["SESSION_COOKIE_SECURE"] is False
    assert settings()["REMEMBER_COOKIE_HTTPONLY"] is True
    forced = settings(CONTENTOPS_BASE_URL="http://a.example", CONTENTOPS_SECURE_COOKIES="1")
    assert forced["SESSION_COOKIE_SECURE"] is True and forced["REMEMBER_COOKIE_SECURE"] is True
    off = settings(CONTENTOPS_BASE_URL="https://a.example", CONTENTOPS_SECURE_COOKIES="0")
    assert off["SESSION_COOKIE_SECURE"] is False


# --- Sign-in rate limits ----------------------------------------------------------------------

def _attempt(client, email: str, password: str, ip: str):
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


@pytest.fixture
def clock(monkeypatch):
    """The sign-in view's clock, moved by the test."""
    state = {"now": NOW}
    monkeypatch.setattr(auth_view, "utcnow", lambda: state["now"])
    return state


def test_an_account_is_limited_even_when_each_guess_comes_from_another_address(
        client, make_user, clock):
    victim = make_user("editor")
    other = make_user("editor")
    limit = throttle.LIMITS["account"]
    for i in range(limit):
        response = _attempt(client, victim.email, f"wrong guess {i}", f"203.0.113.{i + 1}")
        assert response.status_code == 200
        assert b"Wrong e-mail address or password." in response.data
    # Even the right password is refused now, from a fresh address: 429 with a clear message.
    blocked = _attempt(client, victim.email, PASSWORD, "198.51.100.7")
    assert blocked.status_code == 429
    assert b"Too many sign-in attempts; try again in 15 minutes." in blocked.data
    assert int(blocked.headers["Retry-After"]) == 15 * 60
    # E-mail case does not make a new account counter.
    assert _attempt(client, victim.email.upper(), PASSWORD, "198.51.100.8").status_code == 429
    # Other accounts are not affected.
    assert _attempt(client, other.email, PASSWORD, "203.0.113.1").status_code == 302


def test_an_address_is_limited_across_accounts(client, make_user, clock):
    users = [make_user("viewer") for _ in range(6)]
    limit = throttle.LIMITS["ip"]
    for i in range(limit):
        # Spread over accounts (and unknown ones) so no account reaches its own limit.
        email = users[i % 6].email if i % 4 else f"nobody{i}@example.com"
        clock["now"] = NOW + timedelta(seconds=i)
        assert _attempt(client, email, "wrong password", "192.0.2.10").status_code == 200
    blocked = _attempt(client, users[0].email, PASSWORD, "192.0.2.10")
    assert blocked.status_code == 429
    assert b"data-testid=\"login-throttled\"" in blocked.data
    # The same account signs in from another address.
    assert _attempt(client, users[0].email, PASSWORD, "192.0.2.11").status_code == 302


def test_limits_lift_when_the_window_has_passed(client, make_user, clock):
    user = make_user("editor")
    for i in range(throttle.LIMITS["account"]):
        clock["now"] = NOW + timedelta(minutes=i)
        _attempt(client, user.email, "wrong password", "192.0.2.20")
    clock["now"] = NOW + timedelta(minutes=10)
    blocked = _attempt(client, user.email, PASSWORD, "192.0.2.20")
    assert blocked.status_code == 429
    # The first failure leaves the window at NOW + 15 min: 5 minutes from now.
    assert b"try again in 5 minutes" in blocked.data
    clock["now"] = NOW + timedelta(minutes=15, seconds=1)
    assert _attempt(client, user.email, PASSWORD, "192.0.2.20").status_code == 302


def test_a_successful_sign_in_clears_the_account_counter(client, make_user, clock, db, app):
    user = make_user("editor")
    for _ in range(throttle.LIMITS["account"] - 1):
        _attempt(client, user.email, "wrong password", "192.0.2.30")
    assert _attempt(client, user.email, PASSWORD, "192.0.2.30").status_code == 302
    client.post("/logout")
    account = throttle.account_subject(app.config["SECRET_KEY"], user.email)
    assert throttle.failures(db.session, account, now=NOW) == 0
    for _ in range(throttle.LIMITS["account"] - 1):
        assert _attempt(client, user.email, "wrong password", "192.0.2.30").status_code == 200
    assert _attempt(client, user.email, PASSWORD, "192.0.2.30").status_code == 302


def test_counters_store_keyed_hashes_not_addresses_or_e_mails(client, make_user, clock, db):
    user = make_user("editor")
    _attempt(client, user.email, "wrong password", "192.0.2.40")
    rows = db.session.scalars(select(LoginFailure)).all()
    assert {r.scope for r in rows} == {"account", "ip"}
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row.key)
        assert "192.0.2.40" not in row.key and user.email not in row.key


def test_the_throttle_message_is_translated(client, make_user, clock):
    user = make_user("editor")
    for _ in range(throttle.LIMITS["account"]):
        _attempt(client, user.email, "wrong password", "192.0.2.50")
    client.set_cookie("lang", "zh")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "192.0.2.50"},
                           headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 429
    assert "登录尝试次数过多，请 15 分钟后再试。" in response.get_data(as_text=True)


def test_ipv6_clients_are_counted_by_their_64_prefix():
    assert throttle.client_key("2001:db8:1:2::1") == throttle.client_key("2001:db8:1:2:ffff::9")
    assert throttle.client_key("2001:db8:1:2::1") != throttle.client_key("2001:db8:1:3::1")
    assert throttle.client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle.client_key("192.0.2.1") == "192.0.2.1"


def test_wrong_api_tokens_are_limited_per_address_but_valid_tokens_still_work(client, make_user,
                                                                               db):
    user = make_user("viewer")
    _token, plain = user_service.create_token(db.session, user, "script")
    db.session.commit()
    env = {"REMOTE_ADDR": "192.0.2.60"}
    for i in range(throttle.LIMITS["token"]):
        response = client.get("/api/v1/tokens", environ_base=env,
                              headers={"Authorization": f"Bearer co_wrong{i}"})
        assert response.status_code == 401
    refused = client.get("/api/v1/tokens", environ_base=env,
                         headers={"Authorization": "Bearer co_wrong"})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_attempts"
    assert "try again in 15 minutes" in refused.get_json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    ok = client.get("/api/v1/tokens", environ_base=env,
                    headers={"Authorization": f"Bearer {plain}"})
    assert ok.status_code == 200
    other = client.get("/api/v1/tokens", environ_base={"REMOTE_ADDR": "192.0.2.61"},
                       headers={"Authorization": "Bearer co_wrong"})
    assert other.status_code == 401


def test_old_failures_are_pruned(db):
    s = throttle.subject("k", "ip", "192.0.2.70")
    throttle.record_failure(db.session, [s], now=NOW)
    throttle.record_failure(db.session, [s], now=NOW + timedelta(minutes=20))
    db.session.commit()
    assert db.session.query(LoginFailure).count() == 1


# --- Password rules ---------------------------------------------------------------------------

def test_password_rules():
    assert password_errors("short") == ["Use at least 10 characters."]
    assert password_errors("x" * 201) == ["Use at most 200 characters."]
    assert password_errors("Li.Na@Example.com", "li.na@example.com") == [
        "Do not use your e-mail address as your password."]
    assert password_errors("li.na.wang.", "li.na.wang.@example.com") == [
        "Do not use your e-mail address as your password."]
    assert password_errors("Password123") == [
        "This password is among the most common ones; choose another."]
    assert password_errors("1234567890") != []
    assert password_errors("woaini1314") != []
    assert password_errors("qwertyuiop", "a@example.com") != []
    assert password_errors("plum tea at nine", "a@example.com") == []
    assert password_errors(PASSWORD, "a@example.com") == []


def test_admin_form_refuses_weak_passwords(client, make_user, login, db):
    login(make_user("admin"))
    common = client.post("/users/new", data={"email": "new@example.com", "role": "editor",
                                             "password": "qwertyuiop"})
    assert common.status_code == 422
    assert b"among the most common" in common.data
    same = client.post("/users/new", data={"email": "longaddress1@example.com", "role": "editor",
                                           "password": "longaddress1@example.com"})
    assert same.status_code == 422
    assert b"Do not use your e-mail address" in same.data
    assert db.session.scalar(select(User).where(User.email == "new@example.com")) is None
    good = client.post("/users/new", data={"email": "new@example.com", "role": "editor",
                                           "password": "plum tea at nine"})
    assert good.status_code == 200 and db.session.scalar(
        select(User).where(User.email == "new@example.com")) is not None


def test_profile_refuses_weak_passwords(client, make_user, login, db):
    user = make_user("viewer", email="mei.chen.wang@example.com")
    login(user)
    old_hash = user.password_hash
    for weak, message in [("mei.chen.wang@example.com", b"Do not use your e-mail address"),
                          ("Password123", b"among the most common"),
                          ("short", b"Use at least 10 characters.")]:
        response = client.post("/profile", data={"locale": "", "timezone": "",
                                                 "new_password": weak})
        assert response.status_code == 200 and message in response.data, weak
        assert db.session.get(User, user.id).password_hash == old_hash
    client.post("/profile", data={"locale": "", "timezone": "", "new_password": "plum tea at nine"})
    assert db.session.get(User, user.id).password_hash != old_hash


def test_cli_user_add_refuses_weak_passwords(tmp_path):
    app = make_app(tmp_path)
    from contentops.extensions import db

    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    common = runner.invoke(args=["user", "add", "ed@example.com", "--role", "editor",
                                 "--password", "password123"])
    assert common.exit_code != 0 and "most common" in common.output
    same = runner.invoke(args=["user", "add", "edwardlong@example.com", "--role", "editor",
                               "--password", "EdwardLong@example.com"])
    assert same.exit_code != 0 and "e-mail address" in same.output
    ok = runner.invoke(args=["user", "add", "ed@example.com", "--role", "editor",
                             "--password", "plum tea at nine"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        db.engine.dispose()


def test_set_password_applies_the_rules(db, make_user):
    from contentops.errors import ValidationError

    user = make_user("editor", email="zhang.wei.long@example.com")
    with pytest.raises(ValidationError):
        user_service.set_password(db.session, user, "ZHANG.WEI.LONG@example.com")
    with pytest.raises(ValidationError):
        user_service.set_password(db.session, user, "iloveyou123")


def test_behind_a_trusted_proxy_the_forwarded_client_address_is_counted(tmp_path, clock):
    from contentops.extensions import db

    app = make_app(tmp_path, CONTENTOPS_TRUSTED_PROXIES=1)
    with app.app_context():
        db.create_all()
        app.test_client().post("/login", data={"email": "x@example.com", "password": "wrong one"},
                               environ_base={"REMOTE_ADDR": "10.0.0.1"},
                               headers={"X-Forwarded-For": "198.51.100.9"})
        keys = set(db.session.scalars(select(LoginFailure.key).where(LoginFailure.scope == "ip")))
        secret = app.config["SECRET_KEY"]
        assert keys == {throttle.ip_subject(secret, "198.51.100.9").key}
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgres
def test_limits_count_the_same_on_postgresql(tmp_path, pg_url):
    from contentops.extensions import db

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        db.create_all()
        account = throttle.subject("k", "account", "a@example.com")
        for i in range(throttle.LIMITS["account"]):
            assert throttle.retry_after(db.session, [account], now=NOW) is None
            throttle.record_failure(db.session, [account], now=NOW + timedelta(seconds=i))
            db.session.commit()
        later = NOW + timedelta(minutes=1)
        assert throttle.retry_after(db.session, [account], now=later) == 14 * 60
        assert throttle.retry_after(db.session, [account],
                                    now=NOW + timedelta(minutes=15, seconds=1)) is None
        throttle.clear(db.session, account)
        db.session.commit()
        assert throttle.failures(db.session, account, now=NOW) == 0
        db.session.remove()
        db.engine.dispose()
