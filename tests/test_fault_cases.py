"""Engine fault cases (issue #13): real scheduler processes (or the real in-process
APScheduler runner), real loopback receivers, real databases.

Cases and where they live:
- SIGKILL mid-burst, SQLite, idempotent channel: tests/test_scheduler_runner.py
  (test_scheduler_killed_mid_burst_loses_and_duplicates_nothing) — not repeated here;
- SIGKILL mid-burst, PostgreSQL, idempotent channel; SIGKILL mid-burst, non-idempotent channel
  (every post in doubt `unknown`, settled by a person in the UI); reconcile by lookup is
  tests/test_publishing_engine.py::test_reconcile_proves_publication_through_find_existing;
- a 2xx that arrives after the channel timeout (idempotent and not), one that trickles in
  past it; 429 with Retry-After (seconds and HTTP-date); connection reset (idempotent and
  not) and connection refused; a SQLite write lock held for 10 s mid-burst; a PostgreSQL
  restart mid-burst (a private throwaway cluster); schedulers down for longer than the grace
  window (posts `missed`, listed, one click to send or drop).

"0 lost" = every post ends published and reached the receiver; "0 duplicated" = one effect
per post at the receiver (for idempotent channels the receiver dedupes on Idempotency-Key, so
a re-send with the same key is allowed and counted apart; for non-idempotent channels there
must be no second delivery at all).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contentops.channels.base import InDoubt, OutgoingPost, TransientError
from contentops.channels.registry import adapter_class
from contentops.extensions import db as _db
from contentops.models import Post, PublishAttempt
from contentops.models.review import Notification
from contentops.reasons import reason_text
from contentops.scheduler import runner as runner_mod
from contentops.services import publishing
from contentops.services.channels import build_adapter
from contentops.timeutil import utcnow

from .conftest import PASSWORD, REQUIRE_PG, free_port, make_app
from .engine_support import SECRET_KEY, Receiver, make_channel, make_post, make_posts
from .fakes.wecom import FakeWeCom
from .test_scheduler_runner import _scheduler_process, _stop, count_status, wait_for


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


@pytest.fixture
def runner(app):
    """The real APScheduler runner in this process, with short timers for faults."""
    app.config.update(CONTENTOPS_POLL_SECONDS=0.2, CONTENTOPS_HEARTBEAT_SECONDS=1,
                      CONTENTOPS_PUBLISH_WORKERS=4, CONTENTOPS_RETRY_BASE_SECONDS=0.2,
                      CONTENTOPS_REAP_SECONDS=0.5, CONTENTOPS_RECONCILE_SECONDS=0.5,
                      CONTENTOPS_LEASE_SECONDS=30)
    started = []

    def start():
        r = runner_mod.SchedulerRunner(app).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.shutdown()


def fresh(post_id: int) -> Post:
    _db.session.rollback()
    _db.session.expire_all()
    return _db.session.get(Post, post_id)


def outcomes(post_id: int) -> list[str]:
    _db.session.rollback()
    return list(_db.session.scalars(select(PublishAttempt.outcome).where(
        PublishAttempt.post_id == post_id).order_by(PublishAttempt.id)))


def status_counts() -> Counter:
    _db.session.rollback()
    return Counter(dict(_db.session.execute(
        select(Post.status, func.count(Post.id)).group_by(Post.status)).all()))


def wecom_channel(session, fake: FakeWeCom, **config):
    return make_channel(session, "wecom_robot",
                        config={"webhook_url": fake.webhook_url(), "msgtype": "text", **config})


def wecom_titles(fake: FakeWeCom) -> Counter:
    """How many times each post (by title, the first line) reached the group."""
    return Counter(m["text"]["content"].split("\n", 1)[0].strip() for m in fake.received)


def in_doubt_waits_for_a_person(post_id: int, author) -> None:
    post = fresh(post_id)
    assert post.status == "unknown", (post.status, reason_text(post.last_error))
    assert post.next_attempt_at is None  # not picked up again by anything automatic
    assert "not known whether" in reason_text(post.last_error)
    told = _db.session.scalars(select(Notification).where(
        Notification.user_id == author.id)).all()
    assert any(n.params.get("post_id") == post_id and n.params.get("state") == "unknown"
               for n in told), [n.params for n in told]


# --- Late 2xx, resets, refused connections, 429 -------------------------------------------

def test_webhook_2xx_after_the_timeout_is_resent_with_the_same_key_once(db, author, runner):
    with Receiver(faults=[{"late": 1.6}]) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret",
                                                   "timeout_s": 1})
        post = make_post(db.session, channel, author, utcnow())
        runner()
        assert wait_for(lambda: fresh(post.id).status == "published", 10), \
            reason_text(fresh(post.id).last_error)
        key = publishing.idempotency_key(post)
        assert [d["key"] for d in recv.deliveries] == [key, key]
        assert len(recv.effects) == 1  # the receiver counted the late-answered one once
    assert outcomes(post.id) == ["transient", "published"]
    assert fresh(post.id).external_id == f"r-{post.id}"


def test_robot_2xx_after_the_timeout_is_in_doubt_not_resent(db, client, login, author,
                                                             runner):
    """A non-idempotent channel cannot be asked again blindly: the group may already show
    the message. The post becomes `unknown` and a person confirms it in the UI."""
    fake = FakeWeCom().start()
    try:
        fake.mode, fake.delay = "timeout", 1.6  # answers 200 ok, but after 1.6 s
        channel = wecom_channel(db.session, fake, timeout_s=1)
        post = make_post(db.session, channel, author, utcnow(), title="晚到的回复")
        runner()
        assert wait_for(lambda: fresh(post.id).next_attempt_at is None
                        and fresh(post.id).status == "unknown", 10), \
            (fresh(post.id).status, reason_text(fresh(post.id).last_error))
        time.sleep(1.0)  # any blind re-send would have happened by now
        assert len(fake.raw) == 1 and len(fake.received) == 1
        in_doubt_waits_for_a_person(post.id, author)
        # The person sees it among the posts in doubt and confirms it with one form.
        login(author)
        page = client.get("/publishing/").get_data(as_text=True)
        assert 'data-section="unknown"' in page and "晚到的回复" in page
        detail = client.get(f"/publishing/posts/{post.id}").get_data(as_text=True)
        assert 'data-action="mark-published"' in detail
        r = client.post(f"/publishing/posts/{post.id}/mark-published", data={"url": ""})
        assert r.status_code == 302
        assert fresh(post.id).status == "published"
        assert len(fake.raw) == 1
    finally:
        fake.stop()


def test_webhook_connection_reset_after_processing_is_counted_once(db, author, runner):
    with Receiver(faults=[{"reset": "after"}, {"reset": "before"}]) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        post = make_post(db.session, channel, author, utcnow())
        runner()
        assert wait_for(lambda: fresh(post.id).status == "published", 10), \
            reason_text(fresh(post.id).last_error)
        key = publishing.idempotency_key(post)
        assert [d["key"] for d in recv.deliveries] == [key] * 3
        assert [d["status"] for d in recv.deliveries] == [200, "reset", 200]
        assert len(recv.effects) == 1
    assert outcomes(post.id) == ["transient", "transient", "published"]
    first = db.session.scalars(select(PublishAttempt).where(
        PublishAttempt.post_id == post.id).order_by(PublishAttempt.id)).first()
    assert "Could not connect" in reason_text(first.error)


def test_robot_connection_reset_is_in_doubt_and_refused_is_retried(db, client, login,
                                                                  author, runner):
    """A reset after the request went out may hide a delivered message: `unknown`, and the
    person decides (here: it did not arrive, so one click on Retry sends it, once). A refused
    connection proves nothing was sent: plain retries."""
    fake = FakeWeCom().start()
    dead_port = free_port()  # nothing listens there
    try:
        fake.mode = "drop"
        channel = wecom_channel(db.session, fake)
        refused = make_channel(db.session, "wecom_robot", max_retries=2, config={
            "webhook_url": f"http://127.0.0.1:{dead_port}/cgi-bin/webhook/send?key=k",
            "msgtype": "text"})
        post = make_post(db.session, channel, author, utcnow(), title="连接被重置")
        other = make_post(db.session, refused, author, utcnow(), title="连接被拒绝")
        runner()
        assert wait_for(lambda: fresh(post.id).status == "unknown"
                        and fresh(post.id).next_attempt_at is None, 10), \
            (fresh(post.id).status, reason_text(fresh(post.id).last_error))
        assert wait_for(lambda: fresh(other.id).status == "failed", 10), fresh(other.id).status
        assert outcomes(other.id) == ["transient"] * 3  # retried, never parked in doubt
        assert "Could not connect" in reason_text(fresh(other.id).last_error)
        time.sleep(1.0)
        assert len(fake.raw) == 1 and fake.received == []
        in_doubt_waits_for_a_person(post.id, author)
        fake.mode = None
        login(author)
        r = client.post(f"/publishing/posts/{post.id}/retry", data={"next": "detail"})
        assert r.status_code == 302
        assert wait_for(lambda: fresh(post.id).status == "published", 10), \
            (fresh(post.id).status, reason_text(fresh(post.id).last_error))
        assert wecom_titles(fake) == Counter({"连接被重置": 1})
    finally:
        fake.stop()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(db, author, runner, form):
    wait_s = 3
    value = str(wait_s) if form == "seconds" else "DATE"
    with Receiver(faults=[{"status": 429, "headers": {"Retry-After": value}}]) as recv:
        if form == "http-date":
            # Filled in when the request arrives would be nicer; a date 3 s ahead of the
            # start is the same thing to the client (the first attempt goes out at once).
            recv.faults[0]["headers"]["Retry-After"] = format_datetime(
                utcnow() + timedelta(seconds=wait_s + 1), usegmt=True)
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        post = make_post(db.session, channel, author, utcnow())
        runner()
        assert wait_for(lambda: fresh(post.id).status == "published", 15), \
            reason_text(fresh(post.id).last_error)
        first, second = recv.deliveries
        gap = second["at"] - first["at"]
        # Retry base is 0.2 s here: only the service's Retry-After explains the wait.
        assert wait_s - 1.05 <= gap < wait_s + 3, gap
        assert [first["status"], second["status"]] == [429, 200]
        assert len(recv.effects) == 1
    assert outcomes(post.id) == ["transient", "published"]


class _TrickleHandler(BaseHTTPRequestHandler):
    """Answers 200 at once, then the body one byte every 0.4 s: each read is quick, the
    whole reply is not."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        return None

    served = 0  # requests seen (all servers of this handler)

    def do_POST(self) -> None:  # noqa: N802
        type(self).served += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b'{"id": "slow-1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.4)


