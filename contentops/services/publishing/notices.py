"""Who is told when a post fails, is missed or is in doubt (hand-offs to people and their
deadlines: `staff`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import N_
from ...models import AuditEvent, ContentPiece, Post, User
from ...reasons import reason_text
from .. import notifications


def people_to_tell(session: Session, piece: ContentPiece) -> list[User]:
    """The author and everyone who approved the piece (from the audit trail)."""
    ids = {piece.author_id}
    ids.update(session.scalars(select(AuditEvent.actor_id).where(
        AuditEvent.object_type == "piece", AuditEvent.object_id == piece.id,
        AuditEvent.action.like("%approv%"), AuditEvent.actor_id.is_not(None))))
    return list(session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True))))


def notify_problem(session: Session, post_ids: Iterable[int], what: str) -> None:
    for post_id in post_ids:
        post = session.get(Post, post_id)
        if post is None:
            continue
        session.refresh(post)
        users = people_to_tell(session, post.piece)
        message = (N_("“%(title)s” could not be published on %(channel)s: %(reason)s")
                   if what == "failed" else
                   N_("“%(title)s” was not published on %(channel)s: %(reason)s"))
        notifications.notify(session, users, "publish_failed", message,
                             {"title": post.title, "channel": post.channel.name,
                              # The stored reason, so each reader gets it in their language;
                              # "reason" is its English text for anything that cannot.
                              "reason": reason_text(post.last_error),
                              "reason_code": post.last_error, "post_id": post.id,
                              "state": post.status},
                             link=f"/publishing/posts/{post.id}")
