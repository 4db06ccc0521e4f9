"""Creating and configuring channels: typed config per kind, secrets encrypted, write-only."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import replace
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from ..channels import secrets as channel_secrets
from ..channels.base import ChannelAdapter, ConfigField, Finding, OutgoingPost
from ..channels.base import Recipient as RecipientData
from ..channels.registry import adapter_class, kinds
from ..channels.tokens import TokenStore
from ..errors import N_, ValidationError
from ..models import Channel, ContentPiece, Post, User
from ..timeutil import is_valid_timezone
from . import audit
from .access_tokens import DatabaseTokenStore

log = logging.getLogger(__name__)
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
# Account ids as services spell them (WeCom userid: letters, digits, "-", "_", ".", "@").
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Channel columns settable through forms and the API, with their integer bounds.
INT_SETTINGS = {
    "daily_quota": (1, 10_000),
    "per_minute_limit": (1, 10_000),
    "grace_minutes": (0, 7 * 24 * 60),
    "max_retries": (0, 50),
    "conflict_window_minutes": (0, 7 * 24 * 60),
}


def _coerce(spec: ConfigField, raw: Any) -> tuple[Any, str | None]:
    """Coerce one raw value (form string or JSON value) to the field's type."""
    if spec.type == "bool":
        if isinstance(raw, bool):
            return raw, None
        return str(raw).strip().lower() in {"1", "true", "yes", "on", "y"}, None
    if spec.type == "int":
        try:
            value = int(raw)
        except (TypeError, ValueError):
            return None, N_("Enter a whole number.")
        if isinstance(raw, bool):
            return None, N_("Enter a whole number.")
        if spec.min_value is not None and value < spec.min_value:
            return None, N_("The value is too small.")
        if spec.max_value is not None and value > spec.max_value:
            return None, N_("The value is too large.")
        return value, None
    if spec.type == "emails":
        items = raw if isinstance(raw, list) else re.split(r"[\s,;]+", str(raw or ""))
        out = []
        for item in items:
            if not isinstance(item, str):
                return None, N_("Enter e-mail addresses separated by commas.")
            item = item.strip()
            if not item:
                continue
            try:
                out.append(validate_email(item, check_deliverability=False).normalized)
            except EmailNotValidError:
                return None, N_("Enter e-mail addresses separated by commas.")
        return out, None
    if spec.type == "ids":
        items = raw if isinstance(raw, list) else re.split(r"[\s,;，；]+", str(raw or ""))
        out = []
        for item in items:
            if not isinstance(item, str):
                return None, N_("Enter account ids separated by commas.")
            item = item.strip()
            if not item:
                continue
            if not ACCOUNT_ID.match(item):
                return None, N_("Enter account ids separated by commas (letters, digits, "
                                "“-”, “_”, “.” and “@”, at most 64 characters each).")
            if item not in out:
                out.append(item)
        if not out and spec.required:
            return None, N_("This field is required.")
        return out, None
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        return None, N_("Enter text.")
    value = str(raw).strip()
    if len(value) > 2000:
        return None, N_("Use at most 2000 characters.")
    if spec.type == "url" and value and not URL.match(value):
        return None, N_("Enter a full URL starting with http:// or https://.")
    if spec.type == "email" and value:
        try:
            value = validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError:
            return None, N_("Enter a valid e-mail address.")
    if spec.type == "choice" and value and value not in spec.choices:
        return None, N_("Choose one of the options.")
    return value, None


