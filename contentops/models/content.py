"""Content pieces, their revisions and tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from .taxonomy import Audience, Campaign, Style
from .types import UTCDateTime
from .users import User

# Review states (DESIGN.md §3). The transitions live in services/review.py.
PIECE_STATES: tuple[str, ...] = ("draft", "in_review", "changes_requested", "approved")

piece_tags = Table(
    "piece_tags",
    db.metadata,
    Column("piece_id", ForeignKey("content_pieces.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class ContentPiece(db.Model):
    __tablename__ = "content_pieces"
    __table_args__ = (Index("ix_content_pieces_status_updated", "status", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    audience_id: Mapped[int | None] = mapped_column(
        ForeignKey("audiences.id", ondelete="RESTRICT"), index=True)
    style_id: Mapped[int | None] = mapped_column(
        ForeignKey("styles.id", ondelete="RESTRICT"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="RESTRICT"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The version an approver approved; posts publish only while version == approved_version.
    approved_version: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    audience: Mapped[Audience | None] = relationship()
    style: Mapped[Style | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    author: Mapped[User] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=piece_tags, order_by=Tag.name)
    revisions: Mapped[list[PieceRevision]] = relationship(
        back_populates="piece", order_by="PieceRevision.version",
        cascade="all, delete-orphan")
    posts: Mapped[list[Post]] = relationship(  # noqa: F821
        "Post", back_populates="piece", cascade="all, delete-orphan", order_by="Post.id")

    @property
    def is_approved_as_is(self) -> bool:
        return self.status == "approved" and self.approved_version == self.version


class PieceRevision(db.Model):
    """An immutable snapshot of a piece's text at one version."""

    __tablename__ = "piece_revisions"
    __table_args__ = (UniqueConstraint("piece_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    piece_id: Mapped[int] = mapped_column(ForeignKey("content_pieces.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    # Per-channel overrides at this version: {"<channel_id>": {"title": …, "body": …}}.
    variants: Mapped[dict] = mapped_column(JSON, default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    piece: Mapped[ContentPiece] = relationship(back_populates="revisions")
    author: Mapped[User | None] = relationship()
