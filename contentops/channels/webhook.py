"""`webhook`: a signed JSON POST to any URL (DESIGN.md §6, "Webhook channel request")."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

from ..errors import N_
from ..rendering import markdown_to_html, markdown_to_text
from .base import (
    Capabilities,
    ChannelAdapter,
    ConfigField,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
)
from .registry import register

TRANSIENT_STATUS = {408, 429}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register
class WebhookAdapter(ChannelAdapter):
    kind = "webhook"
    label = N_("Webhook")
    config_fields = (
        ConfigField("url", N_("URL"), "url", required=True),
        ConfigField("secret", N_("Signing secret"), "text", required=True, secret=True,
                    help=N_("Used for the X-ContentOps-Signature header.")),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=120),
    )
    # The receiver dedupes on Idempotency-Key, so a re-send after a crash is safe.
    capabilities = Capabilities(idempotent=True)

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        return {
            "post_id": post.post_id,
            "piece_id": post.piece_id,
            "title": post.title,
            "body_markdown": post.body_markdown,
            "body_html": markdown_to_html(post.body_markdown),
            "body_text": markdown_to_text(post.body_markdown),
            "audience": post.audience,
            "style": post.style,
            "campaign": post.campaign,
            "tags": list(post.tags),
            "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
            "channel": post.channel_name,
        }

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        body = json.dumps(self.render(post), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-ContentOps-Signature": signature(str(self.config.get("secret", "")), body),
            "Idempotency-Key": idempotency_key,
            "User-Agent": "ContentOps-Webhook/1",
        }
        http = self.http or requests
        timeout = float(self.config.get("timeout_s") or 10)
        try:
            response = http.post(self.config["url"], data=body, headers=headers, timeout=timeout)
        except requests.Timeout as exc:
            raise TransientError(N_("The receiver did not answer in time."),
                                 detail=type(exc).__name__) from exc
        except requests.ConnectionError as exc:
            raise TransientError(N_("Could not connect to the receiver."),
                                 detail=type(exc).__name__) from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                reply = response.json()
            except ValueError:
                reply = {}
            reply = reply if isinstance(reply, dict) else {}
            ext_id = reply.get("id")
            return PublishResult(external_id=str(ext_id) if ext_id is not None else None,
                                 url=reply.get("url") if isinstance(reply.get("url"), str)
                                 else None)
        detail = f"HTTP {status}"
        if status in TRANSIENT_STATUS or status >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise TransientError(N_("The receiver is busy or failing (HTTP %(status)s)."),
                                 {"status": status}, detail=detail, retry_after=retry_after)
        raise PermanentError(N_("The receiver refused the post (HTTP %(status)s)."),
                             {"status": status}, detail=detail)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
