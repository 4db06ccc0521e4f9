"""`manual`: channels with no API (朋友圈, personal-WeChat groups, posters).

At publish time the post is handed to people: it becomes `awaiting_staff`, the assignees are
notified with copy-ready text, and it becomes `published` when one of them confirms with the
link, or `missed` after the deadline.
"""

from __future__ import annotations

from ..errors import N_
from ..rendering import markdown_to_text
from .base import Capabilities, ChannelAdapter, ConfigField, OutgoingPost, PublishResult


class ManualAdapter(ChannelAdapter):
    kind = "manual"
    label = N_("Manual (a person posts it)")
    config_fields = (
        ConfigField("assignees", N_("Assigned people (e-mail addresses)"), "emails",
                    required=True,
                    help=N_("They are notified at the scheduled time and confirm with the "
                            "link.")),
        ConfigField("deadline_hours", N_("Deadline (hours)"), "int", default=24, min_value=1,
                    max_value=24 * 14),
    )
    capabilities = Capabilities(staff_confirm=True)

    def render(self, post: OutgoingPost) -> str:
        """Copy-ready text: the title, a blank line, the body without markup."""
        return f"{post.title}\n\n{markdown_to_text(post.body_markdown)}".strip()

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        return PublishResult(status="awaiting_staff")

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        return None
