"""Small builders for feedback and analytics tests: channels, pieces and published posts."""

from __future__ import annotations

from datetime import UTC, datetime

from contentops.models import Audience, Campaign, Channel, ContentPiece, Post, Style, User


def author(session) -> User:
    user = session.query(User).filter_by(email="fb-author@example.com").first()
    if user is None:
        user = User(email="fb-author@example.com", name="Author", role="editor",
                    password_hash="!", notification_prefs={})
        session.add(user)
        session.flush()
    return user


def get_or_create(session, model, name: str, **extra):
    row = session.query(model).filter_by(name=name).first()
    if row is None:
        row = model(name=name, **extra)
        session.add(row)
        session.flush()
    return row


def channel(session, name: str = "Web", kind: str = "web") -> Channel:
    return get_or_create(session, Channel, name, kind=kind, config={})


def make_post(session, *, title: str = "Post", channel_name: str = "Web", kind: str = "web",
              audience: str | None = "新会员", style: str | None = "亲切",
              campaign: str | None = None, published_at: datetime | None = None,
              external_id: str | None = None, slug: str | None = None,
              status: str = "published", **metrics) -> Post:
    ch = channel(session, channel_name, kind)
    piece = ContentPiece(
        title=title, body="Body", author_id=author(session).id,
        audience_id=get_or_create(session, Audience, audience).id if audience else None,
        style_id=get_or_create(session, Style, style).id if style else None,
        campaign_id=get_or_create(session, Campaign, campaign).id if campaign else None,
        status="approved", version=1, approved_version=1)
    session.add(piece)
    session.flush()
    published_at = published_at or datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    post = Post(piece_id=piece.id, channel_id=ch.id, status=status,
                scheduled_at=published_at, published_at=published_at,
                external_id=external_id, slug=slug, **metrics)
    session.add(post)
    session.flush()
    return post
