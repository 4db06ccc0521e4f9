"""The publishing engine with an injected clock: every state transition, the claim race,
fencing, the reaper, reconcile, backoff, misfires, rate limits and quotas."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.channels.base import Capabilities, PublishResult
from contentops.models import AuditEvent, Post, PublishAttempt
from contentops.reasons import reason_text
from contentops.services import channels as channel_service
from contentops.services import notifications, publishing
from contentops.services.channels import build_adapter

from .engine_support import SECRET_KEY, Clock, FakeAdapter, make_channel, make_post, make_posts


def switch(db, channel, **settings) -> None:
    """Change a channel's settings the way an admin does."""
    channel_service.update_channel(db.session, channel, settings, secret_key=SECRET_KEY)
    db.session.commit()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def factory(db):
    return sessionmaker(bind=db.engine, expire_on_commit=False)


@pytest.fixture
def notified(monkeypatch):
    sent: list[dict] = []

    def record(session, users, kind, message, params=None, link=None):
        sent.append({"users": sorted(u.email for u in users), "kind": kind,
                     "message": message, "params": dict(params or {}), "link": link})

    monkeypatch.setattr(notifications, "notify", record)
    return sent


def dispatcher(factory, clock, adapter, **kw):
    kw.setdefault("policy", publishing.RetryPolicy(base_seconds=10, cap_seconds=600))
    return publishing.Dispatcher(factory, lambda channel: adapter, node="test-node",
                                 clock=clock, workers=kw.pop("workers", 4),
                                 rng=random.Random(7), **kw)


def fresh(db, post_id: int) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def attempts(db, post_id: int) -> list[PublishAttempt]:
    return list(db.session.scalars(select(PublishAttempt).where(
        PublishAttempt.post_id == post_id).order_by(PublishAttempt.id)))


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


def test_only_due_approved_posts_are_claimed_and_published(db, factory, clock, author,
                                                           notified):
    channel = make_channel(db.session)
    due = make_post(db.session, channel, author, clock.now - timedelta(seconds=1))
    later = make_post(db.session, channel, author, clock.now + timedelta(minutes=5))
    unapproved = make_post(db.session, channel, author, clock.now, approved=False)
    draft = make_post(db.session, channel, author, None, status="unscheduled")
    adapter = FakeAdapter()
    d = dispatcher(factory, clock, adapter)
    stats = d.run()
    assert stats.published == 1
    assert [c[0] for c in adapter.calls] == [due.id]
    post = fresh(db, due.id)
    assert post.status == "published"
    assert post.external_id == f"ext-{due.id}"
    assert post.external_url == f"https://example.com/{due.id}"
    assert post.published_at == clock.now
    assert post.published_version == 1
    assert post.claim_token is None and post.lease_expires_at is None
    assert [a.outcome for a in attempts(db, due.id)] == ["published"]
    assert fresh(db, later.id).status == "scheduled"
    assert fresh(db, draft.id).status == "unscheduled"
    missed = fresh(db, unapproved.id)
    assert missed.status == "missed"
    assert "not approved" in reason_text(missed.last_error)
    assert notified and notified[0]["kind"] == "publish_failed"
    assert notified[0]["users"] == ["author@example.com"]
    # The idempotency key is stable for the post.
    assert adapter.calls[0][1] == publishing.idempotency_key(post)


