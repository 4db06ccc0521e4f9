"""Builders for review tests: pieces with posts on channels, and an edit like the editor's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contentops.extensions import db
from contentops.models import Audience, Channel, ContentPiece, PieceRevision, Post, Style, User
from contentops.services import review

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def taxonomy() -> tuple[Audience, Style]:
    audience = db.session.query(Audience).filter_by(name="新会员").one_or_none()
    if audience is None:
        audience = Audience(name="新会员")
        db.session.add(audience)
    style = db.session.query(Style).filter_by(name="亲切").one_or_none()
    if style is None:
        style = Style(name="亲切")
        db.session.add(style)
    db.session.flush()
    return audience, style


def channel(name: str = "Team hook", *, two: bool = False, kind: str = "webhook") -> Channel:
    existing = db.session.query(Channel).filter_by(name=name).one_or_none()
    if existing is not None:
        return existing
    ch = Channel(name=name, kind=kind, config={"url": "https://example.com/hook"},
                 requires_two_approvals=two)
    db.session.add(ch)
    db.session.flush()
    return ch


def make_piece(author: User, *, title: str = "秋季新品上市", body: str = "欢迎来店里看看。",
               channels: list[Channel] | None = None, when: datetime | None = None,
               status: str = "draft") -> ContentPiece:
    audience, style = taxonomy()
    piece = ContentPiece(title=title, body=body, summary="", author_id=author.id,
                         audience_id=audience.id, style_id=style.id, status=status, version=1,
                         created_at=NOW, updated_at=NOW)
    db.session.add(piece)
    db.session.flush()
    db.session.add(PieceRevision(piece_id=piece.id, version=1, title=title, body=body,
                                 author_id=author.id, created_at=NOW))
    for ch in channels if channels is not None else [channel()]:
        db.session.add(Post(piece_id=piece.id, channel_id=ch.id,
                            scheduled_at=when or NOW + timedelta(days=1),
                            status="scheduled"))
    db.session.commit()
    db.session.refresh(piece)
    return piece


def edit(piece: ContentPiece, actor: User, now: datetime, *, title: str | None = None,
         body: str | None = None) -> None:
    """What the editor does on save: a new version with its snapshot, then the seam."""
    piece.title = title if title is not None else piece.title
    piece.body = body if body is not None else piece.body
    piece.version += 1
    piece.updated_at = now
    db.session.add(PieceRevision(piece_id=piece.id, version=piece.version, title=piece.title,
                                 body=piece.body, author_id=actor.id, created_at=now))
    db.session.flush()
    review.content_changed(db.session, piece, actor, now)
    db.session.commit()


def claimable_ids() -> set[int]:
    from sqlalchemy import select

    # As the dispatcher asks: claimable states plus the review condition.
    return set(db.session.scalars(select(Post.id).where(
        Post.status.in_(("scheduled", "retrying")), review.claimable_clause())))
