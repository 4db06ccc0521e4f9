"""Handoff: posts the service or staff finish after the send call (公众号 freepublish,
企业微信 broadcasts) are followed by track() until published, failed or past the deadline."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.channels.base import (
    Capabilities,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
)
from contentops.models import Post, PublishAttempt
from contentops.reasons import reason_text
from contentops.services import notifications, publishing

from .engine_support import Clock, FakeAdapter, make_channel, make_post


class HandoffAdapter(FakeAdapter):
    """publish() hands the post over; track() answers from a script per call."""

    capabilities = Capabilities(tracks=True)

    def __init__(self, handed: PublishResult, answers: list, config: dict | None = None):
        super().__init__(config=config)
        self.handed = handed
        self.answers = list(answers)
        self.tracked: list[tuple[int, str, dict | None, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a look is inside the service call

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        self.calls.append((post.post_id, idempotency_key))
        return self.handed

    def track(self, post, external_id, progress, *, final=False) -> PublishResult:
        self.entered.set()
        self.gate.wait(5)
        with self.lock:
            self.tracked.append((post.post_id, external_id, progress, final))
            answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def factory(db):
    return sessionmaker(bind=db.engine, expire_on_commit=False)


@pytest.fixture
def notified(monkeypatch):
    sent: list[tuple[str, int]] = []

    def record(session, users, kind, message, params=None, link=None):
        sent.append((kind, (params or {}).get("state")))

    monkeypatch.setattr(notifications, "notify", record)
    return sent


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


def run(factory, clock, adapter):
    return publishing.Dispatcher(factory, lambda c: adapter, node="n1", clock=clock,
                                 workers=2, rng=random.Random(3)).run()


def track(factory, clock, adapter, node="n1"):
    return publishing.track_due(factory(), now=clock.now, node=node,
                                adapter_for=lambda c: adapter)


def fresh(db, post_id: int) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def outcomes(db, post_id: int) -> list[str]:
    return list(db.session.scalars(select(PublishAttempt.outcome).where(
        PublishAttempt.post_id == post_id).order_by(PublishAttempt.id)))


def test_service_side_publishing_is_followed_until_published(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    adapter = HandoffAdapter(
        PublishResult(external_id="publish-77", status="publishing", check_after_s=30),
        [PublishResult(status="publishing", check_after_s=60),
         PublishResult(status="published", external_id="article-9",
                       url="https://mp.weixin.qq.com/s/abc")])
    assert run(factory, clock, adapter).claimed == 1
    handed = fresh(db, post.id)
    assert handed.status == "publishing" and handed.external_id == "publish-77"
    assert handed.claim_token is None and handed.lease_expires_at is None
    assert handed.check_at == clock.now + timedelta(seconds=30)
    # Long past any lease, the reaper leaves it alone: nobody is sending it.
    clock.advance(600)
    assert publishing.reap_expired(factory(), now=clock.now, node="n2") == []
    clock.advance(-600 + 10)
    assert track(factory, clock, adapter).looked == 0  # not due yet
    clock.advance(20)
    assert track(factory, clock, adapter).waiting == 1
    assert fresh(db, post.id).check_at == clock.now + timedelta(seconds=60)
    clock.advance(60)
    assert track(factory, clock, adapter).published == 1
    done = fresh(db, post.id)
    assert (done.status, done.external_id, done.external_url) == (
        "published", "article-9", "https://mp.weixin.qq.com/s/abc")
    assert done.published_at == clock.now and done.check_at is None
    assert [t[1] for t in adapter.tracked] == ["publish-77", "publish-77"]
    assert outcomes(db, post.id) == ["published", "published"]
    assert track(factory, clock.advance(3600) and clock, adapter).looked == 0


def test_a_service_side_failure_fails_the_post_with_its_reason(db, factory, clock, author,
                                                               notified):
    post = make_post(db.session, make_channel(db.session), author, clock.now)
    adapter = HandoffAdapter(
        PublishResult(external_id="p-1", status="publishing", check_after_s=5),
        [PermanentError("WeChat's audit rejected the article (%(why)s).", {"why": "4"})])
    run(factory, clock, adapter)
    clock.advance(5)
    assert track(factory, clock, adapter).failed == 1
    failed = fresh(db, post.id)
    assert failed.status == "failed" and failed.check_at is None
    assert "audit rejected the article (4)" in reason_text(failed.last_error)
    assert outcomes(db, post.id)[-1] == "permanent"
    assert ("publish_failed", "failed") in notified


def test_a_service_that_cannot_answer_is_asked_again_later(db, factory, clock, author):
    post = make_post(db.session, make_channel(db.session), author, clock.now)
    adapter = HandoffAdapter(
        PublishResult(external_id="p-1", status="publishing", check_after_s=5),
        [TransientError("WeChat is busy.", retry_after=120),
         PublishResult(status="published", url="https://mp.weixin.qq.com/s/x")])
    run(factory, clock, adapter)
    clock.advance(5)
    assert track(factory, clock, adapter).later == 1
    waiting = fresh(db, post.id)
    assert waiting.status == "publishing"
    assert waiting.check_at == clock.now + timedelta(seconds=120)
    assert "busy" in reason_text(waiting.last_error)
    clock.advance(120)
    assert track(factory, clock, adapter).published == 1
    assert fresh(db, post.id).last_error is None


def test_staff_progress_is_kept_and_the_deadline_gives_the_final_verdict(db, factory, clock,
                                                                        author, notified):
    channel = make_channel(db.session)
    partial = make_post(db.session, channel, author, clock.now)
    nobody = make_post(db.session, channel, author, clock.now)
    start = {"confirmed": 0, "total": 3}
    adapter = HandoffAdapter(
        PublishResult(external_id="msg-1", status="awaiting_staff", progress=start,
                      check_after_s=1500),
        # Two looks each: one during the hour, then the final one at the deadline.
        [PublishResult(status="awaiting_staff", progress={"confirmed": 1, "total": 3},
                       check_after_s=2500),
         PublishResult(status="awaiting_staff", progress={"confirmed": 0, "total": 3},
                       check_after_s=2500),
         PublishResult(status="published", progress={"confirmed": 2, "total": 3}),
         PermanentError("None of the 3 staff members sent it.")],
        config={"deadline_hours": 1})
    assert run(factory, clock, adapter).awaiting_staff == 2
    first = fresh(db, partial.id)
    deadline = clock.now + timedelta(hours=1)
    assert first.status == "awaiting_staff" and first.next_attempt_at == deadline
    assert first.progress == start and first.external_id == "msg-1"
    clock.advance(1500)
    assert track(factory, clock, adapter).waiting == 2
    assert fresh(db, partial.id).progress == {"confirmed": 1, "total": 3}
    # The next look is capped at the deadline, where the verdict is due.
    assert fresh(db, partial.id).check_at == deadline
    # The manual-channel deadline job leaves tracked posts to the tracker.
    clock.advance(2100)
    assert publishing.expire_staff_tasks(factory(), now=clock.now) == []
    stats = track(factory, clock, adapter)
    assert (stats.published, stats.missed) == (1, 1)
    assert [t[3] for t in adapter.tracked[-2:]] == [True, True]
    done, missed = fresh(db, partial.id), fresh(db, nobody.id)
    assert done.status == "published" and done.progress == {"confirmed": 2, "total": 3}
    assert missed.status == "missed" and "None of the 3" in reason_text(missed.last_error)
    assert ("publish_failed", "missed") in notified


def test_an_adapter_deadline_overrides_the_channel_hours(db, factory, clock, author):
    post = make_post(db.session, make_channel(db.session), author, clock.now)
    adapter = HandoffAdapter(PublishResult(external_id="m", status="awaiting_staff",
                                           deadline_s=1800, check_after_s=60,
                                           progress={"confirmed": 0, "total": 1}), [])
    run(factory, clock, adapter)
    assert fresh(db, post.id).next_attempt_at == clock.now + timedelta(minutes=30)


def test_a_person_acting_meanwhile_wins_over_a_look_in_flight(db, factory, clock, author):
    post = make_post(db.session, make_channel(db.session), author, clock.now)
    adapter = HandoffAdapter(
        PublishResult(external_id="m", status="awaiting_staff", check_after_s=10,
                      progress={"confirmed": 0, "total": 2}),
        [PublishResult(status="awaiting_staff", progress={"confirmed": 1, "total": 2},
                       check_after_s=10)])
    run(factory, clock, adapter)
    clock.advance(10)
    adapter.gate.clear()
    looking = threading.Thread(target=track, args=(factory, clock, adapter))
    looking.start()
    # While the service is being asked (the look has taken the post), a person cancels it.
    assert adapter.entered.wait(10)
    cancelled = fresh(db, post.id)
    publishing.cancel_post(db.session, cancelled, actor=None, now=clock.now)
    db.session.commit()
    adapter.gate.set()
    looking.join(5)
    after = fresh(db, post.id)
    assert after.status == "cancelled" and after.progress == {"confirmed": 0, "total": 2}


def test_two_nodes_never_ask_about_one_post_twice(db, factory, clock, author):
    channel = make_channel(db.session)
    ids = [make_post(db.session, channel, author, clock.now).id for _ in range(6)]
    adapter = HandoffAdapter(
        PublishResult(external_id="m", status="publishing", check_after_s=1),
        [PublishResult(status="published", url=f"https://example.com/{i}") for i in range(6)])
    run(factory, clock, adapter)
    clock.advance(1)
    nodes = [threading.Thread(target=track, args=(factory, clock, adapter, f"n{i}"))
             for i in range(3)]
    for t in nodes:
        t.start()
    for t in nodes:
        t.join()
    assert sorted(t[0] for t in adapter.tracked) == ids
    assert {fresh(db, i).status for i in ids} == {"published"}
