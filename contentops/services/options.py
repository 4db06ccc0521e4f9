"""Choices the pages offer (channel, audience, style, campaign, tag, author pickers) and the
small counts they show: one function each, so views do not query the database themselves."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..models import Audience, Campaign, Channel, ContentPiece, Style, Tag, User


def channels(session: Session) -> list[Channel]:
    """Every channel, switched off or not, by name (filters, settings lists)."""
    return list(session.scalars(select(Channel).order_by(Channel.name)))


def usable_channels(session: Session, used_ids: Iterable[int] = ()) -> list[Channel]:
    """Active channels, plus switched-off ones a piece already uses (the piece editor)."""
    used = list(used_ids)
    return list(session.scalars(
        select(Channel).where(or_(Channel.active.is_(True), Channel.id.in_(used or [0])))
        .order_by(Channel.name)))


def audiences(session: Session) -> list[Audience]:
    return list(session.scalars(select(Audience).order_by(Audience.name)))


def styles(session: Session) -> list[Style]:
    return list(session.scalars(select(Style).order_by(Style.name)))


def campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.name)))


def tags(session: Session, limit: int = 200) -> list[Tag]:
    return list(session.scalars(select(Tag).order_by(Tag.name).limit(limit)))


def authors(session: Session) -> list[User]:
    """People who can write pieces (everyone but viewers), by name."""
    return list(session.scalars(select(User).where(User.role != "viewer")
                                .order_by(User.name)))


def recent_pieces(session: Session, limit: int = 50) -> list[ContentPiece]:
    """The pieces a channel preview offers, most recently changed first."""
    return list(session.scalars(select(ContentPiece)
                                .order_by(ContentPiece.updated_at.desc()).limit(limit)))


def channel_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Channel)) or 0


def active_user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)
                          .where(User.active.is_(True))) or 0
