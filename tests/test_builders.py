"""The test builders (tests/builders.py) build through the services, and the old helper
modules kept for other tests build the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from contentops.errors import ValidationError
from contentops.models import AuditEvent, FeedbackEvent, PieceRevision
from contentops.models.review import Approval
from contentops.services import review

from .builders import Make


def actions(make, object_type, object_id) -> list[str]:
    return list(make.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
        .order_by(AuditEvent.id)))


def test_post_is_approved_through_review_and_scheduled_through_the_engine(make):
    channel = make.channel()
    when = make.now + timedelta(hours=2)
    post = make.post(channel, when)
    piece = post.piece
    assert piece.status == "approved" and piece.is_approved_as_is
    assert post.status == "scheduled" and post.scheduled_at == when
    assert make.claimable_ids() == {post.id}
    assert actions(make, "piece", piece.id) == ["piece.created", "piece.submit",
                                                "piece.approve"]
    assert actions(make, "post", post.id) == ["post.scheduled"]
    approver = make.session.scalar(select(Approval.user_id).where(
        Approval.piece_id == piece.id))
    assert approver != piece.author_id
    assert make.session.scalar(select(PieceRevision.version).where(
        PieceRevision.piece_id == piece.id)) == 1


def test_two_approval_channel_gets_two_distinct_approvers(make):
    two = make.channel(name="公众号主号", requires_two_approvals=True)
    post = make.post(two, make.now + timedelta(hours=1))
    approvers = {a.user_id for a in review.active_approvals(make.session, post.piece)}
    assert len(approvers) == 2 and post.piece.author_id not in approvers
    assert make.claimable_ids() == {post.id}


def test_a_piece_approved_after_its_time_has_missed_posts(make):
    piece = make.piece(when=make.now - timedelta(minutes=1))
    make.approve(piece)
    assert [p.status for p in piece.posts] == ["missed"]
    # make.post schedules after approving: a past time is simply due.
    due = make.post(make.channel(), make.now - timedelta(minutes=1))
    assert due.status == "scheduled"


def test_checked_false_skips_only_the_schedule_time_quota(make):
    channel = make.channel(daily_quota=1)
    when = make.now + timedelta(hours=1)
    make.post(channel, when)
    with pytest.raises(ValidationError) as refused:
        make.post(channel, when + timedelta(minutes=5))
    assert "scheduled_at" in refused.value.fields
    over = make.post(channel, when + timedelta(minutes=5), checked=False)
    assert over.status == "scheduled" and over.piece.is_approved_as_is


def test_channels_go_through_the_channel_service(make):
    with pytest.raises(ValidationError) as refused:
        make.channel("webhook", config={"url": "not a url"})
    assert set(refused.value.fields) == {"config.url", "config.secret"}
    same = make.channel(name="Team hook")
    assert make.channel(name="Team hook").id == same.id


def test_edit_makes_a_version_and_holds_posts(make):
    post = make.post(make.channel(), make.now + timedelta(hours=1))
    make.edit(post.piece, body="新的正文")
    assert post.piece.version == 2 and post.piece.status == "draft"
    assert post.hold is not None and make.claimable_ids() == set()


def test_published_posts_and_feedback_through_the_ingest(make):
    post = make.published(make.channel("web"), slug="hello", reads=3)
    assert post.status == "published" and post.published_at is not None
    make.feedback(post, "read", 2)
    make.feedback(post, "like")
    make.session.refresh(post)
    assert (post.reads, post.likes) == (5, 1)
    rows = make.session.scalars(select(FeedbackEvent.kind).where(
        FeedbackEvent.post_id == post.id).order_by(FeedbackEvent.id)).all()
    assert rows == ["read", "like"]


def test_two_builders_on_one_database_do_not_collide(make):
    other = Make(make.session)
    assert make.user().email != other.user().email
    assert make.channel().name != other.channel().name


def test_old_helpers_build_through_the_services(db, make):
    from . import engine_support, feedback_fixtures, pieces_helpers, review_helpers

    # First: its records are found by name later, so they must be the ones it describes.
    taxonomy = pieces_helpers.make_taxonomy(db.session)
    assert taxonomy.off.active is False and taxonomy.style.guidelines == "warm"
    assert actions(make, "audience", taxonomy.audience.id) == ["audience.created"]

    author = make.user("editor")
    piece = review_helpers.make_piece(author, status="approved")
    assert piece.is_approved_as_is and actions(make, "piece", piece.id)[0] == "piece.created"
    review_helpers.edit(piece, author, review_helpers.NOW, body="改")
    assert piece.version == 2 and review_helpers.claimable_ids() == set()

    channel = engine_support.make_channel(db.session)
    post = engine_support.make_post(db.session, channel, author, make.now)
    assert post.piece.is_approved_as_is and post.status == "scheduled"
    assert actions(make, "channel", channel.id) == ["channel.created"]

    published = feedback_fixtures.make_post(db.session, reads=7, slug="seven")
    assert published.status == "published" and published.reads == 7
    assert published.piece.audience.id == taxonomy.audience.id
