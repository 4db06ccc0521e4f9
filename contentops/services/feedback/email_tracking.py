"""E-mail pixel and clicks: the open pixel and click redirects become reads and clicks on
the post (through feedback ingest).

Each person counts once per post for reads and once per link for clicks (the event id names
the post, the recipient and the link), so reloading an e-mail never inflates the totals.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy.orm import Session

from ...channels.email import link_signature
from ...models import Channel, Post
from ...models.recipients import Recipient
from ..recipients import by_token
from .ingest import ingest


def tracking_key(secret_key: str) -> bytes:
    """The key click links are signed with, derived from the instance secret."""
    return hmac.new(secret_key.encode(), b"contentops-email-tracking", hashlib.sha256).digest()


def _tracked_post(session: Session, post_id: int) -> Post | None:
    post = session.get(Post, post_id)
    if post is None:
        return None
    channel: Channel = post.channel
    if channel.kind != "email" or not (channel.config or {}).get("tracking", True):
        return None  # tracking switched off for this channel: redirect, count nothing
    return post


def _count(session: Session, post: Post, recipient: Recipient, kind: str, suffix: str,
           now: datetime) -> bool:
    event_id = f"email-{kind}:{post.id}:r{recipient.id}{suffix}"
    result = ingest(session, [{"event_id": event_id, "post_id": post.id, "kind": kind}],
                    now=now, source="email")
    return result.accepted == 1


def record_open(session: Session, post_id: int, token: str, *, now: datetime) -> bool:
    """True when this open was counted (first open of this post by this person)."""
    recipient = by_token(session, token)
    post = _tracked_post(session, post_id) if recipient else None
    if recipient is None or post is None:
        return False
    return _count(session, post, recipient, "read", "", now)


def click_target(post_id: int, token: str, url: str | None, signature: str | None, *,
                 key: bytes) -> str | None:
    """The destination if the link was signed by us for this post and person, else None
    (so the redirect can never be used to send people elsewhere)."""
    if not url or not signature or not url.lower().startswith(("http://", "https://")):
        return None
    expected = link_signature(key, post_id, token, url)
    return url if hmac.compare_digest(expected, signature) else None


def record_click(session: Session, post_id: int, token: str, url: str, *,
                 now: datetime) -> bool:
    """Count a click on a verified link (click_target first); also counts as a read, since
    images are often blocked and the click proves the e-mail was opened."""
    recipient = by_token(session, token)
    post = _tracked_post(session, post_id) if recipient else None
    if recipient is None or post is None:
        return False
    link = hashlib.sha256(url.encode()).hexdigest()[:16]
    counted = _count(session, post, recipient, "click", f":{link}", now)
    _count(session, post, recipient, "read", "", now)
    return counted
