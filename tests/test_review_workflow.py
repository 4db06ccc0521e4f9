"""Review states, refusals, two-approval channels and invariant 1 (edit → hold → release)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from contentops.errors import DomainError, Forbidden, ValidationError
from contentops.models import AuditEvent, Post
from contentops.models.review import Approval, Notification
from contentops.services import app_settings, review

from .builders import NOW, Make

TOMORROW = NOW + timedelta(days=1)


def piece_of(make: Make, author, *, when=TOMORROW, title="秋季新品上市",
             body="欢迎来店里看看。", **kwargs):
    """A draft piece by `author`, its posts scheduled (tomorrow unless said)."""
    return make.piece(author=author, when=when, title=title, body=body, **kwargs)


@pytest.fixture
def people(make):
    return {
        "editor": make.user("editor", name="Lin"),
        "approver": make.user("approver", name="Wang"),
        "approver2": make.user("approver", name="Zhao"),
        "admin": make.user("admin", name="Boss"),
        "viewer": make.user("viewer", name="Guest"),
    }


def audit_actions(db, piece) -> list[str]:
    """The piece's review events (creating and saving it are the content service's)."""
    return list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "piece", AuditEvent.object_id == piece.id,
        AuditEvent.action.not_in(("piece.created", "piece.updated")))
        .order_by(AuditEvent.id)))


def test_transition_table_is_explicit_and_complete():
    states = {"draft", "in_review", "changes_requested", "approved"}
    assert {s for s, _ in review.TRANSITIONS} <= states
    assert set(review.TRANSITIONS.values()) <= states
    assert {a for _, a in review.TRANSITIONS} == set(review.ACTIONS)


def test_happy_path_writes_audit_for_every_transition(db, make, people):
    piece = piece_of(make, people["editor"])
    review.submit(db.session, piece, people["editor"], NOW, comment="请看")
    assert piece.status == "in_review" and piece.submitted_at == NOW
    review.request_changes(db.session, piece, people["approver"], NOW, comment="标题太长")
    assert piece.status == "changes_requested"
    make.edit(piece, people["editor"], at=NOW, title="秋季新品")
    assert piece.status == "draft" and piece.version == 2
    review.submit(db.session, piece, people["editor"], NOW)
    review.approve(db.session, piece, people["approver"], NOW, version=2, comment="好")
    db.session.commit()
    assert piece.status == "approved" and piece.approved_version == 2
    assert audit_actions(db, piece) == ["piece.submit", "piece.request_changes", "piece.edit",
                                        "piece.submit", "piece.approve"]
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "piece.approve")).one()
    assert event.actor_id == people["approver"].id
    assert event.data["from"] == "in_review" and event.data["to"] == "approved"
    assert event.data["version"] == 2 and event.data["comment"] == "好"


def test_withdraw_and_reopen(db, make, people):
    piece = piece_of(make, people["editor"])
    review.submit(db.session, piece, people["editor"], NOW)
    review.withdraw(db.session, piece, people["editor"], NOW)
    assert piece.status == "draft"
    review.submit(db.session, piece, people["editor"], NOW)
    review.approve(db.session, piece, people["approver"], NOW)
    review.reopen(db.session, piece, people["editor"], NOW, comment="再改改")
    db.session.commit()
    assert piece.status == "draft" and piece.approved_version is None
    assert all(p.hold is not None for p in piece.posts)
    assert make.claimable_ids() == set()


@pytest.mark.parametrize("state,action", [
    ("draft", "approve"), ("draft", "withdraw"), ("draft", "request_changes"),
    ("draft", "reopen"), ("in_review", "submit"), ("in_review", "reopen"),
    ("approved", "submit"), ("approved", "withdraw"), ("changes_requested", "approve"),
    ("changes_requested", "withdraw"),
])
def test_illegal_transitions_are_refused_and_change_nothing(db, make, people, state, action):
    piece = piece_of(make, people["editor"])
    # Bring the piece into `state` through the workflow.
    if state != "draft":
        make.submit(piece)
    if state == "approved":
        make.approve(piece, people["approver"])
    if state == "changes_requested":
        review.request_changes(db.session, piece, people["approver"], NOW, comment="改")
    assert piece.status == state
    with pytest.raises(DomainError) as info:
        review.check_action(db.session, piece, action, people["admin"])
    assert info.value.code == "invalid_transition"
    assert piece.status == state


def test_roles_are_enforced(db, make, people):
    piece = piece_of(make, people["editor"])
    with pytest.raises(Forbidden):
        review.submit(db.session, piece, people["viewer"], NOW)
    review.submit(db.session, piece, people["editor"], NOW)
    with pytest.raises(Forbidden):
        review.approve(db.session, piece, people["editor"], NOW)
    with pytest.raises(Forbidden):
        review.request_changes(db.session, piece, people["editor"], NOW, comment="x")
    assert piece.status == "in_review"


def test_self_approval_refused_unless_admin_allows(db, make, people):
    approver = people["approver"]
    piece = piece_of(make, approver)
    review.submit(db.session, piece, approver, NOW)
    with pytest.raises(Forbidden) as info:
        review.approve(db.session, piece, approver, NOW)
    assert info.value.code == "self_approval"
    # An admin is bound by the same rule.
    own = piece_of(make, people["admin"])
    review.submit(db.session, own, people["admin"], NOW)
    with pytest.raises(Forbidden):
        review.approve(db.session, own, people["admin"], NOW)
    app_settings.put(db.session, "review.allow_self_approval", True, actor=people["admin"])
    review.approve(db.session, piece, approver, NOW)
    assert piece.status == "approved"


def test_writer_of_the_version_may_not_approve_it(db, make, people):
    piece = piece_of(make, people["editor"])
    make.edit(piece, people["approver"], at=NOW, body="改过的正文")
    review.submit(db.session, piece, people["editor"], NOW)
    with pytest.raises(Forbidden):
        review.approve(db.session, piece, people["approver"], NOW)
    review.approve(db.session, piece, people["approver2"], NOW)


def test_stale_version_is_refused_with_what_changed(db, make, people):
    piece = piece_of(make, people["editor"])
    review.submit(db.session, piece, people["editor"], NOW)
    db.session.commit()
    make.edit(piece, people["editor"], at=NOW, title="新标题")
    review.submit(db.session, piece, people["editor"], NOW)
    with pytest.raises(review.StaleVersion) as info:
        review.approve(db.session, piece, people["approver"], NOW, version=1)
    assert info.value.changed == ["title"]
    assert info.value.params == {"seen": 1, "current": 2, "changes": "title"}
    assert piece.status == "in_review"
    with pytest.raises(review.StaleVersion):
        review.request_changes(db.session, piece, people["approver"], NOW, comment="x",
                               version=1)


def test_request_changes_needs_a_comment(db, make, people):
    piece = piece_of(make, people["editor"])
    review.submit(db.session, piece, people["editor"], NOW)
    with pytest.raises(ValidationError) as info:
        review.request_changes(db.session, piece, people["approver"], NOW, comment="  ")
    assert "comment" in info.value.fields


def test_invariant_1_edit_holds_posts_and_reapproval_releases(db, make, people):
    ch = make.channel(name="Team hook")
    soon = piece_of(make, people["editor"], channels=[ch], when=NOW + timedelta(hours=1))
    other = piece_of(make, people["editor"], channels=[ch], when=NOW + timedelta(hours=5))
    for piece in (soon, other):
        review.submit(db.session, piece, people["editor"], NOW)
        review.approve(db.session, piece, people["approver"], NOW, version=1)
    db.session.commit()
    assert make.claimable_ids() == {p.id for p in soon.posts + other.posts}

    # Editing an approved piece: new version, approval void, posts held, approver told.
    make.edit(soon, people["editor"], at=NOW, body="改了价格")
    assert soon.version == 2 and soon.status == "draft" and soon.approved_version is None
    post = soon.posts[0]
    assert post.hold is not None and post.hold.reason == "content_changed"
    assert post.status == "scheduled"
    assert make.claimable_ids() == {p.id for p in other.posts}
    told = db.session.scalars(select(Notification).where(
        Notification.kind == "approval_voided")).all()
    assert [n.user_id for n in told] == [people["approver"].id]

    # Re-approval after the time passed: the post becomes missed, never sent late.
    later = NOW + timedelta(hours=2)
    review.submit(db.session, soon, people["editor"], later)
    review.approve(db.session, soon, people["approver"], later, version=2)
    db.session.commit()
    db.session.refresh(post)
    assert post.status == "missed" and post.hold is None
    assert post.last_error == review.MISSED_REASON
    assert post.id not in make.claimable_ids()

    # Re-approval in time releases the hold.
    make.edit(other, people["editor"], at=later, body="新版")
    assert other.posts[0].hold is not None
    review.submit(db.session, other, people["editor"], later)
    review.approve(db.session, other, people["approver"], later, version=2)
    db.session.commit()
    db.session.refresh(other.posts[0])
    assert other.posts[0].hold is None and other.posts[0].status == "scheduled"
    assert other.posts[0].id in make.claimable_ids()
    actions = set(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "post")))
    assert {"post.held", "post.released", "post.missed"} <= actions


def test_late_first_approval_marks_due_posts_missed(db, make, people):
    piece = piece_of(make, people["editor"], when=NOW - timedelta(minutes=5))
    review.submit(db.session, piece, people["editor"], NOW - timedelta(hours=1))
    review.approve(db.session, piece, people["approver"], NOW)
    db.session.commit()
    assert piece.posts[0].status == "missed"


def test_two_approval_channel_needs_two_distinct_approvers(db, make, people):
    main = make.channel(name="公众号主号", requires_two_approvals=True)
    team = make.channel(name="Team hook")
    piece = piece_of(make, people["editor"], channels=[main, team])
    mp_post = next(p for p in piece.posts if p.channel_id == main.id)
    team_post = next(p for p in piece.posts if p.channel_id == team.id)
    review.submit(db.session, piece, people["editor"], NOW)
    review.approve(db.session, piece, people["approver"], NOW, version=1)
    db.session.commit()
    assert piece.status == "approved"
    assert make.claimable_ids() == {team_post.id}
    assert review.awaiting_second_approval(db.session, piece)
    assert [i.piece.id for i in review.review_queue(db.session, NOW)] == [piece.id]
    # The same approver twice does not count.
    with pytest.raises(DomainError) as info:
        review.approve(db.session, piece, people["approver"], NOW, version=1)
    assert info.value.code == "already_approved"
    review.approve(db.session, piece, people["approver2"], NOW, version=1)
    db.session.commit()
    assert make.claimable_ids() == {team_post.id, mp_post.id}
    assert review.review_queue(db.session, NOW) == []
    with pytest.raises(DomainError):
        review.approve(db.session, piece, people["admin"], NOW)
    # An edit voids both approvals.
    make.edit(piece, people["editor"], at=NOW, title="改")
    assert db.session.scalars(select(Approval).where(
        Approval.voided_at.is_(None))).all() == []
    assert make.claimable_ids() == set()


def test_second_approval_after_due_time_misses_only_that_channel(db, make, people):
    main = make.channel(name="公众号主号", requires_two_approvals=True)
    team = make.channel(name="Team hook")
    piece = piece_of(make, people["editor"], channels=[main, team], when=NOW + timedelta(hours=1))
    review.submit(db.session, piece, people["editor"], NOW)
    review.approve(db.session, piece, people["approver"], NOW)
    review.approve(db.session, piece, people["approver2"], NOW + timedelta(hours=2))
    db.session.commit()
    states = {p.channel_id: p.status for p in piece.posts}
    assert states == {main.id: "missed", team.id: "scheduled"}


def test_claimable_clause_composes_with_a_claim_query(db, make, people):
    piece = piece_of(make, people["editor"], when=NOW - timedelta(seconds=1))
    review.submit(db.session, piece, people["editor"], NOW - timedelta(hours=1))
    review.approve(db.session, piece, people["approver"], NOW - timedelta(minutes=30))
    db.session.commit()
    due = db.session.scalars(select(Post).where(
        Post.status.in_(("scheduled", "retrying")), Post.scheduled_at <= NOW,
        review.claimable_clause())).all()
    assert due == piece.posts
    assert review.is_claimable(db.session, piece.posts[0])


def test_review_queue_is_oldest_first_with_wait_time(db, make, people):
    first = piece_of(make, people["editor"], title="A")
    second = piece_of(make, people["editor"], title="B")
    review.submit(db.session, second, people["editor"], NOW - timedelta(hours=1))
    review.submit(db.session, first, people["editor"], NOW - timedelta(hours=3))
    db.session.commit()
    queue = review.review_queue(db.session, NOW)
    assert [i.piece.title for i in queue] == ["A", "B"]
    assert queue[0].waiting == timedelta(hours=3)
    assert queue[0].next_time == NOW + timedelta(days=1)
    assert review.queue_count(db.session) == 2


def test_submit_notifies_approvers_and_approval_notifies_author(db, make, people):
    piece = piece_of(make, people["editor"])
    review.submit(db.session, piece, people["editor"], NOW)
    review.approve(db.session, piece, people["approver"], NOW)
    db.session.commit()
    rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    submitted = {n.user_id for n in rows if n.kind == "submitted"}
    assert submitted == {people["approver"].id, people["approver2"].id, people["admin"].id}
    approved = [n for n in rows if n.kind == "approved"]
    assert [n.user_id for n in approved] == [people["editor"].id]
    assert approved[0].params["title"] == piece.title
    assert approved[0].link == f"/review/pieces/{piece.id}"


@pytest.mark.postgres
def test_claimable_clause_and_queue_on_postgres(tmp_path, pg_url, monkeypatch):
    from contentops.extensions import db as _db
    from contentops.services import users as user_service

    from .builders import cached_hash
    from .conftest import make_app

    monkeypatch.setattr(user_service, "hash_password", cached_hash)
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        make = Make(_db.session)
        people = {name: make.user(role, name=name) for role, name in (
            ("editor", "Lin"), ("approver", "Wang"), ("approver", "Zhao"))}
        main = make.channel(name="公众号主号", requires_two_approvals=True)
        team = make.channel(name="Team hook")
        piece = piece_of(make, people["Lin"], channels=[main, team])
        review.submit(_db.session, piece, people["Lin"], NOW)
        review.approve(_db.session, piece, people["Wang"], NOW, version=1)
        _db.session.commit()
        by_channel = {p.channel_id: p.id for p in piece.posts}
        assert make.claimable_ids() == {by_channel[team.id]}
        assert [i.piece.id for i in review.review_queue(_db.session, NOW)] == [piece.id]
        review.approve(_db.session, piece, people["Zhao"], NOW, version=1)
        _db.session.commit()
        assert make.claimable_ids() == set(by_channel.values())
        make.edit(piece, people["Lin"], at=NOW, body="新版")
        assert make.claimable_ids() == set()
        _db.session.remove()
        _db.engine.dispose()


@pytest.mark.parametrize("state,action", sorted(review.TRANSITIONS))
def test_every_transition_in_the_table(db, make, people, state, action):
    two = make.channel(name="公众号主号", requires_two_approvals=True)
    piece = piece_of(make, people["editor"], channels=[two])
    # Bring the piece into `state` the way people do.
    if state in ("in_review", "approved", "changes_requested"):
        review.submit(db.session, piece, people["editor"], NOW)
    if state == "approved":
        review.approve(db.session, piece, people["approver"], NOW)
    if state == "changes_requested":
        review.request_changes(db.session, piece, people["approver"], NOW, comment="改")
    assert piece.status == state
    actor = people["approver2"] if action in ("approve", "request_changes") else \
        people["editor"]
    if action == "submit":
        review.submit(db.session, piece, actor, NOW)
    elif action == "withdraw":
        review.withdraw(db.session, piece, actor, NOW)
    elif action == "approve":
        review.approve(db.session, piece, actor, NOW, version=piece.version)
    elif action == "request_changes":
        review.request_changes(db.session, piece, actor, NOW, comment="再改")
    elif action == "reopen":
        review.reopen(db.session, piece, actor, NOW)
    else:
        make.edit(piece, actor, at=NOW, body="新的正文")
    db.session.commit()
    assert piece.status == review.TRANSITIONS[(state, action)]
    last = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "piece", AuditEvent.action != "piece.updated")
        .order_by(AuditEvent.id.desc())).first()
    if not (state == "draft" and action == "edit"):
        assert last.action == f"piece.{action}"
        assert (last.data["from"], last.data["to"]) == (state, piece.status)
        assert last.data["version"] == piece.version
    approved_now = piece.status == "approved"
    assert (piece.approved_version is not None) == approved_now