@pytest.fixture
def trickle():
    """The base URL of a server that trickles every reply (_TrickleHandler)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_reply_trickling_in_past_the_timeout_is_cut_off(db, author, trickle):
    channel = make_channel(db.session, config={"url": f"{trickle}/hook", "secret": "s3cret",
                                               "timeout_s": 1})
    adapter = build_adapter(channel, SECRET_KEY)
    post = make_post(db.session, channel, author, utcnow())
    t0 = time.monotonic()
    with pytest.raises(TransientError) as caught:
        adapter.publish(publishing.outgoing_for(post), publishing.idempotency_key(post))
    assert time.monotonic() - t0 < 2.0
    # Idempotent: an ordinary retry (the receiver dedupes), not a post in doubt.
    assert not isinstance(caught.value, InDoubt)
    assert "in time" in str(caught.value)


def test_a_robot_reply_trickling_past_the_timeout_is_in_doubt(trickle):
    """The message went out and the group may show it: cut off at the timeout, and in doubt
    (reconciled by a person), as any read timeout of a robot is."""
    adapter = adapter_class("wecom_robot")({
        "webhook_url": f"{trickle}/cgi-bin/webhook/send?key=k", "timeout_s": 1})
    post = OutgoingPost(post_id=1, piece_id=1, version=1, title="慢慢来", body_markdown="正文")
    t0 = time.monotonic()
    with pytest.raises(InDoubt):
        adapter.publish(post, "k1")
    assert time.monotonic() - t0 < 2.0


def test_wechat_api_calls_of_one_publish_share_one_budget(trickle):
    """Each call has the channel timeout (10 s here), but all calls of one publish together
    have the send budget: the first call is cut off when the budget ends, a later one is not
    even started (nothing more is sent)."""
    from contentops.channels._http import Budget
    from contentops.channels.tokens import MemoryTokenStore
    from contentops.channels.wechat_mp import WeChatAPI

    api = WeChatAPI(app_id="wx1", secret="s", api_base=trickle, tokens=MemoryTokenStore(),
                    timeout=10, budget=Budget(1.0))
    t0 = time.monotonic()
    with pytest.raises(TransientError, match="did not answer in time"):
        api.token()
    assert time.monotonic() - t0 < 2.0
    served = _TrickleHandler.served
    with pytest.raises(TransientError, match="did not answer in time"):
        api.call("/cgi-bin/draft/add", body={"articles": []})
    assert time.monotonic() - t0 < 2.0
    assert _TrickleHandler.served == served  # the budget was spent: no request went out


def _any_user(db):
    from contentops.models import User

    from .conftest import password_hash

    user = User(email="trickle@example.com", name="T", role="editor",
                password_hash=password_hash(), notification_prefs={})
    db.session.add(user)
    db.session.commit()
    return user


# --- A database write lock held for 10 s (SQLite) ------------------------------------------

@pytest.mark.slow
def test_sqlite_write_lock_held_10s_mid_burst_loses_and_duplicates_nothing(app, db, author,
                                                                         tmp_path):
    import sqlite3

    n = 300
    with Receiver(delay=0.01) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        make_posts(db.session, channel, author, utcnow(), n)
        db_url = app.config["SQLALCHEMY_DATABASE_URI"]
        proc = _scheduler_process(db_url, tmp_path, "locked", CONTENTOPS_LEASE_SECONDS="30",
                                  CONTENTOPS_PUBLISH_WORKERS="8")
        try:
            assert wait_for(lambda: len(recv.deliveries) >= 40, 30), "no deliveries"
            # Another process (a backup, a long migration) takes the write lock for 10 s.
            locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30,
                                     isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            held_at = len(recv.deliveries)
            time.sleep(10)
            during = len(recv.deliveries)
            locker.execute("COMMIT")
            locker.close()
            assert held_at < n, "the burst finished before the lock"
            assert wait_for(lambda: count_status("published") == n, 60), (
                status_counts(), (tmp_path / "locked.log").read_text()[-2000:])
        finally:
            _stop(proc)
        counts = recv.key_counts()
        assert len(recv.effects) == n and len(counts) == n
        # The lock only made writers wait (busy timeout): no lease ran out, nothing re-sent.
        assert set(counts.values()) == {1}, Counter(counts.values())
        assert during - held_at <= 2 * 8  # at most what was claimed went out meanwhile
    assert db.session.scalar(select(func.count(PublishAttempt.id)).where(
        PublishAttempt.outcome == "lost")) == 0


@pytest.mark.slow
def test_sqlite_write_lock_outlasting_the_busy_timeout_loses_no_outcome(app, db, author,
                                                                     tmp_path):
    """The lock is held longer than the 15 s busy timeout, so claims and completions fail
    with "database is locked" while sends finish: the finished outcomes stay in memory and
    are written once the lock is gone — nothing re-sent, every attempt recorded once."""
    import sqlite3

    n = 300
    with Receiver(delay=0.01) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        ids = make_posts(db.session, channel, author, utcnow(), n)
        db_url = app.config["SQLALCHEMY_DATABASE_URI"]
        proc = _scheduler_process(db_url, tmp_path, "overlock", CONTENTOPS_LEASE_SECONDS="90",
                                  CONTENTOPS_PUBLISH_WORKERS="8")
        log = tmp_path / "overlock.log"
        try:
            assert wait_for(lambda: len(recv.deliveries) >= 40, 30), "no deliveries"
            locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30,
                                     isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            held_at = len(recv.deliveries)
            time.sleep(17)
            locker.execute("COMMIT")
            locker.close()
            assert held_at < n, "the burst finished before the lock"
            assert "database is locked" in log.read_text(), log.read_text()[-2000:]
            assert wait_for(lambda: count_status("published") == n, 60), (
                status_counts(), log.read_text()[-2000:])
        finally:
            _stop(proc)
        counts = recv.key_counts()
        assert len(recv.effects) == n and set(counts.values()) == {1}, Counter(counts.values())
    attempts = Counter(_db.session.execute(
        select(PublishAttempt.post_id, PublishAttempt.outcome)).all())
    assert set(attempts) == {(i, "published") for i in ids}, Counter(
        o for _, o in attempts)
    assert set(attempts.values()) == {1}  # each attempt recorded exactly once


# --- SIGKILL mid-burst ----------------------------------------------------------------------

def _kill_mid_burst(db_url: str, tmp_path: Path, recv: Receiver, n: int, workers: int = 8,
                    kill_after: int = 60) -> None:
    first = _scheduler_process(db_url, tmp_path, "first", CONTENTOPS_LEASE_SECONDS="2",
                               CONTENTOPS_PUBLISH_WORKERS=str(workers))
    try:
        assert wait_for(lambda: len(recv.deliveries) >= kill_after, 30), (
            "no deliveries", (tmp_path / "first.log").read_text()[-2000:])
    finally:
        first.kill()  # SIGKILL: no cleanup, leases left behind
        first.wait()
    assert len(recv.deliveries) < n, "the burst finished before the kill"


@pytest.mark.postgres
@pytest.mark.slow
def test_scheduler_killed_mid_burst_on_postgresql_loses_and_duplicates_nothing(tmp_path,
                                                                               pg_url):
    n, workers = 400, 8
    pg_app = make_app(tmp_path / "pg", SQLALCHEMY_DATABASE_URI=pg_url)
    with pg_app.app_context(), Receiver(delay=0.01) as recv:
        _db.create_all()
        try:
            author = _any_user(_db)
            channel = make_channel(_db.session, config={"url": recv.url, "secret": "s3cret"})
            ids = make_posts(_db.session, channel, author, utcnow(), n)
            _kill_mid_burst(pg_url, tmp_path, recv, n, workers)
            second = _scheduler_process(pg_url, tmp_path, "second",
                                        CONTENTOPS_LEASE_SECONDS="2",
                                        CONTENTOPS_PUBLISH_WORKERS=str(workers))
            try:
                assert wait_for(lambda: count_status("published") == n, 60), (
                    status_counts(), (tmp_path / "second.log").read_text()[-2000:])
            finally:
                _stop(second)
            resent = _assert_once_each(recv, ids, max_resent=2 * workers)
            print(f"SIGKILL mid-burst on PostgreSQL: {n} posts, {resent} re-sent with the "
                  "same key, 0 lost, 0 duplicated")
        finally:
            _db.session.remove()
            _db.engine.dispose()


def _assert_once_each(recv: Receiver, ids: list[int], max_resent: int) -> int:
    """0 lost, 0 duplicated; returns how many same-key re-sends the fault caused."""
    counts = recv.key_counts()
    keys = {publishing.idempotency_key(_db.session.get(Post, i)) for i in ids}
    assert set(counts) == keys  # 0 lost
    assert set(recv.effects) == keys  # 0 duplicated: one effect per post
    resent = sum(c - 1 for c in counts.values())
    # Only posts claimed at the moment of the fault may be re-sent (same key).
    assert resent <= max_resent, resent
    return resent


@pytest.mark.slow
def test_a_killed_schedulers_posts_are_settled_soon_after_its_heartbeat_goes_stale(
        app, db, author, tmp_path):
    """Issue #16 item 10, with the default 120 s lease and heartbeat: the posts the killed
    scheduler was sending are reaped once its heartbeat is stale (HEARTBEAT_STALE), not when
    their leases end, and go the usual way (unknown → same-key re-send)."""
    n, workers = 300, 8
    with Receiver(delay=0.01) as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"})
        ids = make_posts(db.session, channel, author, utcnow(), n)
        db_url = app.config["SQLALCHEMY_DATABASE_URI"]
        defaults = {"CONTENTOPS_PUBLISH_WORKERS": str(workers),
                    "CONTENTOPS_HEARTBEAT_SECONDS": str(publishing.HEARTBEAT_SECONDS),
                    "CONTENTOPS_REAP_SECONDS": "2", "CONTENTOPS_RECONCILE_SECONDS": "10"}
        # The second one runs before the kill, so its start-up does not count.
        second = _scheduler_process(db_url, tmp_path, "second", **defaults)
        first = _scheduler_process(db_url, tmp_path, "first", **defaults)
        try:
            try:
                assert wait_for(lambda: len(recv.deliveries) >= 60, 30), (
                    (tmp_path / "first.log").read_text()[-2000:])
            finally:
                first.kill()  # SIGKILL mid-send: leases of 120 s left behind
                first.wait()
            killed = time.monotonic()
            assert len(recv.deliveries) < n, "the burst finished before the kill"
            assert wait_for(lambda: count_status("published") == n, 60), (
                status_counts(), (tmp_path / "second.log").read_text()[-2000:])
            settled = time.monotonic() - killed
        finally:
            _stop(second)
        _assert_once_each(recv, ids, max_resent=2 * workers)
        errors = [reason_text(e) for e in db.session.scalars(select(PublishAttempt.error)
                                                              .where(PublishAttempt.outcome
                                                                     == "lost"))]
        # Some posts were mid-send at the kill (each has a `lost` attempt), all reaped for
        # the silent heartbeat, none waited for the lease.
        assert errors and all("stopped mid-publish" in e for e in errors), errors
        stale = publishing.HEARTBEAT_STALE.total_seconds()
        # Stale time + a beat + a reaper tick + sending, with room for a busy machine; the
        # lease alone would have taken 120 s.
        assert settled < stale + 15, settled
        print(f"SIGKILL mid-burst, default lease: {n} posts settled {settled:.1f} s after "
              f"the kill ({len(errors)} were in flight)")


@pytest.mark.slow
def test_scheduler_killed_mid_burst_on_a_non_idempotent_channel(app, client, author, tmp_path):
    _killed_mid_burst_on_a_non_idempotent_channel(app, client, author, tmp_path)


@pytest.mark.postgres
@pytest.mark.slow
def test_scheduler_killed_mid_burst_on_a_non_idempotent_channel_on_postgresql(tmp_path,
                                                                              pg_url):
    pg_app = make_app(tmp_path / "pg", SQLALCHEMY_DATABASE_URI=pg_url)
    with pg_app.app_context():
        _db.create_all()
        try:
            _killed_mid_burst_on_a_non_idempotent_channel(pg_app, pg_app.test_client(),
                                                          _any_user(_db), tmp_path)
        finally:
            _db.session.remove()
            _db.engine.dispose()


def _killed_mid_burst_on_a_non_idempotent_channel(app, client, author, tmp_path) -> None:
    """WeCom group robot (no idempotency key, no lookup): posts claimed at the kill are
    `unknown` once the killed scheduler's heartbeat is stale (the default 120 s lease is not
    waited for), never re-sent; a person settles each one in the UI (mark published if the
    group shows it, otherwise retry); in the end each post reached the group exactly once."""
    n, workers = 12, 3
    fake = FakeWeCom().start()
    try:
        fake.mode, fake.delay = "timeout", 0.4  # a slow service: 0.4 s per message, then ok
        channel = wecom_channel(_db.session, fake)
        ids = make_posts(_db.session, channel, author, utcnow(), n)
        db_url = app.config["SQLALCHEMY_DATABASE_URI"]
        first = _scheduler_process(db_url, tmp_path, "first",
                                   CONTENTOPS_PUBLISH_WORKERS=str(workers))
        try:
            assert wait_for(lambda: len(fake.raw) >= 4, 30), (
                (tmp_path / "first.log").read_text()[-2000:])
        finally:
            first.kill()
            first.wait()
        assert len(fake.raw) < n, "the burst finished before the kill"
        second = _scheduler_process(db_url, tmp_path, "second",
                                    CONTENTOPS_PUBLISH_WORKERS=str(workers))
        try:
            def settled() -> bool:
                c = status_counts()
                return c["published"] + c["unknown"] == n and not _db.session.scalar(
                    select(func.count(Post.id)).where(Post.status == "unknown",
                                                      Post.next_attempt_at.is_not(None)))
            assert wait_for(settled, 40), (status_counts(),
                                           (tmp_path / "second.log").read_text()[-2000:])
            time.sleep(1.0)
            titles = wecom_titles(fake)
            assert set(titles.values()) == {1}, titles  # nothing was sent twice
            unknown = [i for i in ids if fresh(i).status == "unknown"]
            assert 1 <= len(unknown) <= 2 * workers, status_counts()
            for post_id in unknown:
                in_doubt_waits_for_a_person(post_id, author)
            for post_id in set(ids) - set(unknown):
                assert titles[fresh(post_id).title] == 1
            # A person checks the group for each post in doubt and settles it in the UI.
            signed_in = client.post("/login", data={"email": author.email,
                                                    "password": PASSWORD})
            assert signed_in.status_code == 302
            page = client.get("/publishing/").get_data(as_text=True)
            for post_id in unknown:
                assert f'data-post-id="{post_id}"' in page
                post = fresh(post_id)
                if titles[post.title]:
                    r = client.post(f"/publishing/posts/{post_id}/mark-published",
                                    data={"url": ""})
                else:
                    r = client.post(f"/publishing/posts/{post_id}/retry")
                assert r.status_code == 302
            assert wait_for(lambda: count_status("published") == n, 60), (
                status_counts(), (tmp_path / "second.log").read_text()[-2000:])
        finally:
            _stop(second)
        titles = wecom_titles(fake)
        assert len(titles) == n and set(titles.values()) == {1}, titles
    finally:
        fake.stop()


# --- PostgreSQL restart mid-burst (a private throwaway cluster) ------------------------------

def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PrivateCluster:
    """A throwaway PostgreSQL cluster in a private directory, owned by the `postgres` user
    (initdb refuses root), reachable only through a unix socket in that directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        # Not tmp_path: pytest's base directory is private to root, and the server runs as
        # `postgres`. A short path also keeps the socket name under the 107-byte limit.
        self.dir = Path(tempfile.mkdtemp(prefix="co-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.url = (f"postgresql+psycopg://postgres@/postgres?host={self.dir}"
                    f"&port={self.port}")

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")

    def ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(str(self.bindir / "pg_ctl"), action, "-D", str(self.data), "-w",
                          "-l", str(self.dir / "server.log"), *extra)

    def start(self) -> PrivateCluster:
        self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' "
                   f"-p {self.port} -c fsync=off -c max_connections=60")
        self.ctl("start", "-o", options)
        return self

    def restart(self) -> None:
        self.ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg():
    bindir = _pg_bin()
    problem = None
    if bindir is None:
        problem = "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    elif os.geteuid() == 0 and shutil.which("runuser") is None:
        problem = "running as root without runuser to start initdb as postgres"
    if problem is None and os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            problem = "no `postgres` user to own a private cluster"
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"CONTENTOPS_REQUIRE_PG=1 but {problem}")
        pytest.skip(problem)
    cluster = PrivateCluster(bindir)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


