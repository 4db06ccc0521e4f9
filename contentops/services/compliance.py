"""Compliance and channel checks run live in the editor and again at submit.

Findings reuse channels.base.Finding: errors block submission (unless overridden with an
audited reason), warnings inform.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..channels.base import ChannelAdapter, Finding, OutgoingPost, text_bytes
from ..channels.registry import adapter_class
from ..errors import N_, NotFound, ValidationError
from ..models import Audience, Channel, ContentPiece, Style, User
from ..models.review import ComplianceTerm
from ..rendering import markdown_to_text
from . import app_settings, audit

log = logging.getLogger(__name__)

# The project's own list of absolute terms (《广告法》第九条第三项: 国家级、最高级、最佳 and
# the forms commonly refused by regulators). Admins add and remove terms in the UI.
DEFAULT_TERMS_ZH: tuple[str, ...] = (
    "国家级", "最高级", "最佳", "第一", "唯一", "顶级", "首个", "首选", "独家", "全网第一",
    "史无前例", "最好", "最优", "最强", "最大", "最低价", "最便宜", "最先进", "最新技术",
    "世界级", "全球首发", "全国第一", "销量第一", "排名第一", "NO.1", "TOP1", "万能",
    "绝无仅有", "独一无二", "前无古人", "100%有效", "永久", "极品", "王牌", "领袖品牌",
    "遥遥领先", "无敌", "巅峰", "至尊", "第一品牌", "国家级产品",
)
DEFAULT_TERMS_EN: tuple[str, ...] = (
    "best", "number one", "No. 1", "#1", "the only", "world's first", "unbeatable",
    "best-selling", "world-class", "guaranteed results",
)
# Ordinary words that merely start with a banned term ("第一次" = "the first time").
HARMLESS_COMPOUNDS: tuple[str, ...] = (
    "第一次", "第一步", "第一天", "第一期", "第一批", "第一章", "第一届", "第一时间", "第一眼",
    "第一口", "第一站", "第一轮", "第一节", "第一季", "唯一的一次",
)
SEVERITIES = ("error", "warning")
MAX_TERM_LENGTH = 100

_HTTP_LINK = re.compile(r"(?<![\w/])http://[^\s)<>\"'\]]+", re.IGNORECASE)
_MD = MarkdownIt("commonmark", {"html": False})


@dataclass
class Draft:
    """What the checks look at: a saved piece or the editor's unsaved form."""

    title: str = ""
    body: str = ""
    summary: str = ""
    audience_id: int | None = None
    style_id: int | None = None
    channels: Sequence[Channel] = field(default_factory=list)
    # Per-channel variants: channel id -> (title, body) overrides.
    overrides: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)


def draft_from_piece(piece: ContentPiece) -> Draft:
    channels: list[Channel] = []
    overrides: dict[int, tuple[str | None, str | None]] = {}
    for post in piece.posts:
        if post.status == "cancelled":
            continue
        if post.channel not in channels:
            channels.append(post.channel)
        if post.title_override or post.body_override is not None:
            overrides[post.channel_id] = (post.title_override, post.body_override)
    return Draft(title=piece.title or "", body=piece.body or "", summary=piece.summary or "",
                 audience_id=piece.audience_id, style_id=piece.style_id, channels=channels,
                 overrides=overrides)


def draft_from_data(session: Session, data: dict[str, Any]) -> Draft:
    """Build a Draft from editor JSON; unknown or ill-typed values are ignored, never fatal."""

    def as_id(value: Any) -> int | None:
        try:
            return int(value) if value not in (None, "") and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            return None

    def as_text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    raw_ids = data.get("channel_ids") or []
    if not isinstance(raw_ids, list):
        raw_ids = [raw_ids]
    ids = [i for i in (as_id(v) for v in raw_ids[:50]) if i is not None]
    channels = list(session.scalars(select(Channel).where(Channel.id.in_(ids)))) if ids else []
    audience_id = as_id(data.get("audience_id"))
    if audience_id is not None and session.get(Audience, audience_id) is None:
        audience_id = None
    style_id = as_id(data.get("style_id"))
    if style_id is not None and session.get(Style, style_id) is None:
        style_id = None
    return Draft(title=as_text(data.get("title")), body=as_text(data.get("body")),
                 summary=as_text(data.get("summary")), audience_id=audience_id,
                 style_id=style_id, channels=channels)


# --- terms ----------------------------------------------------------------------------------

def ensure_seeded(session: Session) -> None:
    """Write the default term list once; afterwards the admins' edits are the list."""
    if app_settings.get(session, "compliance.terms_seeded"):
        return
    existing = {t.lower() for t in session.scalars(select(ComplianceTerm.term))}
    for term in DEFAULT_TERMS_ZH + DEFAULT_TERMS_EN:
        if term.lower() not in existing:
            session.add(ComplianceTerm(term=term, severity="error"))
            existing.add(term.lower())
    app_settings.put(session, "compliance.terms_seeded", True)
    session.flush()


