"""`manual`: channels with no API (朋友圈, personal-WeChat groups, posters).

At publish time the post is handed to people: it becomes `awaiting_staff` and each assignee is
notified with their own signed confirm link (services/publishing/staff.py). Progress is N of M
like the WeCom staff channel: `published` when all have confirmed; at the deadline published
if at least one did (the others are named to the editor), else `missed`.
"""

from __future__ import annotations

import re

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

    @property
    def assignees(self) -> list[str]:
        value = self.config.get("assignees") or []
        if isinstance(value, str):
            value = [v for v in re.split(r"[\s,;，；]+", value) if v]
        return list(dict.fromkeys(str(v).strip().lower() for v in value if str(v).strip()))

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        staff = [{"id": email, "status": "pending"} for email in self.assignees]
        return PublishResult(status="awaiting_staff",
                             progress={"confirmed": 0, "total": len(staff), "staff": staff})

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        return None
