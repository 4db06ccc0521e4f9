"""The adapter protocol (DESIGN.md §5). No Flask, no ORM: adapters see plain data.

An adapter module defines one subclass of ChannelAdapter and decorates it with
`@register` (from .registry). Nothing else in the app changes to add a kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from ..errors import N_

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ConfigField:
    """One typed setting of a channel kind; drives the settings form and API validation.

    type: text | url | email | int | bool | choice | emails (a list of addresses) | textarea
    secret: stored encrypted, write-only (never rendered back, logged or returned).
    """

    name: str
    label: str  # msgid
    type: str = "text"
    required: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    help: str = ""  # msgid
    min_value: int | None = None
    max_value: int | None = None


@dataclass(frozen=True)
class Finding:
    """A problem found before sending (limits, required fields). Errors block, warnings inform."""

    code: str
    severity: Severity
    message: str  # msgid with %(name)s params
    params: Mapping[str, Any] = field(default_factory=dict)
    field: str | None = None


@dataclass(frozen=True)
class Capabilities:
    idempotent: bool = False        # the service dedupes on our idempotency key
    metrics: bool = False           # fetch_metrics() is implemented
    can_find_existing: bool = False  # find_existing() can prove whether a post went out
    staff_confirm: bool = False     # publishing hands the post to people (awaiting_staff)
    per_minute: int | None = None   # the service's own rate limit per channel
    daily_quota: int | None = None  # the service's own daily limit per channel
    # Content limits as the service counts them, e.g. {"text_bytes": 2048}.
    limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OutgoingPost:
    """Everything an adapter needs to render and send one post."""

    post_id: int
    piece_id: int
    version: int
    title: str
    body_markdown: str
    summary: str = ""
    audience: str | None = None
    style: str | None = None
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    scheduled_at: datetime | None = None
    channel_id: int | None = None
    channel_name: str = ""
    # Absolute URL of the post's public page (web channel), for "read more" links.
    public_url: str | None = None
    # Absolute base URL of this ContentOps instance (tracking links, unsubscribe pages).
    base_url: str = ""


@dataclass(frozen=True)
class PublishResult:
    external_id: str | None = None
    url: str | None = None
    # "published", or "awaiting_staff" for channels that hand the post to people.
    status: str = "published"


class ChannelError(Exception):
    """Base of adapter errors; `message` is a msgid a marketer can read, in both languages."""

    def __init__(self, message: str, params: Mapping[str, Any] | None = None,
                 *, detail: str | None = None) -> None:
        super().__init__(message % dict(params or {}) if params else message)
        self.message = message
        self.params = dict(params or {})
        # Technical detail for the attempt log (status code, service errcode); never secrets.
        self.detail = detail


class TransientError(ChannelError):
    """Worth retrying later (timeouts, 5xx, rate limits)."""

    def __init__(self, message: str, params: Mapping[str, Any] | None = None, *,
                 detail: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, params, detail=detail)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """Retrying will not help (bad key, content refused)."""


class ChannelAdapter(ABC):
    kind: ClassVar[str]
    label: ClassVar[str]  # msgid, e.g. N_("WeCom group robot")
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: Mapping[str, Any], *, http: Any = None,
                 channel_id: int | None = None, channel_name: str = "") -> None:
        # `config` holds plain and decrypted secret fields together.
        self.config = dict(config)
        self.http = http  # a shared requests.Session for connection reuse, or None
        self.channel_id = channel_id
        self.channel_name = channel_name

    def validate(self, post: OutgoingPost) -> list[Finding]:
        """Limits and required fields, checked at submit time and again before sending."""
        findings: list[Finding] = []
        if not post.title.strip():
            findings.append(Finding("title_missing", "error", N_("The title is empty."),
                                    field="title"))
        return findings

    @abstractmethod
    def render(self, post: OutgoingPost) -> Any:
        """The channel's own format of the post (payload, message text, e-mail parts)."""

    @abstractmethod
    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        """Send the post. Raise TransientError or PermanentError on failure."""

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        """Prove whether an earlier attempt went out. None = cannot tell (a person decides)."""
        return None

    def fetch_metrics(self, items: list[tuple[int, str]]) -> dict[int, dict[str, int]]:
        """Totals per post id for (post_id, external_id) pairs; only if capabilities.metrics."""
        return {}

    def test_connection(self) -> str:
        """Check the configuration against the service. Returns a msgid on success."""
        return N_("No connection test for this kind of channel.")


def text_bytes(text: str) -> int:
    """Length as services that count UTF-8 bytes see it (a Chinese character is 3)."""
    return len(text.encode("utf-8"))
