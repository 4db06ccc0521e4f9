"""Shared fixtures: an app on a fresh SQLite file, users per role, PostgreSQL, a browser."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from contentops import create_app
from contentops.extensions import db as _db
from contentops.models import User
from contentops.security import hash_password

PG_URL = os.environ.get("CONTENTOPS_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("CONTENTOPS_REQUIRE_PG") == "1"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct horse battery"


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    The `app` fixture keeps an app context pushed for the test body; without this, requests
    would share its `g` (cached locale, logged-in user) and its database session.
    """

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        with contextlib.suppress(RuntimeError):  # RuntimeError: no app context in this test
            _db.session.expire_all()
        return response


def make_app(tmp_path: Path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "WTF_CSRF_ENABLED": False,
        "CONTENTOPS_SCHEDULER": False,
        "CONTENTOPS_BASE_URL": "http://testserver",
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        _db.create_all()
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    """scrypt is slow on purpose; tests hash the shared password once per run."""
    return hash_password(PASSWORD)


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def factory(role: str = "editor", *, email: str | None = None, name: str | None = None,
                active: bool = True) -> User:
        counter["n"] += 1
        email = email or f"{role}{counter['n']}@example.com"
        user = User(email=email, name=name or f"{role.title()} {counter['n']}", role=role,
                    password_hash=password_hash(), active=active,
                    notification_prefs={})
        db.session.add(user)
        db.session.commit()
        return user

    return factory


@pytest.fixture
def make(db):
    """Test data built through the services (tests/builders.py)."""
    from .builders import Make

    return Make(db.session)


@pytest.fixture
def login(client):
    def do_login(user: User, c=None):
        c = c or client
        response = c.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.data[:500]
        return c

    return do_login


# --- PostgreSQL -----------------------------------------------------------------------------

def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    problem = _pg_available()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"CONTENTOPS_REQUIRE_PG=1 but PostgreSQL does not answer at {PG_URL}: "
                        f"{problem}")
        pytest.skip(f"no PostgreSQL server answers at {PG_URL} ({problem})")
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_server_url else "?"
    url = f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- Live server and browser ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def live_server(app):
    server = LiveServer(app).start()
    yield server
    server.stop()


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CONTENTOPS_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if IN_CI:
            pytest.fail("CI: Debian's chromium is required for browser tests but was not found")
        pytest.skip("no Chromium found (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # Pages run under the app's real Content-Security-Policy (no eval): a
    # page.wait_for_function predicate that has to poll is compiled with eval in the page and
    # refused, so wait for a selector instead (e.g. '#calendar[data-loading="0"]').
    context = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def browser_login(page, live_server):
    def do_login(user: User) -> None:
        page.goto(f"{live_server.url}/login")
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)

    return do_login


# --- fake services shared by several test modules ------------------------------------------

@pytest.fixture
def wechat_mp_fake():
    """The loopback 公众号 API (tests/fakes/wechat_mp.py), released and stopped afterwards."""
    from .fakes.wechat_mp import FakeWeChatMP

    service = FakeWeChatMP().start()
    yield service
    service.release.set()
    service.stop()
