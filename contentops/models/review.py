"""Review workflow records: approvals, post holds, comments, reviewer links, compliance terms,
in-app notifications and team-wide settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from .content import ContentPiece
from .posts import Post
from .types import UTCDateTime
from .users import User


class Approval(db.Model):
    """One approver's approval of one version. Voided when the approval stops counting
    (edit, reopen, changes requested) so a later approval of the same version starts afresh."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_piece_version", "piece_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    piece_id: Mapped[int] = mapped_column(ForeignKey("content_pieces.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship()


class PostHold(db.Model):
    """A post that must not go out until its piece is approved (again). One row per post."""

    __tablename__ = "post_holds"

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"),
                                         primary_key=True)
    # content_changed | approval_withdrawn
    reason: Mapped[str] = mapped_column(String(32))
    # The piece version whose approval was voided.
    version: Mapped[int | None] = mapped_column(Integer)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    post: Mapped[Post] = relationship(backref=backref("hold", uselist=False, passive_deletes=True))


class Comment(db.Model):
    """A comment on a piece, optionally a reply to another (threads)."""

    __tablename__ = "review_comments"
    __table_args__ = (
        Index("ix_review_comments_piece_created", "piece_id", "created_at"),
        # A form sent twice carries the same nonce: stored once.
        UniqueConstraint("piece_id", "nonce"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    piece_id: Mapped[int] = mapped_column(ForeignKey("content_pieces.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_comments.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Name given by an external reviewer (no account).
    author_label: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()
    piece: Mapped[ContentPiece] = relationship()

    @property
    def author_name(self) -> str:
        if self.author is not None:
            return self.author.name
        return self.author_label or ""


class ReviewLink(db.Model):
    """A signed, expiring, revocable link that lets someone without an account review one
    version of one piece and decide once."""

    __tablename__ = "review_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    piece_id: Mapped[int] = mapped_column(
        ForeignKey("content_pieces.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # Random part of the signed token; rotating it would invalidate the link.
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # approved | changes_requested, recorded once.
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewer_name: Mapped[str | None] = mapped_column(String(100))

    piece: Mapped[ContentPiece] = relationship()
    created_by: Mapped[User | None] = relationship()


class ComplianceTerm(db.Model):
    """An Advertising-Law absolute term (or any phrase the team bans); admin-editable."""

    __tablename__ = "compliance_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(100), unique=True)
    severity: Mapped[str] = mapped_column(String(10), default="error")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(db.Model):
    """An in-app notification. `message` is a msgid translated for the reader at display."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class AppSetting(db.Model):
    """Team-wide settings an admin changes in the UI (JSON value per key)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict | list | str | int | bool | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