def _restart_mid_burst(tmp_path: Path, cluster: PrivateCluster, *, lease: float,
                       wait: float) -> tuple[int, int, int]:
    """A burst through one scheduler process; `pg_ctl restart -m fast` once 100 posts went
    out. Returns (re-sent with the same key, posts parked `unknown`, tracebacks logged)."""
    n, workers = 600, 8
    pg_app = make_app(tmp_path / "pg", SQLALCHEMY_DATABASE_URI=cluster.url)
    with pg_app.app_context(), Receiver(delay=0.01) as recv:
        _db.create_all()
        try:
            author = _any_user(_db)
            channel = make_channel(_db.session, config={"url": recv.url, "secret": "s3cret"})
            ids = make_posts(_db.session, channel, author, utcnow(), n)
            _db.session.remove()
            log = tmp_path / "pg-restart.log"
            proc = _scheduler_process(cluster.url, tmp_path, "pg-restart",
                                      CONTENTOPS_LEASE_SECONDS=str(lease),
                                      CONTENTOPS_PUBLISH_WORKERS=str(workers))
            try:
                assert wait_for(lambda: len(recv.deliveries) >= 100, 30), \
                    log.read_text()[-2000:]
                cluster.restart()
                assert len(recv.deliveries) < n, "the burst finished before the restart"
                assert wait_for(lambda: count_status("published") == n, wait), (
                    status_counts(), log.read_text()[-3000:])
            finally:
                _stop(proc)
            resent = _assert_once_each(recv, ids, max_resent=2 * workers)
            parked = _db.session.scalar(select(func.count(PublishAttempt.id)).where(
                PublishAttempt.outcome == "lost"))
            tracebacks = log.read_text().count("Traceback")
            print(f"PostgreSQL restart mid-burst: {n} posts, {resent} re-sent with the same "
                  f"key, {parked} parked unknown, {tracebacks} tracebacks logged")
            return resent, parked, tracebacks
        finally:
            _db.session.remove()
            _db.engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_restart_mid_burst_loses_and_duplicates_nothing(tmp_path, private_pg):
    # Short leases: outcomes whose recording failed during the restart come back through
    # reaper → unknown → same-key re-send (the receiver dedupes).
    _restart_mid_burst(tmp_path, private_pg, lease=3, wait=90)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_restart_mid_burst_records_every_outcome_once(tmp_path, private_pg):
    # Leases far longer than the restart: a buffered outcome is written once the database is
    # back, so nothing is parked, nothing re-sent, and the burst ends well inside the lease.
    resent, parked, _ = _restart_mid_burst(tmp_path, private_pg, lease=60, wait=25)
    assert (resent, parked) == (0, 0)


