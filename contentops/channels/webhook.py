"""`webhook`: a signed JSON POST to any URL (DESIGN.md §6, "Webhook channel request")."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from ..errors import N_
from ..rendering import markdown_to_html, markdown_to_text
from . import _http
from .base import (
    MAX_TIMEOUT_S,
    Capabilities,
    ChannelAdapter,
    ConfigField,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
)

TRANSIENT_STATUS = {408, 429}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAdapter(ChannelAdapter):
    kind = "webhook"
    label = N_("Webhook")
    config_fields = (
        ConfigField("url", N_("URL"), "url", required=True),
        ConfigField("secret", N_("Signing secret"), "text", required=True, secret=True,
                    help=N_("Used for the X-ContentOps-Signature header.")),
        # At most 60 s: a send must end well before the post's lease (120 s) runs out.
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=MAX_TIMEOUT_S,
                    help=N_("How long one send may take in all, reply included (at most "
                            "60 seconds).")),
        ConfigField("metrics_url", N_("Metrics URL"), "url",
                    help=N_("Optional. The scheduler asks this address for the reads, likes, "
                            "comments, shares and clicks of published posts every 30 "
                            "minutes.")),
    )
    # The receiver dedupes on Idempotency-Key, so a re-send after a crash is safe.
    capabilities = Capabilities(idempotent=True)
    METRICS_CHUNK = 500

    def __init__(self, config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.config.get("metrics_url"):
            self.capabilities = replace(type(self).capabilities, metrics=True)

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
        response = self._signed_post(self.config["url"], body,
                                     {"Idempotency-Key": idempotency_key})
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


    def fetch_metrics(self, items: list[tuple[int, str]]) -> dict[int, dict[str, int]]:
        """Totals per post from `metrics_url`: a signed POST of
        `{"items": [{"post_id", "external_id"}]}` (at most 500 per request), answered with
        `{"metrics": {"<external_id>": {"reads": n, "likes": n, …}}}`. Unknown ids and
        metrics are ignored; negative or non-integer values are dropped."""
        out: dict[int, dict[str, int]] = {}
        for first in range(0, len(items), self.METRICS_CHUNK):
            chunk = items[first:first + self.METRICS_CHUNK]
            reply = self._post_metrics([{"post_id": pid, "external_id": ext}
                                        for pid, ext in chunk])
            by_external = reply.get("metrics") if isinstance(reply, dict) else None
            if not isinstance(by_external, dict):
                raise TransientError(N_("The metrics reply is not in the expected format."),
                                     detail="no 'metrics' object")
            for pid, ext in chunk:
                values = by_external.get(ext)
                if not isinstance(values, dict):
                    continue
                clean = {m: v for m, v in values.items()
                         if m in METRIC_NAMES and type(v) is int and v >= 0}
                if clean:
                    out[pid] = clean
        return out

    def _signed_post(self, url: str, body: bytes, headers: dict[str, str] | None = None
                     ) -> _http.Reply:
        """POST `body` signed with the channel secret, finished within the channel timeout.
        Connection problems and timeouts are transient (the receiver dedupes on the
        Idempotency-Key, so a re-send is safe); a redirect is permanent (see _http)."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-ContentOps-Signature": signature(str(self.config.get("secret", "")), body),
            "User-Agent": "ContentOps-Webhook/1",
            **(headers or {}),
        }
        timeout = float(self.config.get("timeout_s") or 10)
        try:
            return _http.request(self.http, "POST", url, data=body, headers=headers,
                                 timeout=timeout, budget=_http.Budget(self.send_budget_s))
        except requests.Timeout as exc:
            raise TransientError(N_("The receiver did not answer in time."),
                                 detail=type(exc).__name__) from exc
        except requests.ConnectionError as exc:
            raise TransientError(N_("Could not connect to the receiver."),
                                 detail=type(exc).__name__) from exc
        except requests.RequestException as exc:
            raise PermanentError(N_("The receiver's address is not usable."),
                                 detail=type(exc).__name__) from exc

    def _post_metrics(self, items: list[dict[str, Any]]) -> Any:
        body = json.dumps({"items": items}, ensure_ascii=False).encode("utf-8")
        response = self._signed_post(self.config["metrics_url"], body)
        if not 200 <= response.status_code < 300:
            raise TransientError(N_("The receiver is busy or failing (HTTP %(status)s)."),
                                 {"status": response.status_code},
                                 detail=f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(N_("The metrics reply is not in the expected format."),
                                 detail="not JSON") from exc


METRIC_NAMES = frozenset(("reads", "likes", "comments", "shares", "clicks"))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in either form RFC 9110 allows: delay-seconds or an HTTP-date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: they mean GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
