"""Service access tokens: one per credential for every process, one refresh at a time,
renewed before expiry, replaced once when the service refuses one, encrypted at rest."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from contentops.channels.base import PermanentError, TransientError
from contentops.channels.tokens import MemoryTokenStore
from contentops.models import AccessToken
from contentops.services.access_tokens import DatabaseTokenStore

KEY = "wechat_mp:wx123"
SECRET = "test-secret-key"


class Service:
    """Hands out numbered tokens, slowly, and counts the calls (as /cgi-bin/token would)."""

    def __init__(self, expires_in: int = 7200, delay: float = 0.0) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.delay = delay
        self._lock = threading.Lock()

    def fetch(self) -> tuple[str, int]:
        time.sleep(self.delay)
        with self._lock:
            self.calls += 1
            return f"token-{self.calls}", self.expires_in


def race(stores: list[DatabaseTokenStore], service: Service) -> list[str]:
    """Every store asks for the token at once, each from its own thread."""
    got: list[str] = []
    threads = [threading.Thread(target=lambda s=s: got.append(s.get(KEY, service.fetch)))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_memory_store_caches_renews_and_replaces_a_refused_token():
    now = [1000.0]
    store = MemoryTokenStore(clock=lambda: now[0])
    service = Service(expires_in=7200)
    assert store.get(KEY, service.fetch) == "token-1"
    assert store.get(KEY, service.fetch) == "token-1"
    now[0] += 7200 - 299  # inside the renewal margin
    assert store.get(KEY, service.fetch) == "token-2"
    assert store.get(KEY, service.fetch, invalid="token-2") == "token-3"
    assert store.get(KEY, service.fetch, invalid="token-2") == "token-3"  # already replaced
    assert service.calls == 3


@pytest.fixture
def engines(tmp_path, db):
    """Two engines on the app's database file: two processes' views of one database."""
    url = db.engine.url
    made = [create_engine(url), create_engine(url)]
    yield made
    for e in made:
        e.dispose()


def test_processes_share_one_token_and_refresh_once_when_racing(engines):
    service = Service(delay=0.3)
    stores = [DatabaseTokenStore(e, SECRET, poll_s=0.05) for e in engines]
    assert race(stores * 3, service) == ["token-1"] * 6
    assert service.calls == 1
    # Later calls read it from the database without asking the service.
    assert stores[1].get(KEY, service.fetch) == "token-1"
    assert service.calls == 1


def test_a_refused_token_is_replaced_once_across_processes(engines):
    service = Service()
    a, b = (DatabaseTokenStore(e, SECRET) for e in engines)
    old = a.get(KEY, service.fetch)
    assert a.get(KEY, service.fetch, invalid=old) == "token-2"
    # The other process saw the same refusal: it gets the new token, no second refresh.
    assert b.get(KEY, service.fetch, invalid=old) == "token-2"
    assert service.calls == 2


def test_renewed_before_expiry(engines):
    now = [datetime(2026, 12, 6, 8, tzinfo=UTC)]
    service = Service(expires_in=7200)
    store = DatabaseTokenStore(engines[0], SECRET, clock=lambda: now[0])
    assert store.get(KEY, service.fetch) == "token-1"
    now[0] += timedelta(seconds=7200 - 600)
    assert store.get(KEY, service.fetch) == "token-1"
    now[0] += timedelta(seconds=301)  # less than 5 minutes left
    assert store.get(KEY, service.fetch) == "token-2"


def test_stored_encrypted_and_unreadable_after_a_key_change(engines):
    service = Service()
    DatabaseTokenStore(engines[0], SECRET).get(KEY, service.fetch)
    with engines[0].connect() as conn:
        raw = conn.execute(select(AccessToken.token)).scalar_one()
    assert "token-1" not in raw
    # A new secret key cannot read the old token: it fetches a fresh one instead of failing.
    assert DatabaseTokenStore(engines[1], "another-key").get(KEY, service.fetch) == "token-2"


def test_a_failed_refresh_releases_the_lease_and_keeps_no_token(engines):
    store = DatabaseTokenStore(engines[0], SECRET, wait_s=0.5, poll_s=0.05)

    def refused() -> tuple[str, int]:
        raise PermanentError("The AppSecret is wrong.")

    with pytest.raises(PermanentError):
        store.get(KEY, refused)
    service = Service()
    assert store.get(KEY, service.fetch) == "token-1"  # not blocked by a stale lease


def test_a_lease_held_by_a_live_refresher_makes_others_wait_then_a_dead_one_expires(engines):
    now = [datetime(2026, 12, 6, 8, tzinfo=UTC)]
    a = DatabaseTokenStore(engines[0], SECRET, clock=lambda: now[0], wait_s=0.3, poll_s=0.05)
    assert a._take_lease(KEY)  # a process that took the lease and then died
    service = Service()
    with pytest.raises(TransientError):
        a.get(KEY, service.fetch)
    assert service.calls == 0
    now[0] += timedelta(seconds=31)  # the dead process's lease has run out
    assert a.get(KEY, service.fetch) == "token-1"


@pytest.mark.postgres
def test_processes_share_one_token_on_postgresql(tmp_path, pg_url):
    from flask_migrate import upgrade

    from contentops.extensions import db
    from tests.conftest import make_app

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        upgrade()
        db.session.execute(AccessToken.__table__.delete())
        db.session.commit()
        db.engine.dispose()
    engines = [create_engine(pg_url), create_engine(pg_url)]
    try:
        service = Service(delay=0.2)
        stores = [DatabaseTokenStore(e, SECRET, poll_s=0.05) for e in engines]
        assert race(stores * 2, service) == ["token-1"] * 4
        assert service.calls == 1
    finally:
        for e in engines:
            e.dispose()
