"""The adapter protocol (DESIGN.md §5). No Flask, no ORM: adapters see plain data.

An adapter module defines one subclass of ChannelAdapter; registry.ADAPTERS lists it.
Nothing else in the app changes to add a kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from ..errors import N_
from .tokens import MemoryTokenStore, TokenStore

Severity = Literal["error", "warning"]

# See ChannelAdapter.send_budget_s; three quarters of the default 120 s lease.
DEFAULT_SEND_BUDGET_S = 90.0
# Most a single call may wait (the `timeout_s` settings' maximum): well below the lease, so
# even a publish of a couple of calls ends before the post could be reaped.
MAX_TIMEOUT_S = 60


@dataclass(frozen=True)
class ConfigField:
    """One typed setting of a channel kind; drives the settings form and API validation.

    type: text | url | email | int | bool | choice | emails (a list of addresses) | textarea
          | ids (a list of account ids, e.g. WeCom userids)
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
    tracks: bool = False            # track() follows a post the service or staff finish later
    per_minute: int | None = None   # the service's own rate limit per channel
    daily_quota: int | None = None  # the service's own daily limit per channel
    # Content limits as the service counts them. The key's suffix says the unit:
    # "_bytes" = UTF-8 bytes (a Chinese character is 3), "_chars" = characters,
    # "_items" = list entries; e.g. {"text_bytes": 2048, "news_articles_items": 8}.
    limits: Mapping[str, int] = field(default_factory=dict)
    # Reads/clicks are tracked by the app itself (e-mail open pixel, click redirects).
    tracking: bool = False
    # The external id the adapter returns is the post's public slug (the web channel).
    sets_slug: bool = False
    # fetch_daily_stats() is implemented: the service publishes yesterday's statistics once a
    # day (公众号 datacube), pulled by the daily statistics job rather than every 30 minutes.
    daily_stats: bool = False
    # Posts of one channel at one time go out as one send of up to this many (公众号 头条 +
    # 次条: 8) through publish_group(); 0 = every post is sent on its own.
    group_max: int = 0


@dataclass(frozen=True)
class ReceiveLimit:
    """How many messages each addressee may receive per period, enforced by the service across
    every channel that shares `key` (e.g. WeCom: all company broadcasts of one corp to
    customers). A message beyond it is not refused; those addressees just do not get it.

    period: day | week (Monday first) | month; per_period None = the month's number of days.
    """

    key: str
    period: str
    per_period: int | None
    zone: str = "Asia/Shanghai"  # the service's own calendar


@dataclass(frozen=True)
class Recipient:
    """One addressee of a list channel (e-mail). `token` addresses the unsubscribe page and the
    tracking links of this person; it is random and stored, so links survive key rotation."""

    email: str
    name: str = ""
    token: str = ""


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
    # Addressees for list channels, resolved right before sending so an unsubscribe is
    # honoured at the next send (services.channels.outgoing_post fills it).
    recipients: tuple[Recipient, ...] = ()
    # A preview goes to the people setting up the channel, not to the audience.
    preview: bool = False


@dataclass(frozen=True)
class PublishResult:
    external_id: str | None = None
    url: str | None = None
    # "published"; "publishing" when the service accepted it and finishes on its own time
    # (公众号 freepublish); "awaiting_staff" when people must act (manual, 企业微信 群发).
    status: str = "published"
    # Staff progress for awaiting_staff posts: {"confirmed", "total", …} (see README).
    progress: Mapping[str, Any] | None = None
    # When to call track() next; None = not tracked (a person confirms in the app).
    check_after_s: float | None = None
    # Staff deadline in seconds from now (e.g. 30 min for 公众号 群发保护); None = the
    # channel's deadline_hours setting.
    deadline_s: float | None = None


