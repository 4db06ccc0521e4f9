"""Per-channel preview: how a piece will look on each of its channels, made by the same
adapter.render() the publishing engine uses."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from email.message import Message
from typing import Any

from ..channels.base import ChannelAdapter, OutgoingPost
from ..models import Channel, ContentPiece, Post
from ..rendering import markdown_to_html, sanitize_html

log = logging.getLogger(__name__)


@dataclass
class Preview:
    channel: Channel
    post: Post | None
    # html: sanitised HTML; text: plain or Markdown source exactly as sent; json: payload
    html: str | None = None
    text: str | None = None
    payload: str | None = None
    subject: str | None = None
    error: str | None = None


def outgoing(piece: ContentPiece, channel: Channel, post: Post | None = None,
             base_url: str = "") -> OutgoingPost:
    title = (post.title_override if post is not None else None) or piece.title
    body = post.body_override if post is not None and post.body_override is not None \
        else piece.body
    public_url = None
    if post is not None and post.slug and base_url:
        public_url = f"{base_url}/p/{post.slug}"
    return OutgoingPost(
        post_id=post.id if post is not None else 0, piece_id=piece.id, version=piece.version,
        title=title, body_markdown=body or "", summary=piece.summary or "",
        audience=piece.audience.name if piece.audience else None,
        style=piece.style.name if piece.style else None,
        campaign=piece.campaign.name if piece.campaign else None,
        tags=tuple(t.name for t in piece.tags),
        scheduled_at=post.scheduled_at if post is not None else None,
        channel_id=channel.id, channel_name=channel.name, public_url=public_url,
        base_url=base_url)


def _from_message(preview: Preview, message: Message) -> None:
    preview.subject = str(message.get("Subject") or "")
    for part in message.walk():
        ctype = part.get_content_type()
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        if ctype == "text/html" and preview.html is None:
            preview.html = sanitize_html(text)
        elif ctype == "text/plain" and preview.text is None:
            preview.text = text


def describe(rendered: Any, preview: Preview) -> None:
    """Turn whatever render() returned into something a page can show safely."""
    if isinstance(rendered, Message):
        _from_message(preview, rendered)
    elif isinstance(rendered, bytes):
        preview.text = rendered.decode("utf-8", errors="replace")
    elif isinstance(rendered, str):
        preview.text = rendered
    elif isinstance(rendered, dict):
        if isinstance(rendered.get("body_html"), str):
            preview.html = sanitize_html(rendered["body_html"])
        for key in ("html", "content_html"):
            if preview.html is None and isinstance(rendered.get(key), str):
                preview.html = sanitize_html(rendered[key])
        if isinstance(rendered.get("subject"), str):
            preview.subject = rendered["subject"]
        preview.payload = json.dumps(rendered, ensure_ascii=False, indent=2, default=str)
    else:
        for attr in ("html", "text", "subject"):
            value = getattr(rendered, attr, None)
            if isinstance(value, str):
                setattr(preview, attr, sanitize_html(value) if attr == "html" else value)
        if preview.html is None and preview.text is None:
            preview.text = str(rendered)


def previews(piece: ContentPiece, adapters: dict[int, ChannelAdapter],
             base_url: str = "") -> list[Preview]:
    """One preview per channel of the piece (first non-cancelled post per channel)."""
    out: list[Preview] = []
    seen: set[int] = set()
    for post in piece.posts:
        if post.channel_id in seen or post.status == "cancelled":
            continue
        seen.add(post.channel_id)
        preview = Preview(channel=post.channel, post=post)
        adapter = adapters.get(post.channel_id)
        try:
            if adapter is None:
                raise LookupError("no adapter")
            describe(adapter.render(outgoing(piece, post.channel, post, base_url)), preview)
        except Exception as exc:  # a preview must never break the page; the log keeps it
            log.warning("preview for channel %s failed: %s", post.channel_id, exc)
            preview.error = type(exc).__name__
            preview.html = markdown_to_html(post.body)
        out.append(preview)
    return out
