"""Robots and e-mail through the real dispatcher: the service's rate limit is respected end to
end (nothing lost, nothing sent twice), and e-mail recipients are resolved at send time."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.channels.dingtalk_robot import DingTalkRobotAdapter
from contentops.models import Post, PublishAttempt
from contentops.services import publishing
from contentops.services import recipients as recipient_service
from contentops.services.channels import build_adapter
from tests.conftest import free_port
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.smtp import FakeSMTP
from tests.fakes.wecom import FakeWeCom

from .engine_support import SECRET_KEY, Clock, make_channel, make_post, make_posts


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def factory(db):
    return sessionmaker(bind=db.engine, expire_on_commit=False)


def dispatcher(factory, clock):
    return publishing.Dispatcher(
        factory, lambda channel: build_adapter(channel, SECRET_KEY), node="test-node",
        clock=clock, workers=4, rng=random.Random(3),
        policy=publishing.RetryPolicy(base_seconds=10, cap_seconds=900),
        base_url="http://testserver")


def statuses(db, ids):
    db.session.expire_all()
    return sorted(db.session.scalars(select(Post.status).where(Post.id.in_(ids))))


def drive(db, factory, clock, ids, *, limit_seconds: float = 1200):
    """Run the dispatcher whenever something is due, jumping the clock to the next due time,
    until every post is settled."""
    d = dispatcher(factory, clock)
    try:
        start = clock.now
        while (clock.now - start).total_seconds() < limit_seconds:
            stats = d.run()
            pending = [s for s in statuses(db, ids) if s in ("scheduled", "retrying")]
            if not pending:
                return
            with factory() as session:
                due = publishing.next_due_at(session)
            wake = min([t for t in (stats.wake_at, due) if t is not None], default=None)
            clock.now = max(clock.now + timedelta(seconds=1), wake or clock.now)
        raise AssertionError("posts still pending")
    finally:
        d.stop()


@pytest.mark.parametrize("service", ["wecom", "dingtalk"])
def test_21_posts_due_at_once_to_one_robot(db, make_user, factory, clock, service,
                                           monkeypatch):
    """20 go out in the first minute, the 21st after it; none lost, none sent twice."""
    fake = FakeWeCom() if service == "wecom" else FakeDingTalk()
    # The service's window and DingTalk's signed timestamps run on the test's clock.
    fake.clock = lambda: clock.now.timestamp()
    monkeypatch.setattr(DingTalkRobotAdapter, "clock", staticmethod(fake.clock))
    fake.start()
    try:
        if service == "wecom":
            channel = make_channel(db.session, "wecom_robot", config={
                "webhook_url": fake.webhook_url(), "msgtype": "text"})
        else:
            channel = make_channel(db.session, "dingtalk_robot", config={
                "webhook_url": fake.webhook_url(), "secret": "SECtest-secret-456",
                "msgtype": "text"})
        author = make_user("editor")
        start = clock.now
        ids = make_posts(db.session, channel, author, clock.now, 21)
        drive(db, factory, clock, ids)
        assert statuses(db, ids) == ["published"] * 21
        titles = [m["text"]["content"].split("\n")[0] for m in fake.received]
        assert sorted(titles) == sorted(f"Post {i}" for i in range(21))  # each exactly once
        sent_at = sorted(fake.received_at)
        first_minute = [t for t in sent_at if t < start.timestamp() + 60]
        assert len(first_minute) == 20
        # Seen from the service: never more than 20 in any 60-second window.
        for i in range(len(sent_at) - 20):
            assert sent_at[i + 20] - sent_at[i] >= 60
        # Any refusal by the service was recorded as a transient attempt, not a failure.
        with factory() as session:
            outcomes = set(session.scalars(select(PublishAttempt.outcome)))
        assert outcomes <= {"published", "transient"}
    finally:
        fake.stop()


def test_email_recipients_are_resolved_when_the_dispatcher_sends(db, make_user, factory,
                                                                 clock, tmp_path):
    smtp = FakeSMTP(free_port(), tmp_path).start()
    try:
        channel = make_channel(db.session, "email", config={
            "host": "127.0.0.1", "port": smtp.port, "security": "none",
            "from_address": "news@example.com"})
        ref = recipient_service.ListRef(channel_id=channel.id)
        keep = recipient_service.add_recipient(db.session, ref, "keep@example.com")
        gone = recipient_service.add_recipient(db.session, ref, "gone@example.com")
        db.session.commit()
        # Unsubscribed after scheduling, before sending: honoured.
        recipient_service.unsubscribe(db.session, gone.token, now=clock.now)
        db.session.commit()
        post = make_post(db.session, channel, make_user("editor"), clock.now)
        drive(db, factory, clock, [post.id])
        assert statuses(db, [post.id]) == ["published"]
        assert [m[1] for m in smtp.messages] == [["keep@example.com"]]
        msg = smtp.messages[0][2]
        assert msg["List-Unsubscribe"] == f"<http://testserver/u/{keep.token}>"
    finally:
        smtp.stop()


def test_config_recipients_are_synced_before_the_claim_transaction(db, make_user, factory,
                                                                   clock, tmp_path):
    """Issue #12: the channel's "extra recipients" setting becomes recipient rows in a
    transaction of its own, committed before the claim; the claim transaction only reads."""
    from sqlalchemy import event

    smtp = FakeSMTP(free_port(), tmp_path).start()
    log: list[tuple[str, object]] = []

    def on_execute(_conn, _cursor, statement, parameters, _context, _many):
        log.append((statement, parameters))

    def on_end(_conn):
        log.append(("END", None))

    engine = db.engine
    try:
        channel = make_channel(db.session, "email", config={
            "host": "127.0.0.1", "port": smtp.port, "security": "none",
            "from_address": "news@example.com", "recipients": ["extra@example.com"]})
        post = make_post(db.session, channel, make_user("editor"), clock.now)
        db.session.commit()
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "commit", on_end)
        event.listen(engine, "rollback", on_end)
        try:
            drive(db, factory, clock, [post.id])
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine, "commit", on_end)
            event.remove(engine, "rollback", on_end)
        assert statuses(db, [post.id]) == ["published"]
        assert [m[1] for m in smtp.messages] == [["extra@example.com"]]
    finally:
        smtp.stop()
    transactions: list[list[tuple[str, object]]] = [[]]
    for statement, params in log:
        if statement == "END":
            transactions.append([])
        else:
            transactions[-1].append((statement, params))

    def inserts_recipients(tx) -> bool:
        return any(s.lstrip().upper().startswith("INSERT INTO RECIPIENTS") for s, _ in tx)

    def claims(tx) -> bool:
        return any(s.lstrip().upper().startswith("UPDATE POSTS") and isinstance(p, dict | tuple)
                   and "publishing" in (p.values() if isinstance(p, dict) else p)
                   and "claim_token" in s and "lease_expires_at" in s
                   and "NULL" not in s.upper().split("WHERE")[0] for s, p in tx)

    synced = [i for i, tx in enumerate(transactions) if inserts_recipients(tx)]
    claimed = [i for i, tx in enumerate(transactions) if claims(tx)]
    assert synced and claimed, (synced, claimed)
    assert not set(synced) & set(claimed)  # never inside the claim transaction
    assert synced[0] < claimed[0]  # and done before it