# --- Schedulers down for longer than the grace window --------------------------------------

@pytest.mark.slow
def test_posts_due_while_no_scheduler_ran_are_missed_listed_and_one_click_away(
        app, db, client, login, author, tmp_path):
    with Receiver() as recv:
        channel = make_channel(db.session, config={"url": recv.url, "secret": "s3cret"},
                               grace_minutes=5)
        now = utcnow()
        late = make_post(db.session, channel, author, now - timedelta(minutes=30),
                         title="迟到三十分钟")
        drop = make_post(db.session, channel, author, now - timedelta(minutes=20),
                         title="不再需要")
        within = make_post(db.session, channel, author, now - timedelta(minutes=3),
                           title="宽限期内")
        login(author)
        # No scheduler: nothing moves, and the page says so.
        page = client.get("/publishing/").get_data(as_text=True)
        assert "No scheduler running" in page
        proc = _scheduler_process(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path, "late")
        try:
            assert wait_for(lambda: fresh(within.id).status == "published", 20), \
                (tmp_path / "late.log").read_text()[-2000:]
            for post in (late, drop):
                missed = fresh(post.id)
                assert missed.status == "missed"
                assert "more than 5 minutes late" in reason_text(missed.last_error)
            assert len(recv.effects) == 1  # only the post within its grace window went out
            told = {n.params.get("post_id") for n in db.session.scalars(
                select(Notification).where(Notification.user_id == author.id))}
            assert {late.id, drop.id} <= told
            # Visible in the "missed" section with the reason and both buttons.
            page = client.get("/publishing/").get_data(as_text=True)
            section = page.split('data-section="missed"', 1)[1].split("</section>", 1)[0]
            for post in (late, drop):
                assert f'data-post-id="{post.id}"' in section
                assert f'data-action="publish-now" data-post="{post.id}"' in section
                assert f'data-action="cancel" data-post="{post.id}"' in section
            assert "more than 5 minutes late" in section
            # One click each: send the one, drop the other.
            assert client.post(f"/publishing/posts/{late.id}/publish-now").status_code == 302
            assert client.post(f"/publishing/posts/{drop.id}/cancel").status_code == 302
            assert wait_for(lambda: fresh(late.id).status == "published", 10)
            time.sleep(1.0)
            assert fresh(drop.id).status == "cancelled"
        finally:
            _stop(proc)
        keys = {publishing.idempotency_key(fresh(p.id)) for p in (late, within)}
        assert set(recv.effects) == keys
        assert set(recv.key_counts().values()) == {1}


