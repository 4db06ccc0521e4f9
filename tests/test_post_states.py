"""The post state table (contentops/post_states.py): complete, and what the engine does."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from contentops import post_states
from contentops.errors import DomainError
from contentops.models import POST_STATES, AuditEvent, Post
from contentops.services import publishing, review

ALL_PAIRS = set(itertools.product(POST_STATES, post_states.POST_ACTIONS))
# Every field an action may clear, set or reset, filled before each run so a clear shows.
FIELDS = ("next_attempt_at", "last_error", "claim_token", "scheduled_at")


def test_table_is_explicit_and_complete():
    listed = set(post_states.TRANSITIONS)
    assert listed | post_states.REFUSED == ALL_PAIRS
    assert not listed & post_states.REFUSED
    for transition in post_states.BY_ACTION.values():
        # Each action names every state once, either as a source or as refused.
        assert sorted(transition.sources + transition.refused) == sorted(POST_STATES), \
            transition.action
        assert transition.to in POST_STATES
        assert not set(transition.clears) & set(transition.sets)
    # Every state appears: as a source of some action, and as a target or an engine state.
    assert {s for s, _ in listed} | {"publishing", "published"} == set(POST_STATES)
    assert set(post_states.TRANSITIONS.values()) <= set(POST_STATES)


def test_schedulable_is_the_table():
    assert post_states.sources("schedule") == publishing.SCHEDULABLE


def test_piece_saves_move_posts_by_the_table(make):
    """Removing a channel from a piece cancels its failed post; choosing the channel again
    revives it as unscheduled (services/content.py) — the table's cancel and unschedule."""
    a, b = make.channel(name="A"), make.channel(name="B")
    piece = make.piece(channels=[a, b])
    post = next(p for p in piece.posts if p.channel_id == a.id)
    post.status, post.claim_token = "failed", "tok"
    post.next_attempt_at = make.now
    post.scheduled_at = make.now - timedelta(hours=1)
    make.commit()
    make.edit(piece, channel_ids=[b.id])
    assert post.status == "cancelled"
    assert all(getattr(post, f) is None for f in post_states.BY_ACTION["cancel"].clears)
    make.edit(piece, channel_ids=[a.id, b.id])
    assert post.status == "unscheduled"
    assert all(getattr(post, f) is None for f in post_states.BY_ACTION["unschedule"].clears)


def _run(make, post, action):
    """The engine's public function for each action."""
    s, user, now = make.session, make.author, make.now
    if action == "schedule":
        return publishing.schedule_post(s, post, now + timedelta(days=2), actor=user, now=now)
    if action == "publish_now":
        return publishing.publish_now(s, post, actor=user, now=now)
    if action == "retry":
        return publishing.retry_post(s, post, actor=user, now=now)
    if action == "cancel":
        return publishing.cancel_post(s, post, actor=user, now=now)
    if action == "unschedule":
        return publishing.unschedule_post(s, post, actor=user, now=now)
    if action == "mark_published":
        return publishing.mark_published(s, post, url="https://example.com/p", actor=user,
                                         now=now)
    raise AssertionError(action)


PEOPLE_ACTIONS = [a for a in post_states.POST_ACTIONS if a != "approved_late"]


def _post_in(make, state):
    post = make.post(make.channel(name="Team hook"), make.now + timedelta(hours=1),
                     status=state)
    post.next_attempt_at = make.now + timedelta(minutes=5)
    post.last_error = "earlier problem"
    post.claim_token = "tok"
    post.attempt_count = 3
    make.commit()
    return post


@pytest.mark.parametrize("state,action", sorted(
    (s, a) for s, a in post_states.TRANSITIONS if a in PEOPLE_ACTIONS))
def test_each_allowed_action_has_the_tables_effect(make, state, action):
    post = _post_in(make, state)
    _run(make, post, action)
    make.commit()
    transition = post_states.BY_ACTION[action]
    assert post.status == transition.to
    for name in transition.clears:
        assert getattr(post, name) is None, name
    for name, value in transition.resets:
        assert getattr(post, name) == value, name
    for name in transition.sets:
        assert getattr(post, name) is not None, name
    # Fields the table does not name are left as they were.
    untouched = set(FIELDS) - set(transition.clears) - set(transition.sets)
    for name in untouched:
        assert getattr(post, name) is not None, name
    event = make.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "post", AuditEvent.object_id == post.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.actor_id == make.author.id


@pytest.mark.parametrize("state,action", sorted(
    (s, a) for s, a in post_states.REFUSED if a in PEOPLE_ACTIONS))
def test_each_refused_action_is_refused_and_changes_nothing(make, state, action):
    post = _post_in(make, state)
    before = {name: getattr(post, name) for name in FIELDS + ("status", "attempt_count")}
    with pytest.raises(DomainError) as refused:
        _run(make, post, action)
    assert refused.value.code == "invalid_state"
    assert refused.value.params == {"status": state}
    assert {name: getattr(post, name) for name in before} == before


def test_review_release_marks_a_due_post_missed_by_the_table(make):
    """approved_late: the piece is approved after its post's time: missed, not sent late."""
    channel = make.channel(name="Team hook")
    piece = make.piece(channels=[channel], when=make.now - timedelta(minutes=10))
    late, = piece.posts
    assert late.status == "scheduled"
    make.approve(piece)
    assert late.status == post_states.TRANSITIONS[("scheduled", "approved_late")] == "missed"
    assert late.last_error == review.MISSED_REASON
    assert late.next_attempt_at is None


def test_review_release_leaves_states_the_table_refuses(make):
    """A retrying post whose approval came late is released, not marked missed."""
    channel = make.channel(name="Team hook")
    piece = make.piece(channels=[channel])
    post, = piece.posts
    post.status = "retrying"
    post.scheduled_at = make.now - timedelta(minutes=10)
    post.next_attempt_at = make.now - timedelta(minutes=1)
    make.commit()
    assert ("retrying", "approved_late") in post_states.REFUSED
    make.approve(piece)
    assert post.status == "retrying"
    assert make.session.scalar(select(Post.id).where(
        Post.id == post.id, review.claimable_clause())) == post.id
