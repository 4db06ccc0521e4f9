"""`web`: the app's own public page per post (/p/<slug>) plus an RSS/Atom feed per channel.

Publishing makes the page live: the page is served only while the post is `published`, so
"sending" is a state change the dispatcher's fenced completion performs. The adapter only
names the page; it has nothing to send, which makes it idempotent by construction.
"""

from __future__ import annotations

import hashlib

from ..errors import N_
from .base import Capabilities, ChannelAdapter, OutgoingPost, PublishResult


def public_slug(post_id: int, piece_id: int) -> str:
    """Short, stable and not guessable in sequence (ids alone would let anyone walk drafts)."""
    digest = hashlib.sha256(f"contentops:{piece_id}:{post_id}".encode()).hexdigest()[:10]
    return f"{post_id}-{digest}"


class WebAdapter(ChannelAdapter):
    kind = "web"
    label = N_("Public web page and feed")
    config_fields = ()
    capabilities = Capabilities(idempotent=True, can_find_existing=True, sets_slug=True)

    def render(self, post: OutgoingPost) -> dict[str, str]:
        from ..rendering import markdown_to_html

        return {"title": post.title, "html": markdown_to_html(post.body_markdown)}

    def _result(self, post: OutgoingPost) -> PublishResult:
        slug = public_slug(post.post_id, post.piece_id)
        return PublishResult(external_id=slug, url=f"{post.base_url}/p/{slug}")

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        return self._result(post)

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        return self._result(post)

    def test_connection(self) -> str:
        return N_("The public pages are served by ContentOps itself.")
