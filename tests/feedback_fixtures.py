"""Builders for feedback and analytics tests: channels, pieces and published posts.

A thin wrapper over tests/builders.py kept for the tests that import it (new tests use the
`make` fixture): pieces are made by the content service and approved through review."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from contentops.channels.registry import kinds
from contentops.models import Channel, Post, User

from .builders import Make


def author(session) -> User:
    user = session.scalar(select(User).where(User.email == "fb-author@example.com"))
    return user or Make(session).user("editor", email="fb-author@example.com", name="Author")


def channel(session, name: str = "Web", kind: str = "web") -> Channel:
    if kind in kinds():
        return Make(session).channel(kind, name=name)
    # A kind another branch adds (not installed here): the service would refuse it.
    row = session.scalar(select(Channel).where(Channel.name == name))
    if row is None:
        row = Channel(name=name, kind=kind, config={})
        session.add(row)
        session.flush()
    return row


def make_post(session, *, title: str = "Post", channel_name: str = "Web", kind: str = "web",
              audience: str | None = "新会员", style: str | None = "亲切",
              campaign: str | None = None, published_at: datetime | None = None,
              external_id: str | None = None, slug: str | None = None,
              status: str = "published", **metrics) -> Post:
    published_at = published_at or datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    make = Make(session, now=published_at)
    return make.post(channel(session, channel_name, kind), None, title=title, body="Body",
                     author=author(session), audience=audience, style=style,
                     campaign=campaign, status=status, scheduled_at=published_at,
                     published_at=published_at, external_id=external_id, slug=slug,
                     **metrics)
