"""Own public pages: reads, likes, comments and share clicks on the web channel's pages.

Visitors are never stored as IP addresses: a visitor is a keyed hash (HMAC with the app's
secret key) of a random cookie id, or of IP + user agent when there is no cookie yet.
Reads and share clicks become ordinary feedback events whose event id contains the day
and that hash, so "one read per visitor per day" is the ingest's own idempotency.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from ...errors import N_, DomainError, ValidationError
from ...models import Channel, ContentPiece, Post, User, WebComment, WebLike
from .. import audit
from .ingest import bump, ingest

COMMENT_LIMIT = 3  # comments per visitor …
COMMENT_WINDOW = timedelta(minutes=10)  # … within this window
MAX_AUTHOR = 80
MAX_COMMENT = 2000
SHARE_NETWORKS: tuple[str, ...] = ("weibo", "qzone", "x", "email", "copy")


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429


def visitor_hash(secret_key: str, visitor: str, purpose: str = "visitor") -> str:
    """A stable, non-reversible id for a visitor (64 hex characters)."""
    return hmac.new(secret_key.encode(), f"{purpose}|{visitor}".encode(),
                    hashlib.sha256).hexdigest()


def _day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def record_read(session: Session, post: Post, *, visitor: str, secret_key: str,
                now: datetime) -> bool:
    """Count one read per visitor per day. True when this read was counted."""
    day = _day(now)
    # The day is inside the hash too, so one visitor's reads cannot be linked across days.
    key = visitor_hash(secret_key, f"{day}|{visitor}", "read")[:40]
    result = ingest(session, [{"event_id": f"web:read:{post.id}:{day}:{key}",
                                "post_id": post.id, "kind": "read"}],
                    now=now, source="web")
    return result.accepted == 1


def record_share(session: Session, post: Post, network: str, *, visitor: str,
                 secret_key: str, now: datetime) -> bool:
    """Count a share click once per visitor, day and network."""
    if network not in SHARE_NETWORKS:
        raise ValidationError({"network": [N_("Unknown share target.")]})
    day = _day(now)
    key = visitor_hash(secret_key, f"{day}|{visitor}", "share")[:40]
    result = ingest(session, [{"event_id": f"web:share:{post.id}:{network}:{day}:{key}",
                                "post_id": post.id, "kind": "share"}],
                    now=now, source="web")
    return result.accepted == 1


def has_liked(session: Session, post: Post, *, visitor: str, secret_key: str) -> bool:
    who = visitor_hash(secret_key, visitor, "like")
    return session.scalar(select(WebLike.id).where(WebLike.post_id == post.id,
                                                   WebLike.visitor == who)) is not None


def set_like(session: Session, post: Post, liked: bool, *, visitor: str, secret_key: str,
             now: datetime) -> bool:
    """Like (or undo a like). One like per visitor; returns whether the visitor likes it now."""
    who = visitor_hash(secret_key, visitor, "like")
    if liked:
        dialect = session.get_bind().dialect.name
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # ON CONFLICT DO NOTHING: a double click (or two tabs) inserts once, counts once.
        inserted = session.execute(
            insert(WebLike).values(post_id=post.id, visitor=who, created_at=now)
            .on_conflict_do_nothing(index_elements=["post_id", "visitor"])).rowcount
        if inserted == 1:
            bump(session, post.id, "likes", 1, now=now)
        return True
    removed = session.execute(delete(WebLike).where(WebLike.post_id == post.id,
                                                    WebLike.visitor == who)).rowcount
    if removed:
        bump(session, post.id, "likes", -removed, now=now)
    return False


@dataclass
class CommentOutcome:
    comment: WebComment | None  # None when the honeypot caught a bot (told "thanks" anyway)


def submit_comment(session: Session, post: Post, *, author: str, text: str, honeypot: str,
                   visitor: str, secret_key: str, now: datetime) -> CommentOutcome:
    """Queue a visitor's comment for moderation. Nothing shows until a person approves it."""
    if honeypot.strip():
        # Bots fill every field; people never see this one. Pretend it worked.
        return CommentOutcome(None)
    author, text = (author or "").strip(), (text or "").strip()
    errors: dict[str, list[str]] = {}
    if not author:
        errors["author"] = [N_("Enter your name.")]
    elif len(author) > MAX_AUTHOR:
        errors["author"] = [N_("Use at most %(max)s characters.")]
    if not text:
        errors["text"] = [N_("Write a comment.")]
    elif len(text) > MAX_COMMENT:
        errors["text"] = [N_("Use at most %(max)s characters.")]
    if errors:
        raise ValidationError(errors, params={"max": MAX_AUTHOR if "author" in errors
                                              else MAX_COMMENT})
    who = visitor_hash(secret_key, visitor, "comment")
    recent = session.scalar(select(func.count(WebComment.id)).where(
        WebComment.visitor == who, WebComment.created_at > now - COMMENT_WINDOW))
    if recent >= COMMENT_LIMIT:
        raise RateLimited(N_("You are commenting too fast. Please wait a few minutes."))
    comment = WebComment(post_id=post.id, author=author, text=text, status="pending",
                         visitor=who, created_at=now)
    session.add(comment)
    session.flush()
    return CommentOutcome(comment)


