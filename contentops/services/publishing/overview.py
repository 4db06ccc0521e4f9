"""The read side of publishing: the Publishing page's groups and a post's attempt log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ...models import Post, PublishAttempt
from ...reasons import reason_text
from ...timeutil import isoformat

PAGE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("in_flight", ("publishing",)),
    ("unknown", ("unknown",)),
    ("failed", ("failed",)),
    ("missed", ("missed",)),
    ("awaiting_staff", ("awaiting_staff",)),
    ("retrying", ("retrying",)),
    ("upcoming", ("scheduled",)),
)


def publishing_overview(session: Session, *, limit: int = 100) -> dict[str, list[Post]]:
    out: dict[str, list[Post]] = {}
    for name, states in PAGE_GROUPS:
        order = (Post.next_attempt_at if name == "retrying" else
                 Post.scheduled_at if name == "upcoming" else Post.updated_at.desc())
        out[name] = list(session.scalars(
            select(Post).where(Post.status.in_(states)).order_by(order, Post.id)
            .options(selectinload(Post.piece), selectinload(Post.channel)).limit(limit)))
    return out


def attempts_for(session: Session, post_id: int) -> list[PublishAttempt]:
    return list(session.scalars(select(PublishAttempt).where(PublishAttempt.post_id == post_id)
                                .order_by(PublishAttempt.started_at.desc(),
                                          PublishAttempt.id.desc())))


def post_dict(post: Post) -> dict[str, Any]:
    """The API's view of a post after an action."""
    return {
        "id": post.id, "piece_id": post.piece_id, "channel_id": post.channel_id,
        "status": post.status, "scheduled_at": isoformat(post.scheduled_at),
        "next_attempt_at": isoformat(post.next_attempt_at),
        "published_at": isoformat(post.published_at), "external_id": post.external_id,
        "external_url": post.external_url, "attempt_count": post.attempt_count,
        "last_error": reason_text(post.last_error) or None,
    }