def list_terms(session: Session) -> list[ComplianceTerm]:
    ensure_seeded(session)
    return list(session.scalars(select(ComplianceTerm).order_by(ComplianceTerm.term)))


def active_terms(session: Session) -> list[ComplianceTerm]:
    """The terms checks use. Before an admin first opens the list, the defaults apply without
    writing anything (checks run on every page view and keystroke)."""
    if app_settings.get(session, "compliance.terms_seeded"):
        return list(session.scalars(select(ComplianceTerm)))
    return [ComplianceTerm(term=t, severity="error") for t in DEFAULT_TERMS_ZH + DEFAULT_TERMS_EN]


def add_term(session: Session, term: str, severity: str = "error", *,
             actor: User | None = None) -> ComplianceTerm:
    term = " ".join((term or "").split())
    errors: dict[str, list[str]] = {}
    if not term:
        errors["term"] = [N_("This field is required.")]
    elif len(term) > MAX_TERM_LENGTH:
        errors["term"] = [N_("Use at most 100 characters.")]
    if severity not in SEVERITIES:
        errors["severity"] = [N_("Choose one of the options.")]
    ensure_seeded(session)
    if not errors and session.scalar(select(ComplianceTerm.id).where(
            func.lower(ComplianceTerm.term) == term.lower())) is not None:
        errors["term"] = [N_("This term is already on the list.")]
    if errors:
        raise ValidationError(errors)
    row = ComplianceTerm(term=term, severity=severity)
    session.add(row)
    session.flush()
    audit.record(session, "compliance.term_added", "compliance_term", row.id, actor=actor,
                 data={"term": term, "severity": severity})
    return row


def remove_term(session: Session, term_id: int, *, actor: User | None = None) -> None:
    row = session.get(ComplianceTerm, term_id)
    if row is None:
        raise NotFound(N_("No such term."))
    audit.record(session, "compliance.term_removed", "compliance_term", row.id, actor=actor,
                 data={"term": row.term})
    session.delete(row)


def _term_pattern(term: str) -> re.Pattern[str]:
    escaped = re.escape(term)
    if term.isascii():
        # Latin terms match whole words only: "best" is not in "bestow".
        return re.compile(rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])", re.IGNORECASE)
    return re.compile(escaped, re.IGNORECASE)


def _harmless_at(text: str, start: int) -> bool:
    return any(text.startswith(word, start) for word in HARMLESS_COMPOUNDS)


def find_terms(text: str, terms: Iterable[ComplianceTerm]) -> list[tuple[ComplianceTerm, int, int]]:
    """(term, start, end) for every banned occurrence, longest term first at a position."""
    hits: list[tuple[ComplianceTerm, int, int]] = []
    taken: list[tuple[int, int]] = []
    for term in sorted(terms, key=lambda t: -len(t.term)):
        for match in _term_pattern(term.term).finditer(text):
            start, end = match.span()
            if _harmless_at(text, start):
                continue
            if any(s <= start < e or s < end <= e for s, e in taken):
                continue  # "全网第一" already covers its "第一"
            taken.append((start, end))
            hits.append((term, start, end))
    return sorted(hits, key=lambda h: h[1])


# --- checks ---------------------------------------------------------------------------------

def _links_and_images(body: str) -> tuple[list[str], list[str]]:
    """(insecure links, image sources without alt text) in a Markdown body."""
    insecure = [m.group(0) for m in _HTTP_LINK.finditer(body)]
    missing_alt: list[str] = []
    for token in _MD.parse(body):
        for child in token.children or []:
            if child.type == "image" and not (child.content or "").strip():
                missing_alt.append(str(child.attrs.get("src") or ""))
    return list(dict.fromkeys(insecure)), missing_alt


def _limit_findings(draft: Draft, channel: Channel, limits: dict[str, int]) -> list[Finding]:
    title, body = draft.title, draft.body
    override = draft.overrides.get(channel.id)
    if override:
        title = override[0] or title
        body = override[1] if override[1] is not None else body
    body_text = markdown_to_text(body)
    measures = {
        "title_chars": (len(title), "title"),
        "title_bytes": (text_bytes(title), "title"),
        "body_chars": (len(body_text), "body"),
        "body_bytes": (text_bytes(body_text), "body"),
        "summary_chars": (len(draft.summary), "summary"),
        "text_chars": (len(title) + 2 + len(body_text), "body"),
        "text_bytes": (text_bytes(title) + 2 + text_bytes(body_text), "body"),
    }
    out: list[Finding] = []
    for key, limit in limits.items():
        if key not in measures or not isinstance(limit, int):
            continue
        size, fieldname = measures[key]
        if size <= limit:
            continue
        unit_bytes = key.endswith("_bytes")
        message = (N_("Too long for %(channel)s: %(size)s bytes, the channel accepts "
                      "%(limit)s (a Chinese character counts 3).") if unit_bytes else
                   N_("Too long for %(channel)s: %(size)s characters, the channel accepts "
                      "%(limit)s."))
        out.append(Finding(f"limit_{key}", "error", message,
                           {"channel": channel.name, "size": size, "limit": limit},
                           field=fieldname))
    return out