def test_a_retry_due_while_no_scheduler_ran_is_missed_beyond_grace(db, author):
    from sqlalchemy.orm import sessionmaker

    from .engine_support import Clock, FakeAdapter

    clock = Clock()
    channel = make_channel(db.session, grace_minutes=5)
    post = make_post(db.session, channel, author, clock.now - timedelta(hours=2))
    post.status = "retrying"
    post.attempt_count = 1
    post.next_attempt_at = clock.now - timedelta(minutes=90)
    db.session.commit()
    adapter = FakeAdapter()
    # A second retry on the same channel, due 4 minutes ago: within grace, it goes out.
    within = make_post(db.session, channel, author, clock.now - timedelta(hours=1))
    within.status = "retrying"
    within.attempt_count = 1
    within.next_attempt_at = clock.now - timedelta(minutes=4)
    db.session.commit()
    publishing.Dispatcher(sessionmaker(bind=db.engine, expire_on_commit=False),
                          lambda c: adapter, node="n", clock=clock).run()
    assert [post_id for post_id, _ in adapter.calls] == [within.id]
    missed = fresh(post.id)
    assert missed.status == "missed"
    text = reason_text(missed.last_error)
    # Says it was a retry, names its due time (not the scheduled time) and the window.
    assert "the retry was due at" in text and "more than 5 minutes late" in text, text
    assert (clock.now - timedelta(minutes=90)).strftime("%Y-%m-%d %H:%M UTC") in text, text
    assert fresh(within.id).status == "published"