@dataclass(frozen=True)
class StatsPost:
    """A published post whose statistics a daily pull looks for (plain data, no ORM)."""

    post_id: int
    title: str
    published_on: date  # in the service's own calendar (公众号: Asia/Shanghai)
    progress: Mapping[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    url: str | None = None


@dataclass
class PostDailyStats:
    """What a daily pull found for one post.

    totals: running totals (metric -> value) to raise the post's counters to, never lower;
    reported: False when the service's reply did not name the post (e.g. 公众号 leaves out
      articles with too few interactions), so pages can say so instead of showing a bare 0;
    progress: keys to merge into the post's progress (ids learnt, the service's own figures);
    comments: comment events (ingest format, without post_id) with stable event ids.
    """

    totals: dict[str, int] = field(default_factory=dict)
    reported: bool = True
    progress: dict[str, Any] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DailyStats:
    """One day's pull for one channel: per post, the account's summary for the day, and
    whether the service says its figures are still incomplete (then the pull is repeated)."""

    day: date
    posts: dict[int, PostDailyStats] = field(default_factory=dict)
    summary: dict[str, int] | None = None
    delayed: bool = False


class ChannelError(Exception):
    """Base of adapter errors; `message` is a msgid a marketer can read, in both languages.

    The web layer shows it with `i18n.translate(exc.message, exc.params)`; `str(exc)` is the
    English text for logs and the attempt record. Never put secrets in params or detail.
    """

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


class InDoubt(TransientError):
    """The request may have reached the service but no answer came back (a read timeout, a
    connection reset after sending): it may have been delivered. The engine re-sends only
    where the service dedupes on the idempotency key; elsewhere the post becomes `unknown`
    and is reconciled (lookup, else a person) — never re-sent blindly (invariant 2)."""


class PermanentError(ChannelError):
    """Retrying will not help (bad key, content refused)."""


class QuotaExhausted(ChannelError):
    """The service refused because the channel's send quota for the period is used up
    (公众号 群发 45028). Nothing was sent; the engine moves the post to the next time the quota
    allows (`not_before` when the service or adapter knows it, else the quota layer decides) and
    says so on the post, never failing or dropping it silently."""

    def __init__(self, message: str, params: Mapping[str, Any] | None = None, *,
                 detail: str | None = None, not_before: datetime | None = None) -> None:
        super().__init__(message, params, detail=detail)
        self.not_before = not_before


class ChannelAdapter(ABC):
    kind: ClassVar[str]
    label: ClassVar[str]  # msgid, e.g. N_("WeCom group robot")
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Sends to people on recipient lists (per channel / per audience) rather than a group.
    uses_recipients: ClassVar[bool] = False
    # What `to` of send_preview is for kinds that are not e-mail: "wxname" = a WeChat id
    # (公众号 preview to one follower); None = the preview goes to the channel itself.
    preview_address: ClassVar[str | None] = None
    # Seconds one publish may take in all (every call and image download of it), so a live
    # send never outlasts the post's lease (120 s by default) and is never reaped and re-sent.
    # The scheduler lowers it to three quarters of its configured lease.
    send_budget_s: float = DEFAULT_SEND_BUDGET_S

    def __init__(self, config: Mapping[str, Any], *, http: Any = None,
                 channel_id: int | None = None, channel_name: str = "",
                 signing_key: bytes | None = None, tokens: TokenStore | None = None
                 ) -> None:
        # `config` holds plain and decrypted secret fields together.
        self.config = dict(config)
        self.http = http  # a shared requests.Session for connection reuse, or None
        self.channel_id = channel_id
        self.channel_name = channel_name
        # Instance key for links the app must later trust (click tracking); from build_adapter.
        self.signing_key = signing_key
        # Access tokens shared by every process (services.access_tokens), or in-process.
        self.tokens: TokenStore = tokens if tokens is not None else MemoryTokenStore()

    def setting(self, name: str) -> Any:
        """A required setting, or a readable permanent error when it is missing (e.g. secrets
        that can no longer be decrypted after the secret key changed)."""
        value = self.config.get(name)
        if value in (None, ""):
            raise PermanentError(N_("The channel's settings are incomplete (%(field)s is "
                                    "missing); open the channel settings and enter it."),
                                 {"field": name}, detail=f"missing setting {name}")
        return value

    @classmethod
    def receive_limit(cls, config: Mapping[str, Any]) -> ReceiveLimit | None:
        """The service's per-addressee limit for a channel with these (plain) settings."""
        return None

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

    def publish_group(self, posts: list[OutgoingPost], idempotency_key: str
                      ) -> list[PublishResult]:
        """Send several posts as one message (capabilities.group_max > 1), in order, the first
        being the lead; one result per post, in the same order. `idempotency_key` is the
        lead's. Raise as publish() does: the whole group shares one outcome."""
        if len(posts) == 1:
            return [self.publish(posts[0], idempotency_key)]
        raise PermanentError(N_("This channel cannot send several posts as one message."))

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        """Prove whether an earlier attempt went out. None = cannot tell (a person decides)."""
        return None

    def track(self, post: OutgoingPost, external_id: str,
              progress: Mapping[str, Any] | None, *, final: bool = False) -> PublishResult:
        """Where a post handed to the service or to staff stands now (capabilities.tracks):
        "published", or still "publishing"/"awaiting_staff" with fresh progress. Raise
        PermanentError when it failed (at `final`, the staff deadline: when it is not done
        enough to count as published), TransientError to be asked again later."""
        raise PermanentError(N_("This kind of channel cannot follow a post after sending."))

    def fetch_metrics(self, items: list[tuple[int, str]]) -> dict[int, dict[str, int]]:
        """Totals per post id for (post_id, external_id) pairs; only if capabilities.metrics."""
        return {}

    def fetch_daily_stats(self, posts: list[StatsPost], day: date) -> DailyStats:
        """Statistics up to the end of `day` for these posts; only if
        capabilities.daily_stats. Raise TransientError to be asked again later."""
        return DailyStats(day=day)

    def test_connection(self) -> str:
        """Check the configuration against the service. Returns a msgid on success;
        raises TransientError/PermanentError with the reason otherwise."""
        return N_("No connection test for this kind of channel.")

    def send_preview(self, post: OutgoingPost, to: str | None = None) -> PublishResult:
        """Send `post` as a preview (marked as such) to the people setting up the channel;
        `to` is an address for kinds that have one (e-mail). Never touches the post's state."""
        raise PermanentError(N_("This kind of channel cannot send previews."))

    def check(self, post: OutgoingPost) -> None:
        """Refuse to send what validate() finds blocking: limits are enforced before sending."""
        errors = [f for f in self.validate(post) if f.severity == "error"]
        if errors:
            first = errors[0]
            raise PermanentError(first.message, first.params, detail=f"invalid:{first.code}")


def text_bytes(text: str) -> int:
    """Length as services that count UTF-8 bytes see it (a Chinese character is 3)."""
    return len(text.encode("utf-8"))


def text_chars(text: str) -> int:
    """Length as services that count characters see it."""
    return len(text)


def cut_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-8 bytes, never splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: max(0, limit)].decode("utf-8", errors="ignore")