def test_editing_after_approval_holds_the_post(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    post.piece.version = 2  # edited after approval: approved_version stays 1
    db.session.commit()
    adapter = FakeAdapter()
    dispatcher(factory, clock, adapter).run()
    assert adapter.calls == []
    assert fresh(db, post.id).status == "missed"


def test_claim_race_between_two_sessions_claims_each_post_once(db, factory, clock, author):
    channel = make_channel(db.session)
    ids = make_posts(db.session, channel, author, clock.now, 5)
    a, b = factory(), factory()
    won_by_a: dict[int, str] = {}

    def decide_b(posts):
        # While B holds its candidate list, A claims and commits the same posts.
        claimed, _ = publishing.claim_rows(
            a, clock.now, 10, "node-a", clock.now + timedelta(minutes=2),
            lambda ps: publishing.Decision(claim=[p.id for p in ps]))
        a.commit()
        won_by_a.update(claimed)
        return publishing.Decision(claim=[p.id for p in posts])

    claimed_b, _ = publishing.claim_rows(b, clock.now, 10, "node-b",
                                          clock.now + timedelta(minutes=2), decide_b)
    b.commit()
    assert sorted(won_by_a) == ids
    assert claimed_b == {}
    db.session.expire_all()
    rows = db.session.scalars(select(Post).where(Post.id.in_(ids))).all()
    assert {p.claimed_by for p in rows} == {"node-a"}
    assert all(p.claim_token == won_by_a[p.id] for p in rows)
    a.close()
    b.close()


def test_transient_errors_back_off_with_jitter_then_fail(db, factory, clock, author, make_user,
                                                         notified):
    approver = make_user("approver", email="boss@example.com")
    channel = make_channel(db.session, max_retries=2)
    post = make_post(db.session, channel, author, clock.now)
    db.session.add(AuditEvent(action="piece.approved", object_type="piece",
                              object_id=post.piece_id, actor_id=approver.id))
    db.session.commit()
    adapter = FakeAdapter(["transient", "transient", "transient"])
    d = dispatcher(factory, clock, adapter)
    d.run()
    first = fresh(db, post.id)
    assert first.status == "retrying"
    delay = (first.next_attempt_at - clock.now).total_seconds()
    assert 5 <= delay <= 10  # base 10 s, equal jitter
    assert "HTTP 503" in reason_text(first.last_error)
    clock.advance(delay - 1)
    d.run()
    assert len(adapter.calls) == 1  # not due yet
    clock.advance(1)
    d.run()
    second = fresh(db, post.id)
    assert second.status == "retrying"
    delay2 = (second.next_attempt_at - clock.now).total_seconds()
    assert 10 <= delay2 <= 20  # doubled
    clock.advance(delay2)
    d.run()
    final = fresh(db, post.id)
    assert final.status == "failed"
    assert final.attempt_count == 3
    assert "Gave up after 3 attempts" in reason_text(final.last_error)
    outcomes = attempts(db, post.id)
    assert [a.outcome for a in outcomes] == ["transient"] * 3
    assert all(a.duration_ms is not None and a.error for a in outcomes)
    assert notified[-1]["kind"] == "publish_failed"
    assert notified[-1]["users"] == ["author@example.com", "boss@example.com"]
    assert notified[-1]["link"] == f"/publishing/posts/{post.id}"


def test_retry_after_is_honoured():
    policy = publishing.RetryPolicy(base_seconds=1)
    assert policy.delay(1, random.Random(1), retry_after=120) == 120
    delays = {round(policy.delay(3, random.Random(seed)), 3) for seed in range(20)}
    assert len(delays) > 10 and all(2 <= d <= 4 for d in delays)


def test_permanent_error_fails_at_once(db, factory, clock, author, notified):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    d = dispatcher(factory, clock, FakeAdapter(["permanent"]))
    d.run()
    failed = fresh(db, post.id)
    assert failed.status == "failed"
    assert "refused" in reason_text(failed.last_error)
    assert [a.outcome for a in attempts(db, post.id)] == ["permanent"]
    assert len(notified) == 1


def test_failure_notice_gives_the_reason_in_each_readers_language(app, db, factory, clock,
                                                                   author):
    from flask_babel import force_locale

    from contentops.models.review import Notification
    from contentops.web.notifications import notification_text

    author.locale = "zh"
    db.session.commit()
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    dispatcher(factory, clock, FakeAdapter(["permanent"])).run()
    (notice,) = db.session.scalars(select(Notification).where(
        Notification.user_id == author.id, Notification.kind == "publish_failed")).all()
    assert fresh(db, post.id).status == "failed"
    with app.test_request_context("/"):
        with force_locale("zh"):
            chinese = notification_text(notice)
        with force_locale("en"):
            english = notification_text(notice)
    assert "未能在" in chinese and "接收方拒绝了该发布（HTTP 400）" in chinese, chinese
    assert "could not be published" in english and "refused the post (HTTP 400)" in english
    mail = notifications.build_email("a@example.com", "A", "zh", notice.message, notice.params,
                                     notice.link)
    assert "接收方拒绝了该发布（HTTP 400）" in mail.get_content()


def test_adapter_crash_is_recorded_and_retried(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    dispatcher(factory, clock, FakeAdapter([RuntimeError("boom")])).run()
    assert fresh(db, post.id).status == "retrying"
    assert "RuntimeError" in attempts(db, post.id)[0].error


def test_misfire_beyond_grace_is_missed_within_grace_goes_out(db, factory, clock, author,
                                                              notified):
    channel = make_channel(db.session, grace_minutes=60)
    late = make_post(db.session, channel, author, clock.now - timedelta(minutes=61))
    recent = make_post(db.session, channel, author, clock.now - timedelta(minutes=59))
    adapter = FakeAdapter()
    dispatcher(factory, clock, adapter).run()
    assert [c[0] for c in adapter.calls] == [recent.id]
    missed = fresh(db, late.id)
    assert missed.status == "missed"
    assert "60 minutes late" in reason_text(missed.last_error)
    assert fresh(db, recent.id).status == "published"
    assert any(n["params"]["post_id"] == late.id for n in notified)


def test_inactive_channel_posts_are_missed(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    switch(db, channel, active=False)  # switched off after the post was scheduled
    dispatcher(factory, clock, FakeAdapter()).run()
    assert fresh(db, post.id).status == "missed"


def test_per_minute_limit_is_a_token_bucket(db, factory, clock, author):
    channel = make_channel(db.session, per_minute_limit=2)
    ids = make_posts(db.session, channel, author, clock.now, 5)
    adapter = FakeAdapter()
    d = dispatcher(factory, clock, adapter)
    stats = d.run()
    assert stats.published == 2
    # The next token arrives after 60/2 = 30 s.
    assert stats.wake_at == clock.now + timedelta(seconds=30)
    clock.advance(29)
    assert d.run().published == 0
    clock.advance(1)
    assert d.run().published == 1
    clock.advance(60)
    assert d.run().published == 2
    assert sorted(c[0] for c in adapter.calls) == ids
    assert {fresh(db, i).status for i in ids} == {"published"}


def test_daily_quota_at_dispatch(db, factory, clock, author):
    channel = make_channel(db.session)
    ids = make_posts(db.session, channel, author, clock.now, 3)
    switch(db, channel, daily_quota=2)  # the quota was lowered after scheduling
    dispatcher(factory, clock, FakeAdapter()).run()
    states = [fresh(db, i).status for i in ids]
    assert states == ["published", "published", "missed"]
    assert "daily quota" in reason_text(fresh(db, ids[2]).last_error)


def test_lease_expiry_makes_unknown_and_fencing_refuses_the_late_completion(
        db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    adapter = FakeAdapter(["transient"])
    session = factory()
    jobs, _ = publishing.claim_due(session, now=clock.now, node="n1", limit=5,
                                   adapter_for=lambda c: adapter, lease_seconds=60)
    session.close()
    assert [j.post_id for j in jobs] == [post.id]
    assert fresh(db, post.id).status == "publishing"
    # The node hangs; the lease runs out and the reaper parks the post.
    clock.advance(61)
    reaped = publishing.reap_expired(factory(), now=clock.now, node="n2")
    assert reaped == [post.id]
    parked = fresh(db, post.id)
    assert parked.status == "unknown" and parked.claim_token is None
    # The hung node finally finishes with an error: its token no longer matches.
    outcome = publishing.run_publish(jobs[0], clock)
    s = factory()
    state = publishing.complete(s, outcome, now=clock.now, node="n1",
                                policy=publishing.RetryPolicy(), rng=random.Random(1))
    s.commit()
    assert state == "lost"
    assert fresh(db, post.id).status == "unknown"
    assert [a.outcome for a in attempts(db, post.id)] == ["lost", "lost"]


def test_late_success_after_reaping_is_proof_of_publication(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    adapter = FakeAdapter()
    s = factory()
    jobs, _ = publishing.claim_due(s, now=clock.now, node="n1", limit=5,
                                   adapter_for=lambda c: adapter, lease_seconds=1)
    clock.advance(2)
    publishing.reap_expired(s, now=clock.now, node="n2")
    outcome = publishing.run_publish(jobs[0], clock)
    state = publishing.complete(s, outcome, now=clock.now, node="n1",
                                policy=publishing.RetryPolicy(), rng=random.Random(1))
    s.commit()
    assert state == "published"
    assert fresh(db, post.id).external_id == f"ext-{post.id}"


def test_posts_of_a_node_whose_heartbeat_went_stale_are_reaped_before_the_lease_ends(
        db, factory, clock, author):
    """Issue #16 item 10: a crash costs about HEARTBEAT_STALE, not a whole lease. Only nodes
    known to have stopped are judged: one still beating, one with no heartbeat row at all (a
    bare dispatcher) and the reaping node itself keep their posts until their leases end."""
    from contentops.services import system

    channel = make_channel(db.session)
    nodes = ["dead", "alive", "rowless", "me"]
    posts = {n: make_post(db.session, channel, author, clock.now, title=n) for n in nodes}
    start = clock.now
    for n in ("dead", "alive", "me"):
        system.heartbeat(db.session, n, now=start)
    jobs = {}
    for n in nodes:
        s = factory()
        claimed, _ = publishing.claim_due(s, now=clock.now, node=n, limit=1,
                                          adapter_for=lambda c: FakeAdapter())
        s.close()
        jobs[n] = claimed[0]
    assert {j.post_id for j in jobs.values()} == {p.id for p in posts.values()}
    clock.advance(publishing.HEARTBEAT_STALE.total_seconds() - 1)
    for n in ("alive", "me"):
        system.heartbeat(db.session, n, now=clock.now)
    # Not stale yet: nothing to reap.
    assert publishing.reap_expired(factory(), now=clock.now, node="me") == []
    clock.advance(2)  # "dead" last beat HEARTBEAT_STALE + 1 s ago; "me" too, but it is me
    system.heartbeat(db.session, "alive", now=clock.now)
    reaped = publishing.reap_expired(factory(), now=clock.now, node="me")
    assert reaped == [jobs["dead"].post_id]  # long before the 120 s lease
    assert clock.now - start < timedelta(seconds=publishing.DEFAULT_LEASE_SECONDS)
    parked = fresh(db, jobs["dead"].post_id)
    assert parked.status == "unknown" and parked.next_attempt_at == clock.now
    lost = attempts(db, parked.id)[-1]
    assert lost.outcome == "lost" and lost.started_at == start
    assert "dead stopped mid-publish" in reason_text(lost.error)
    for n in ("alive", "rowless", "me"):
        assert fresh(db, jobs[n].post_id).status == "publishing"
    # A node that stopped cleanly is gone at once (e.g. a post its closing pool never sent).
    system.node_stopped(db.session, "alive", now=clock.now)
    assert publishing.reap_expired(factory(), now=clock.now, node="me") == [
        jobs["alive"].post_id]
    # "dead" was only slow: its late success is fenced out of the claim but proves the post.
    s = factory()
    state = publishing.complete(s, publishing.run_publish(jobs["dead"], clock),
                                now=clock.now, node="dead", policy=publishing.RetryPolicy(),
                                rng=random.Random(1))
    s.commit()
    assert state == "published"
    assert fresh(db, jobs["dead"].post_id).status == "published"
    # The rest wait for their leases, as before.
    clock.advance(publishing.DEFAULT_LEASE_SECONDS)
    assert set(publishing.reap_expired(factory(), now=clock.now, node="me")) == {
        jobs["rowless"].post_id, jobs["me"].post_id}


def _park_unknown(db, factory, clock, post):
    s = factory()
    publishing.claim_due(s, now=clock.now, node="dead", limit=5,
                         adapter_for=lambda c: FakeAdapter(), lease_seconds=1)
    clock.advance(2)
    publishing.reap_expired(s, now=clock.now, node="n2")
    s.close()
    assert fresh(db, post.id).status == "unknown"


def test_reconcile_proves_publication_through_find_existing(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    _park_unknown(db, factory, clock, post)
    adapter = FakeAdapter(capabilities=Capabilities(can_find_existing=True),
                          existing=PublishResult(external_id="found-1", url="https://x/1"))
    counts = publishing.reconcile_unknown(factory(), now=clock.now, node="n2",
                                          adapter_for=lambda c: adapter)
    assert counts["proved"] == 1
    done = fresh(db, post.id)
    assert done.status == "published" and done.external_id == "found-1"
    assert adapter.calls == []  # never re-sent
    assert attempts(db, post.id)[-1].outcome == "reconciled"


def test_reconcile_without_proof_waits_for_a_person(db, factory, clock, author, notified):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    _park_unknown(db, factory, clock, post)
    adapter = FakeAdapter(capabilities=Capabilities(can_find_existing=True), existing=None)
    counts = publishing.reconcile_unknown(factory(), now=clock.now, node="n2",
                                          adapter_for=lambda c: adapter)
    assert counts["person"] == 1
    waiting = fresh(db, post.id)
    assert waiting.status == "unknown" and waiting.next_attempt_at is None
    assert "not known whether" in reason_text(waiting.last_error)
    assert notified[-1]["params"]["post_id"] == post.id
    # Not picked up again by later reconcile runs, and never dispatched.
    clock.advance(3600)
    assert publishing.reconcile_unknown(factory(), now=clock.now, node="n2",
                                        adapter_for=lambda c: adapter)["person"] == 0
    dispatcher(factory, clock, adapter).run()
    assert adapter.calls == []
    # A person decides.
    publishing.mark_published(db.session, waiting, url="https://weixin.qq.com/x", actor=None,
                              now=clock.now)
    db.session.commit()
    assert fresh(db, post.id).status == "published"


def test_reconcile_resends_idempotent_channels_with_the_same_key(db, factory, clock, author):
    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    _park_unknown(db, factory, clock, post)
    adapter = FakeAdapter(capabilities=Capabilities(idempotent=True))
    counts = publishing.reconcile_unknown(factory(), now=clock.now, node="n2",
                                          adapter_for=lambda c: adapter)
    assert counts["resent"] == 1
    assert fresh(db, post.id).status == "retrying"
    dispatcher(factory, clock, adapter).run()
    assert fresh(db, post.id).status == "published"
    assert adapter.calls == [(post.id, publishing.idempotency_key(fresh(db, post.id)))]


@pytest.mark.parametrize("proof", [None, PublishResult(external_id="seen-9", url="https://x/9")])
def test_an_interrupted_send_beyond_grace_is_missed_not_resent(db, factory, clock, author,
                                                               notified, proof):
    """Issue #16 item 5: schedulers were down for two hours after a send was interrupted.
    A same-key re-send would be two hours late: the post is `missed` for a person to decide,
    unless a lookup proves it went out."""
    channel = make_channel(db.session, grace_minutes=5)
    post = make_post(db.session, channel, author, clock.now)
    claimed_at = clock.now
    s = factory()
    publishing.claim_due(s, now=clock.now, node="dead", limit=5,
                         adapter_for=lambda c: FakeAdapter(), lease_seconds=120)
    s.close()
    clock.advance(2 * 3600)
    assert publishing.reap_expired(factory(), now=clock.now, node="n2") == [post.id]
    lost = attempts(db, post.id)[-1]
    assert lost.outcome == "lost" and lost.started_at == claimed_at  # when it started
    adapter = FakeAdapter(capabilities=Capabilities(idempotent=True,
                                                    can_find_existing=proof is not None),
                          existing=proof)
    counts = publishing.reconcile_unknown(factory(), now=clock.now, node="n2",
                                          adapter_for=lambda c: adapter)
    done = fresh(db, post.id)
    dispatcher(factory, clock, adapter).run()
    assert adapter.calls == []  # never re-sent late
    if proof is not None:
        assert counts["proved"] == 1 and counts["missed"] == 0
        assert done.status == "published" and done.external_id == "seen-9"
        return
    assert counts == {"resent": 0, "proved": 0, "not_found": 0, "person": 0, "later": 0,
                      "missed": 1}
    assert done.status == "missed" and done.next_attempt_at is None
    assert done.claim_token is None
    text = reason_text(done.last_error)
    assert "interrupted at" in text and "more than 5 minutes late" in text, text
    assert claimed_at.strftime("%Y-%m-%d %H:%M UTC") in text, text
    assert notified[-1]["params"]["post_id"] == post.id
    assert fresh(db, post.id).status == "missed"
    # One click sends it: the same key, so a receiver that did get it dedupes.
    publishing.publish_now(db.session, done, actor=None, now=clock.now)
    db.session.commit()
    dispatcher(factory, clock, adapter).run()
    assert fresh(db, post.id).status == "published"
    assert adapter.calls == [(post.id, publishing.idempotency_key(done))]


def test_manual_channel_hands_the_post_to_people(db, factory, clock, author, make_user,
                                                 notified):
    make_user("editor", email="staff@example.com")
    channel = make_channel(db.session, "manual",
                           config={"assignees": ["staff@example.com"], "deadline_hours": 2})
    post = make_post(db.session, channel, author, clock.now)
    other = make_post(db.session, channel, author, clock.now)
    adapter_for = lambda c: build_adapter(c, SECRET_KEY)  # noqa: E731
    d = publishing.Dispatcher(factory, adapter_for, node="n", clock=clock, workers=2)
    stats = d.run()
    assert stats.awaiting_staff == 2
    task = fresh(db, post.id)
    assert task.status == "awaiting_staff"
    assert task.next_attempt_at == clock.now + timedelta(hours=2)
    assigned = [n for n in notified if n["kind"] == "assigned"]
    assert assigned and assigned[0]["users"] == ["staff@example.com"]
    # One is confirmed with its link; the other passes its deadline.
    publishing.mark_published(db.session, task, url="https://moments.example/1", actor=None,
                              now=clock.now)
    db.session.commit()
    clock.advance(2 * 3600 + 1)
    assert publishing.expire_staff_tasks(factory(), now=clock.now) == [other.id]
    assert fresh(db, post.id).status == "published"
    assert fresh(db, post.id).external_url == "https://moments.example/1"
    assert fresh(db, other.id).status == "missed"


def test_person_actions_and_their_refusals(db, clock, author):
    from contentops.errors import DomainError, ValidationError

    channel = make_channel(db.session)
    post = make_post(db.session, channel, author, clock.now + timedelta(hours=1))
    publishing.publish_now(db.session, post, actor=None, now=clock.now)
    assert post.status == "scheduled" and post.scheduled_at == clock.now
    publishing.unschedule_post(db.session, post, actor=None, now=clock.now)
    assert post.status == "unscheduled" and post.scheduled_at is None
    with pytest.raises(DomainError):
        publishing.retry_post(db.session, post, actor=None, now=clock.now)
    publishing.cancel_post(db.session, post, actor=None, now=clock.now)
    assert post.status == "cancelled"
    with pytest.raises(DomainError):
        publishing.cancel_post(db.session, post, actor=None, now=clock.now)
    post.status = "failed"
    post.piece.version = 2  # edited: no longer approved as is
    with pytest.raises(DomainError) as exc:
        publishing.retry_post(db.session, post, actor=None, now=clock.now)
    assert exc.value.code == "not_approved"
    post.status = "unknown"
    with pytest.raises(ValidationError):
        publishing.mark_published(db.session, post, url="javascript:alert(1)", actor=None,
                                  now=clock.now)


def test_burst_of_due_posts_all_go_out_once(db, factory, clock, author):
    channel = make_channel(db.session)
    ids = make_posts(db.session, channel, author, clock.now, 300)
    adapter = FakeAdapter()
    stats = dispatcher(factory, clock, adapter, workers=8).run()
    assert stats.published == 300
    assert sorted(c[0] for c in adapter.calls) == ids
    assert len({c[1] for c in adapter.calls}) == 300


def test_nested_reasons_render_in_one_language_with_their_detail_once():
    from contentops.reasons import encode_reason, nested_reason

    inner = encode_reason("%(service)s refused the message (error %(code)s: %(reason)s).",
                          {"service": "WeCom", "code": 93000, "reason": "invalid key"},
                          "errcode 93000: invalid key")
    outer = encode_reason("Gave up after %(attempts)s attempts. Last error: %(error)s",
                          {"attempts": 3, "error": nested_reason(inner)})
    seen: list[str] = []

    def translate(msgid: str, params: dict) -> str:
        seen.append(msgid)
        return "<" + msgid % params + ">"

    text = reason_text(outer, translate)
    # The inner message goes through the same translator; its detail is added once, at the
    # end, and only because the text does not already say it.
    assert seen == ["%(service)s refused the message (error %(code)s: %(reason)s).",
                    "Gave up after %(attempts)s attempts. Last error: %(error)s"]
    assert text == ("<Gave up after 3 attempts. Last error: <WeCom refused the message "
                    "(error 93000: invalid key).>> (errcode 93000: invalid key)")
    # Reasons stored before nesting (the last error pre-rendered as text) still read.
    old = encode_reason("Gave up after %(attempts)s attempts. Last error: %(error)s",
                        {"attempts": 2, "error": "The receiver is busy (HTTP 503)."})
    assert reason_text(old) == ("Gave up after 2 attempts. Last error: The receiver is busy "
                                "(HTTP 503).")