# --- The in-doubt rule at the engine level (injected clock) ---------------------------------

@pytest.mark.parametrize("caps,state", [
    ({"idempotent": True}, "retrying"),  # the service dedupes: a same-key re-send is safe
    ({}, "unknown"),  # it may be in the group already: reconcile, no re-send
])
def test_an_in_doubt_send_retries_only_where_the_service_dedupes(db, author, caps, state):
    from sqlalchemy.orm import sessionmaker

    from contentops.channels.base import Capabilities, InDoubt, PublishResult

    from .engine_support import Clock, FakeAdapter

    clock = Clock()
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    adapter = FakeAdapter([InDoubt("The receiver did not answer in time.")],
                          capabilities=Capabilities(can_find_existing=True, **caps),
                          existing=PublishResult(external_id="seen-1"))
    d = publishing.Dispatcher(factory, lambda c: adapter, node="n", clock=clock)
    d.run()
    parked = fresh(post.id)
    assert parked.status == state
    assert parked.claim_token is None and parked.next_attempt_at is not None
    assert outcomes(post.id) == ["transient"]
    if state == "unknown":
        # Reconcile looks it up (this channel can) and proves it: never sent twice.
        counts = publishing.reconcile_unknown(factory(), now=clock.now, node="n",
                                              adapter_for=lambda c: adapter)
        assert counts["proved"] == 1
        assert fresh(post.id).status == "published"
        assert fresh(post.id).external_id == "seen-1"
        assert len(adapter.calls) == 1
    else:
        clock.advance(3600)
        d.run()
        assert fresh(post.id).status == "published"
        assert [k for _, k in adapter.calls] == [publishing.idempotency_key(post)] * 2