def _outgoing(draft: Draft, channel: Channel, audience: str | None, style: str | None,
              public_url: str | None) -> OutgoingPost:
    title, body = draft.title, draft.body
    override = draft.overrides.get(channel.id)
    if override:
        title = override[0] or title
        body = override[1] if override[1] is not None else body
    return OutgoingPost(post_id=0, piece_id=0, version=0, title=title, body_markdown=body,
                        summary=draft.summary, audience=audience, style=style,
                        channel_id=channel.id, channel_name=channel.name, public_url=public_url)


def _channel_findings(session: Session, draft: Draft) -> list[Finding]:
    out: list[Finding] = []
    audience = session.get(Audience, draft.audience_id) if draft.audience_id else None
    style = session.get(Style, draft.style_id) if draft.style_id else None
    # Cards that link to the full text need the piece on the web channel too; when it is,
    # the link will exist at publish time.
    public_url = "https://preview.invalid/p/preview" if any(
        c.kind == "web" for c in draft.channels) else None
    for channel in draft.channels:
        try:
            cls = adapter_class(channel.kind)
        except KeyError:
            continue
        found: list[Finding] = []
        try:
            adapter = cls(dict(channel.config or {}), channel_id=channel.id,
                          channel_name=channel.name)
            found = list(adapter.validate(_outgoing(
                draft, channel, audience.name if audience else None,
                style.name if style else None, public_url)))
        except Exception:  # an adapter bug must not break the editor; the log keeps it
            log.exception("validate() failed for channel %s", channel.id)
        if cls.validate is ChannelAdapter.validate:
            # The adapter declares limits but leaves checking them to us.
            limits = dict(cls.capabilities.limits)
            found.extend(_limit_findings(draft, channel, limits))
        for finding in found:
            if finding.code == "title_missing":
                continue  # reported once for the piece, not per channel
            out.append(replace(finding, params={**finding.params, "channel": channel.name}))
    return out


def check(session: Session, draft: Draft) -> list[Finding]:
    """Every finding for a draft: errors first, then warnings, in text order."""
    findings: list[Finding] = []
    if not draft.title.strip():
        findings.append(Finding("title_missing", "error", N_("The title is empty."),
                                field="title"))
    if not markdown_to_text(draft.body).strip():
        findings.append(Finding("body_missing", "warning", N_("The body is empty."),
                                field="body"))
    if draft.audience_id is None:
        findings.append(Finding("audience_missing", "error",
                                N_("Choose the audience this piece is written for."),
                                field="audience_id"))
    if draft.style_id is None:
        findings.append(Finding("style_missing", "error",
                                N_("Choose the style (tone) of this piece."), field="style_id"))
    terms = active_terms(session)
    texts = [("title", draft.title), ("summary", draft.summary), ("body", draft.body)]
    for title_o, body_o in draft.overrides.values():
        texts.append(("title", title_o or ""))
        texts.append(("body", body_o or ""))
    reported: set[tuple[str, str]] = set()
    for fieldname, text in texts:
        for term, start, end in find_terms(text, terms):
            if (term.term.lower(), fieldname) in reported:
                continue
            reported.add((term.term.lower(), fieldname))
            findings.append(Finding(
                "ad_law_term", term.severity,  # type: ignore[arg-type]
                N_("“%(term)s” is an absolute claim the Advertising Law forbids; rephrase it."),
                {"term": text[start:end], "start": start, "end": end}, field=fieldname))
    insecure, missing_alt = _links_and_images(draft.body)
    for url in insecure:
        findings.append(Finding("insecure_link", "warning",
                                N_("The link %(url)s is not https; WeChat and browsers may "
                                   "warn readers."), {"url": url[:200]}, field="body"))
    for src in missing_alt:
        findings.append(Finding("image_alt", "warning",
                                N_("An image has no alt text (%(src)s): describe it for "
                                   "readers who cannot see it."), {"src": src[:200]},
                                field="body"))
    findings.extend(_channel_findings(session, draft))
    return sorted(findings, key=lambda f: 0 if f.severity == "error" else 1)


def check_piece(session: Session, piece: ContentPiece) -> list[Finding]:
    return check(session, draft_from_piece(piece))


def errors_of(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def may_override(session: Session, user: User) -> bool:
    """Admins may always override errors with a reason; others when an admin allowed it."""
    return user.has_role("admin") or bool(app_settings.get(session, "compliance.allow_override"))