def validate_config(kind: str, raw: Any, existing_secrets: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """Split raw config into (plain, secrets, errors). Empty secret input keeps the old one."""
    existing_secrets = existing_secrets or {}
    errors: dict[str, list[str]] = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, {}, {"config": [N_("The configuration must be an object.")]}
    cls = adapter_class(kind)
    known = {f.name for f in cls.config_fields}
    unknown = sorted(set(raw) - known)
    if unknown:
        errors["config"] = [N_("Unknown settings for this kind of channel.")]
    plain: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for spec in cls.config_fields:
        present = spec.name in raw and raw[spec.name] not in (None, "")
        if spec.secret and not present and spec.name in existing_secrets:
            secret[spec.name] = existing_secrets[spec.name]
            continue
        if not present:
            if spec.required:
                errors[f"config.{spec.name}"] = [N_("This field is required.")]
            elif spec.default is not None:
                plain[spec.name] = spec.default
            continue
        value, error = _coerce(spec, raw[spec.name])
        if error:
            errors[f"config.{spec.name}"] = [error]
        elif spec.secret:
            secret[spec.name] = value
        else:
            plain[spec.name] = value
    return plain, secret, errors


def _validate_settings(session: Session, data: dict[str, Any], channel: Channel | None
                       ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if channel is None or "name" in data:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = [N_("This field is required.")]
        elif len(name.strip()) > 100:
            errors["name"] = [N_("Use at most 100 characters.")]
        else:
            clash = session.scalar(select(Channel.id).where(
                func.lower(Channel.name) == name.strip().lower()))
            if clash is not None and (channel is None or clash != channel.id):
                errors["name"] = [N_("This name is already used.")]
            out["name"] = name.strip()
    if channel is None:
        kind = data.get("kind")
        if kind not in kinds():
            errors["kind"] = [N_("Choose one of the channel kinds.")]
        else:
            out["kind"] = kind
    elif "kind" in data and data["kind"] != channel.kind:
        errors["kind"] = [N_("The kind of an existing channel cannot change.")]
    if data.get("color") not in (None, ""):
        if not isinstance(data["color"], str) or not COLOR.match(data["color"]):
            errors["color"] = [N_("Use a colour like #1a73e8.")]
        else:
            out["color"] = data["color"].lower()
    if "timezone" in data:
        tz = data.get("timezone")
        if tz in (None, ""):
            out["timezone"] = None
        elif not isinstance(tz, str) or not is_valid_timezone(tz):
            errors["timezone"] = [N_("Choose a time zone from the list.")]
        else:
            out["timezone"] = tz
    for name, (low, high) in INT_SETTINGS.items():
        if name not in data:
            continue
        raw = data[name]
        if raw in (None, "") and name in ("daily_quota", "per_minute_limit"):
            out[name] = None
            continue
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = int(raw)
        except (TypeError, ValueError):
            errors[name] = [N_("Enter a whole number.")]
            continue
        if not low <= value <= high:
            errors[name] = [N_("The value is out of range.")]
            continue
        out[name] = value
    for name in ("requires_two_approvals", "active"):
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = [N_("Use true or false.")]
            else:
                out[name] = data[name]
    return out, errors


def check_settings(session: Session, data: dict[str, Any], channel: Channel | None = None
                   ) -> None:
    """Raise ValidationError for the problems of a channel's own settings (name, kind,
    colour, limits …; not its config); change nothing."""
    _, errors = _validate_settings(session, data, channel)
    if errors:
        raise ValidationError(errors)


def create_channel(session: Session, data: dict[str, Any], *, secret_key: str,
                   actor: User | None = None) -> Channel:
    settings, errors = _validate_settings(session, data, None)
    plain: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    if "kind" in settings:
        plain, secret, config_errors = validate_config(settings["kind"], data.get("config"))
        errors.update(config_errors)
    if errors:
        raise ValidationError(errors)
    channel = Channel(**settings, config=plain,
                      secrets=channel_secrets.encrypt(secret, secret_key) if secret else None)
    session.add(channel)
    session.flush()
    audit.record(session, "channel.created", "channel", channel.id, actor=actor,
                 data={"kind": channel.kind, "name": channel.name})
    return channel


def update_channel(session: Session, channel: Channel, data: dict[str, Any], *,
                   secret_key: str, actor: User | None = None) -> Channel:
    settings, errors = _validate_settings(session, data, channel)
    plain, secret = channel.config, None
    if "config" in data:
        old_secrets = readable_secrets(channel, secret_key)
        plain, secret, config_errors = validate_config(channel.kind, data["config"],
                                                       old_secrets)
        errors.update(config_errors)
    if errors:
        raise ValidationError(errors)
    for key, value in settings.items():
        setattr(channel, key, value)
    if "config" in data:
        channel.config = plain
        channel.secrets = channel_secrets.encrypt(secret, secret_key) if secret else None
    audit.record(session, "channel.updated", "channel", channel.id, actor=actor,
                 data={"fields": sorted(set(settings) | ({"config"} & set(data)))})
    return channel


def readable_secrets(channel: Channel, secret_key: str) -> dict[str, Any]:
    """The channel's decrypted secrets; {} when they were encrypted with another secret key
    (the key changed): the settings page then asks for them again instead of failing."""
    try:
        return channel_secrets.decrypt(channel.secrets, secret_key)
    except ValueError:
        log.warning("channel %s: stored secrets cannot be decrypted with this secret key",
                    channel.id)
        return {}


def full_config(channel: Channel, secret_key: str) -> dict[str, Any]:
    """Plain and decrypted secret settings together, for the adapter only."""
    return {**(channel.config or {}), **readable_secrets(channel, secret_key)}


def secret_fields_set(channel: Channel, secret_key: str) -> list[str]:
    """Names of secret fields that have a value (to show "set" without showing it)."""
    return sorted(readable_secrets(channel, secret_key))


def build_adapter(channel: Channel, secret_key: str, http: Any = None,
                  tokens: TokenStore | None = None) -> ChannelAdapter:
    """The channel's adapter with its decrypted settings. Access tokens go through the
    database store of the channel's own database (shared by every process) unless given."""
    from .feedback.email_tracking import tracking_key

    if tokens is None:
        session = object_session(channel)
        if session is not None:
            tokens = token_store(session.get_bind(), secret_key)
    cls = adapter_class(channel.kind)
    return cls(full_config(channel, secret_key), http=http, channel_id=channel.id,
               channel_name=channel.name, signing_key=tracking_key(secret_key), tokens=tokens)


@functools.lru_cache(maxsize=16)
def token_store(bind: Any, secret_key: str) -> DatabaseTokenStore:
    """One store per database and key (it holds no state but derives nothing twice)."""
    return DatabaseTokenStore(getattr(bind, "engine", bind), secret_key)


def public_url_for(session: Session, post: Post, base_url: str) -> str | None:
    """The address of the piece's page on a web channel (for "read more" links): the post's
    own if it is a web post, else a sibling web post's. None when the piece has no web page."""
    def url_of(external_url: str | None, slug: str | None) -> str | None:
        if external_url:
            return external_url
        return f"{base_url.rstrip('/')}/p/{slug}" if slug and base_url else None

    if post.channel.kind == "web":
        return url_of(post.external_url, post.slug)
    # One indexed query, not a walk over every post of the piece (this runs per claimed post).
    row = session.execute(
        select(Post.external_url, Post.slug).join(Channel, Post.channel_id == Channel.id)
        .where(Post.piece_id == post.piece_id, Channel.kind == "web",
               Post.status != "cancelled",
               (Post.external_url.is_not(None)) | (Post.slug.is_not(None)))
        .order_by(Post.published_at.is_(None), Post.id).limit(1)).first()
    return url_of(row.external_url, row.slug) if row else None


def outgoing_post(session: Session, post: Post, *, base_url: str,
                  resolve_recipients: bool = True, sync_recipients: bool = True
                  ) -> OutgoingPost:
    """Everything an adapter needs, as plain data, built right before sending (so a list
    channel's recipients reflect unsubscribes up to this moment)."""
    piece = post.piece
    channel = post.channel
    recipients: tuple[RecipientData, ...] = ()
    if resolve_recipients and adapter_class(channel.kind).uses_recipients:
        from .recipients import resolve

        recipients = resolve(session, channel, piece.audience_id, sync=sync_recipients)
    return OutgoingPost(
        post_id=post.id, piece_id=piece.id, version=piece.version, title=post.title,
        body_markdown=post.body or "", summary=piece.summary or "",
        audience=piece.audience.name if piece.audience else None,
        style=piece.style.name if piece.style else None,
        campaign=piece.campaign.name if piece.campaign else None,
        tags=tuple(t.name for t in piece.tags), scheduled_at=post.scheduled_at,
        channel_id=channel.id, channel_name=channel.name,
        public_url=public_url_for(session, post, base_url), base_url=base_url.rstrip("/"),
        recipients=recipients)


def validate_post(session: Session, post: Post, *, secret_key: str, base_url: str
                  ) -> list[Finding]:
    """The channel's limits and required fields for this post (submit time and dispatch)."""
    adapter = build_adapter(post.channel, secret_key)
    return adapter.validate(outgoing_post(session, post, base_url=base_url,
                                          resolve_recipients=False))


SAMPLE_TITLE = "ContentOps 预览：双11 会员专享"
SAMPLE_BODY = ("这是一条**预览**消息，用来检查这个渠道的排版。\n\n"
               "- 满 300 减 50\n- 会员包邮\n\n[活动详情](https://example.com/)")


def check_connection(channel: Channel, *, secret_key: str, http: Any = None) -> str:
    """msgid on success; raises TransientError/PermanentError with a readable reason."""
    return build_adapter(channel, secret_key, http).test_connection()


def send_preview(session: Session, channel: Channel, *, secret_key: str, base_url: str,
                 piece: ContentPiece | None = None, to: str | None = None,
                 http: Any = None, actor: User | None = None) -> None:
    """Send a piece (or a sample text) to the channel, marked as a preview. Post states are
    untouched; for e-mail only `to` receives it."""
    if piece is not None:
        outgoing = OutgoingPost(
            post_id=0, piece_id=piece.id, version=piece.version, title=piece.title,
            body_markdown=piece.body or "", summary=piece.summary or "",
            channel_id=channel.id, channel_name=channel.name, base_url=base_url, preview=True)
    else:
        outgoing = OutgoingPost(post_id=0, piece_id=0, version=0, title=SAMPLE_TITLE,
                                body_markdown=SAMPLE_BODY, channel_id=channel.id,
                                channel_name=channel.name, base_url=base_url, preview=True)
    adapter = build_adapter(channel, secret_key, http)
    adapter.send_preview(outgoing, to)
    audit.record(session, "channel.preview_sent", "channel", channel.id, actor=actor,
                 data={"piece_id": piece.id if piece else None})


def preview_targets(piece: ContentPiece) -> list[Post]:
    """The piece's posts whose channel can send a preview to one person's account before
    approval (公众号: /message/mass/preview to a WeChat id), one per channel."""
    seen: set[int] = set()
    out = []
    for post in sorted(piece.posts, key=lambda p: p.id):
        kind = post.channel.kind if post.channel else None
        if post.status == "cancelled" or post.channel_id in seen or kind is None:
            continue
        if adapter_class(kind).preview_address == "wxname":
            seen.add(post.channel_id)
            out.append(post)
    return out


def send_post_preview(session: Session, post: Post, *, to: str, secret_key: str,
                      base_url: str, actor: User | None = None, http: Any = None) -> None:
    """Send the post as its channel will send it — the channel's variant (title/body
    override) included — to one person (a WeChat id), marked as a preview. Allowed before
    approval: it reaches only that person, never the audience, and the post's state is
    untouched. Raises ValidationError for a missing address, and the channel's
    PermanentError/TransientError with a readable reason."""
    to = (to or "").strip()
    if not to:
        raise ValidationError({"to": [N_("Enter the WeChat id (微信号) that should receive "
                                         "the preview; it must follow the account.")]})
    if len(to) > 20 or any(c.isspace() for c in to):
        raise ValidationError({"to": [N_("A WeChat id has no spaces and at most 20 "
                                         "characters.")]})
    outgoing = replace(outgoing_post(session, post, base_url=base_url,
                                     resolve_recipients=False), preview=True)
    adapter = build_adapter(post.channel, secret_key, http)
    adapter.send_preview(outgoing, to)
    audit.record(session, "post.preview_sent", "post", post.id, actor=actor,
                 data={"channel_id": post.channel_id, "version": post.piece.version})


def channel_dict(channel: Channel) -> dict[str, Any]:
    """The API's view of a channel: never any secret."""
    return {
        "id": channel.id, "name": channel.name, "kind": channel.kind, "color": channel.color,
        "timezone": channel.timezone, "config": dict(channel.config or {}),
        "active": channel.active, "daily_quota": channel.daily_quota,
        "per_minute_limit": channel.per_minute_limit, "grace_minutes": channel.grace_minutes,
        "max_retries": channel.max_retries,
        "conflict_window_minutes": channel.conflict_window_minutes,
        "requires_two_approvals": channel.requires_two_approvals,
    }