def measure(text: str, unit: str) -> int:
    """Length in the unit a limit key names ("bytes" or "chars")."""
    return text_bytes(text) if unit == "bytes" else text_chars(text)


_TOO_LONG = {
    ("title", "bytes"): N_("The title is too long for this channel: %(size)s of at most "
                           "%(limit)s bytes (a Chinese character counts as 3 bytes)."),
    ("title", "chars"): N_("The title is too long for this channel: %(size)s of at most "
                           "%(limit)s characters."),
    ("summary", "bytes"): N_("The summary is too long for this channel: %(size)s of at most "
                             "%(limit)s bytes (a Chinese character counts as 3 bytes)."),
    ("summary", "chars"): N_("The summary is too long for this channel: %(size)s of at most "
                             "%(limit)s characters."),
    ("body", "bytes"): N_("The text is too long for this channel: %(size)s of at most "
                          "%(limit)s bytes (a Chinese character counts as 3 bytes)."),
    ("body", "chars"): N_("The text is too long for this channel: %(size)s of at most "
                          "%(limit)s characters."),
}


def limit_finding(code: str, part: str, size: int, limit: int, unit: str, *,
                  severity: Severity = "error") -> Finding:
    """A readable "too long" finding that says how the service counts.
    part: title | summary | body (also the form field it points at)."""
    return Finding(code, severity, _TOO_LONG[(part, unit)], {"size": size, "limit": limit},
                   field=part)