def moderate(session: Session, comment: WebComment, decision: str, *, actor: User,
             now: datetime) -> WebComment:
    """Approve or reject a comment. Approved comments count and appear on the page."""
    if decision not in ("approved", "rejected"):
        raise ValidationError({"decision": [N_("Choose approve or reject.")]})
    before = comment.status
    if before == decision:
        return comment
    comment.status = decision
    comment.moderated_at = now
    comment.moderated_by_id = actor.id
    if decision == "approved":
        bump(session, comment.post_id, "comments", 1, now=now)
    elif before == "approved":
        bump(session, comment.post_id, "comments", -1, now=now)
    audit.record(session, f"comment.{decision}", "web_comment", comment.id, actor=actor,
                 now=now, data={"post_id": comment.post_id})
    return comment


def approved_comments(session: Session, post_id: int, limit: int = 200) -> list[WebComment]:
    return list(session.scalars(
        select(WebComment).where(WebComment.post_id == post_id,
                                 WebComment.status == "approved")
        .order_by(WebComment.created_at).limit(limit)))


def approved_comments_of(session: Session, post_ids: list[int],
                         limit: int = 100) -> list[WebComment]:
    """Approved visitor comments on any of these posts (a piece's pages), newest first."""
    if not post_ids:
        return []
    return list(session.scalars(
        select(WebComment).where(WebComment.post_id.in_(post_ids),
                                 WebComment.status == "approved")
        .order_by(WebComment.created_at.desc()).limit(limit)))


def comment_queue(session: Session, status: str = "pending",
                  limit: int = 200) -> list[WebComment]:
    return list(session.scalars(
        select(WebComment).where(WebComment.status == status)
        .order_by(WebComment.created_at.desc() if status != "pending"
                  else WebComment.created_at).limit(limit)))


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count(WebComment.id))
                          .where(WebComment.status == "pending")) or 0


def published_post_by_slug(session: Session, slug: str) -> Post | None:
    return session.scalar(select(Post).where(Post.slug == slug, Post.status == "published"))


def share_url(network: str, url: str, title: str) -> str | None:
    """Where a share button leads; None for "copy link" (handled in the page)."""
    from urllib.parse import quote

    u, t = quote(url, safe=""), quote(title, safe="")
    return {
        "weibo": f"https://service.weibo.com/share/share.php?url={u}&title={t}",
        "qzone": f"https://sns.qzone.qq.com/cgi-bin/qzshare/cgi_qzshare_onekey?url={u}&title={t}",
        "x": f"https://twitter.com/intent/tweet?url={u}&text={t}",
        "email": f"mailto:?subject={t}&body={u}",
    }.get(network)


def published_by_slug(session: Session, slug: str) -> Post | None:
    """The post behind /p/<slug>; a page exists only while its post is published."""
    return session.scalar(select(Post).where(Post.slug == slug, Post.status == "published"))


def feed_posts(session: Session, channel: Channel, limit: int) -> list[Post]:
    """A web channel's latest published pages, newest first (its RSS / Atom feed)."""
    return list(session.scalars(
        select(Post).where(Post.channel_id == channel.id, Post.status == "published",
                           Post.slug.is_not(None))
        .order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
        .options(selectinload(Post.piece).selectinload(ContentPiece.author))))
