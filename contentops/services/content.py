"""Content pieces: create and edit, revisions, tags, per-channel variants, one Post per channel.

Every rule that decides what a piece may hold lives here, shared by the web form and the JSON
API, so both refuse the same input with the same field-level messages (invariant 6). A change
to what readers will see (title, body, summary, a variant) makes a new version with an immutable
revision and hands the piece to services.review.content_changed, which voids any approval
(invariant 1). Scheduling goes through services.publishing.schedule_post, never around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from .. import post_states
from ..channels.base import Finding
from ..errors import N_, DomainError, NotFound, ValidationError
from ..models import (
    PIECE_STATES,
    Audience,
    Campaign,
    Channel,
    ContentPiece,
    PieceRevision,
    Post,
    Style,
    Tag,
    User,
    piece_tags,
)
from ..rendering import clean_source
from ..timeutil import parse_iso
from . import audit, review
from .publishing.actions import schedule_post

MAX_TITLE = 200
MAX_SUMMARY = 500
MAX_BODY = 100_000
MAX_TAG = 50
MAX_TAGS = 20
MAX_CHANNELS = 50
MAX_PER_PAGE = 200

# Keys a client may send; anything else is refused so a typo ("tilte") is not silently lost.
WRITABLE = ("title", "body", "summary", "audience_id", "style_id", "campaign_id",
            "channel_ids", "tags", "scheduled_at", "variants")
# What readers see: a change to any of these is a new version that needs approval again.
VERSIONED = ("title", "body", "summary", "variants")
# Posts in these states never left the building and carry no history worth keeping: removing
# their channel from the piece deletes them. Others are cancelled or, once out, refused.
_DELETABLE = {"unscheduled", "scheduled", "missed", "cancelled"}
# (Both are sources of the post table's "cancel"; a revived cancelled post is "unschedule"d.)
_CANCELLABLE = {"failed", "retrying"}
# A piece-level time applies to posts that have not gone anywhere yet.
_RESCHEDULABLE = {"unscheduled", "scheduled"}
_TAG_SPLIT = re.compile(r"[,，、;；\n]+")
# One literal msgid per limit so each translates as a whole.
_TOO_LONG = {
    MAX_TITLE: N_("Use at most 200 characters."),
    MAX_SUMMARY: N_("Use at most 500 characters."),
    MAX_BODY: N_("Use at most 100000 characters."),
    MAX_TAG: N_("Use at most 50 characters."),
}


@dataclass
class SaveResult:
    piece: ContentPiece
    new_version: bool = False
    warnings: list[Finding] = field(default_factory=list)


@dataclass
class PieceFilters:
    status: str | None = None
    audience_id: int | None = None
    style_id: int | None = None
    campaign_id: int | None = None
    channel_id: int | None = None
    author_id: int | None = None
    tag: str | None = None
    q: str | None = None


# --- validation ---------------------------------------------------------------------------

def _text(data: Mapping[str, Any], name: str, limit: int, errors: dict[str, list[str]],
          *, required: bool, strip: bool = True) -> str | None:
    raw = data.get(name)
    if raw is None:
        if required:
            errors[name] = [N_("This field is required.")]
        return None if required else ""
    if not isinstance(raw, str):
        errors[name] = [N_("Enter text.")]
        return None
    value = clean_source(raw.replace("\r\n", "\n"))
    value = value.strip() if strip else value
    if required and not value.strip():
        errors[name] = [N_("This field is required.")]
        return None
    if len(value) > limit:
        errors[name] = [_TOO_LONG[limit]]
        return None
    return value


def _int_id(raw: Any) -> int | None:
    """An id from JSON (int) or a form (digit string); anything else is not an id."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw < 2**31 else None
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) < 10:
        value = int(raw.strip())
        return value if value > 0 else None
    return None


def _ref(session: Session, model: type, data: Mapping[str, Any], name: str,
         errors: dict[str, list[str]], *, required: bool) -> Any:
    raw = data.get(name)
    if raw in (None, ""):
        if required:
            errors[name] = [N_("This field is required.")]
        return None
    ident = _int_id(raw)
    if ident is None:
        errors[name] = [N_("Enter a valid id.")]
        return None
    obj = session.get(model, ident)
    if obj is None:
        # A deleted or foreign record is refused, never stored as a dangling id.
        errors[name] = [N_("This choice does not exist (any more).")]
    return obj


def parse_tags(raw: Any) -> list[str] | None:
    """Tags from a list (API) or one comma-separated string (form); None when ill-typed."""
    if raw is None:
        return []
    if isinstance(raw, str):
        items: Iterable[Any] = _TAG_SPLIT.split(raw)
    elif isinstance(raw, list):
        items = raw
    else:
        return None
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            return None
        name = " ".join(clean_source(item).split()).lstrip("#")
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def _tags(data: Mapping[str, Any], errors: dict[str, list[str]]) -> list[str] | None:
    tags = parse_tags(data.get("tags"))
    if tags is None:
        errors["tags"] = [N_("Send tags as a list of words.")]
    elif len(tags) > MAX_TAGS:
        errors["tags"] = [N_("Use at most 20 tags.")]
    elif any(len(t) > MAX_TAG for t in tags):
        errors["tags"] = [N_("Each tag may have at most 50 characters.")]
    else:
        return tags
    return None


def _channels(session: Session, data: Mapping[str, Any], errors: dict[str, list[str]],
              current: set[int]) -> list[Channel] | None:
    raw = data.get("channel_ids")
    if raw is None or raw == []:
        errors["channel_ids"] = [N_("Choose at least one channel.")]
        return None
    if not isinstance(raw, list):
        errors["channel_ids"] = [N_("Send channel ids as a list.")]
        return None
    if len(raw) > MAX_CHANNELS:
        errors["channel_ids"] = [N_("Too many channels.")]
        return None
    ids: list[int] = []
    for item in raw:
        ident = _int_id(item)
        if ident is None:
            errors["channel_ids"] = [N_("Enter a valid id.")]
            return None
        if ident not in ids:
            ids.append(ident)
    found = {c.id: c for c in session.scalars(select(Channel).where(Channel.id.in_(ids)))}
    if len(found) != len(ids):
        errors["channel_ids"] = [N_("This choice does not exist (any more).")]
        return None
    # A switched-off channel may stay on a piece that already uses it, but not be added.
    if any(not found[i].active and i not in current for i in ids):
        errors["channel_ids"] = [N_("This channel is switched off.")]
        return None
    return [found[i] for i in ids]


def _variants(data: Mapping[str, Any], channel_ids: list[int],
              errors: dict[str, list[str]]) -> dict[int, dict[str, str | None]] | None:
    raw = data.get("variants")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["variants"] = [N_("Send variants as an object keyed by channel id.")]
        return None
    out: dict[int, dict[str, str | None]] = {}
    for key, value in raw.items():
        ident = _int_id(key)
        prefix = f"variants.{key}"
        if ident is None or ident not in channel_ids:
            errors[prefix] = [N_("A variant needs one of the piece's channels.")]
            continue
        if value is None:
            continue
        if not isinstance(value, dict) or set(value) - {"title", "body"}:
            errors[prefix] = [N_("A variant has a title and a body, nothing else.")]
            continue
        variant: dict[str, str | None] = {}
        for name, limit in (("title", MAX_TITLE), ("body", MAX_BODY)):
            own: dict[str, list[str]] = {}
            text = _text(value, name, limit, own, required=False, strip=name == "title")
            if own:
                errors[f"{prefix}.{name}"] = own[name]
                continue
            variant[name] = text if text and text.strip() else None
        if variant.get("title") or variant.get("body"):
            out[ident] = variant
    return out


def _when(data: Mapping[str, Any], errors: dict[str, list[str]]) -> datetime | None:
    raw = data.get("scheduled_at")
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime):
        if raw.tzinfo is None:
            errors["scheduled_at"] = [N_("Give the time with its UTC offset.")]
            return None
        return raw
    if not isinstance(raw, str):
        errors["scheduled_at"] = [N_("Enter a date and time.")]
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        errors["scheduled_at"] = [
            N_("Use ISO 8601 with a UTC offset, e.g. 2026-11-11T20:00:00+08:00.")]
        return None


def _validate(session: Session, data: Mapping[str, Any], piece: ContentPiece | None
              ) -> dict[str, Any]:
    """Check everything at once so the user sees every problem in one go; change nothing."""
    if not isinstance(data, Mapping):
        raise ValidationError({}, message=N_("Send a JSON object."))
    errors: dict[str, list[str]] = {}
    for key in data:
        if key not in WRITABLE:
            errors[str(key)] = [N_("Unknown field.")]
    creating = piece is None
    merged: dict[str, Any] = {}
    present = set(data) if piece is not None else set(WRITABLE)
    if "title" in present:
        merged["title"] = _text(data, "title", MAX_TITLE, errors, required=True)
    if "body" in present:
        merged["body"] = _text(data, "body", MAX_BODY, errors, required=True, strip=False)
    if "summary" in present:
        merged["summary"] = _text(data, "summary", MAX_SUMMARY, errors, required=False) or ""
    if "audience_id" in present:
        merged["audience"] = _ref(session, Audience, data, "audience_id", errors, required=True)
    if "style_id" in present:
        merged["style"] = _ref(session, Style, data, "style_id", errors, required=True)
    if "campaign_id" in present:
        merged["campaign"] = _ref(session, Campaign, data, "campaign_id", errors,
                                  required=False)
    if "tags" in present:
        merged["tags"] = _tags(data, errors)
    current = {p.channel_id for p in piece.posts} if piece is not None else set()
    if "channel_ids" in present:
        merged["channels"] = _channels(session, data, errors, current)
        channel_ids = [c.id for c in merged["channels"] or []]
    else:
        channel_ids = sorted(current)
    if "variants" in present and "channel_ids" not in errors:
        merged["variants"] = _variants(data, channel_ids, errors)
    if "scheduled_at" in present:
        merged["scheduled_at"] = _when(data, errors)
        if not creating and merged["scheduled_at"] is None and "scheduled_at" not in errors:
            errors["scheduled_at"] = [
                N_("To take posts off the calendar, unschedule them one by one.")]
    if errors:
        raise ValidationError(errors)
    return merged


def check(session: Session, data: Mapping[str, Any], piece: ContentPiece | None = None) -> None:
    """Raise ValidationError with every problem `data` has (as create/update would); change
    nothing. The API calls it to report these beside the problems its schema found."""
    _validate(session, data, piece)


# --- writing ------------------------------------------------------------------------------

def _tag_rows(session: Session, names: list[str]) -> list[Tag]:
    if not names:
        return []
    folded = {n.casefold(): n for n in names}
    existing = {t.name.casefold(): t for t in session.scalars(
        select(Tag).where(func.lower(Tag.name).in_([n.lower() for n in names])))}
    rows = []
    for key, name in folded.items():
        tag = existing.get(key)
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
            existing[key] = tag
        rows.append(tag)
    return rows


def variants_of(piece: ContentPiece) -> dict[int, dict[str, str | None]]:
    """The piece's per-channel overrides, keyed by channel id (only channels that have one)."""
    return {p.channel_id: {"title": p.title_override, "body": p.body_override}
            for p in piece.posts
            if p.title_override is not None or p.body_override is not None}


def _snapshot(piece: ContentPiece) -> tuple[Any, ...]:
    variants = variants_of(piece)
    return (piece.title, piece.body, piece.summary,
            tuple(sorted((k, v["title"], v["body"]) for k, v in variants.items())))


def _add_revision(session: Session, piece: ContentPiece, actor: User | None,
                  now: datetime) -> PieceRevision:
    revision = PieceRevision(
        piece=piece, version=piece.version, title=piece.title, body=piece.body,
        summary=piece.summary, author_id=actor.id if actor is not None else None,
        variants={str(k): v for k, v in variants_of(piece).items()}, created_at=now)
    session.add(revision)
    return revision


def _apply_variants(piece: ContentPiece, variants: dict[int, dict[str, str | None]]) -> None:
    for post in piece.posts:
        variant = variants.get(post.channel_id) or {}
        post.title_override = variant.get("title")
        post.body_override = variant.get("body")


def _sync_channels(session: Session, piece: ContentPiece, channels: list[Channel],
                   now: datetime) -> list[Post]:
    """Make the piece's posts match the channel list. Returns the posts it created."""
    wanted = {c.id for c in channels}
    blocked = []
    for post in list(piece.posts):
        if post.channel_id in wanted:
            continue
        if post.status in _DELETABLE and not post.attempt_count:
            piece.posts.remove(post)
            session.delete(post)
        elif post.status in _CANCELLABLE:
            post_states.apply(post, "cancel", now)
        elif post.status != "cancelled":
            blocked.append(post.channel.name)
    if blocked:
        raise ValidationError(
            {"channel_ids": [N_("%(channels)s already went out or is being sent; that "
                                "channel cannot be removed.")]},
            params={"channels": ", ".join(blocked)})
    # A cancelled post kept for its history stays; choosing its channel again revives it.
    have = {p.channel_id: p for p in piece.posts}
    created = []
    for channel in channels:
        post = have.get(channel.id)
        if post is None:
            post = Post(channel=channel, channel_id=channel.id, status="unscheduled",
                        created_at=now, updated_at=now)
            piece.posts.append(post)
            created.append(post)
        elif post.status == "cancelled" and not post.published_at:
            post_states.apply(post, "unschedule", now)
            created.append(post)
    return created


def _schedule(session: Session, posts: Iterable[Post], when: datetime, actor: User | None,
              now: datetime) -> list[Finding]:
    warnings: list[Finding] = []
    for post in posts:
        if post.status not in _RESCHEDULABLE:
            continue
        if post.status == "scheduled" and post.scheduled_at == when:
            continue
        warnings += schedule_post(session, post, when, actor=actor, now=now)
    return warnings


def create_piece(session: Session, data: Mapping[str, Any], *, author: User,
                 now: datetime) -> SaveResult:
    """Create a draft piece (version 1) with one post per channel; schedule them if asked."""
    clean = _validate(session, data, None)
    piece = ContentPiece(
        title=clean["title"], body=clean["body"], summary=clean["summary"],
        audience=clean["audience"], style=clean["style"], campaign=clean["campaign"],
        author=author, status="draft", version=1, created_at=now, updated_at=now)
    piece.tags = _tag_rows(session, clean["tags"])
    session.add(piece)
    _sync_channels(session, piece, clean["channels"], now)
    _apply_variants(piece, clean["variants"])
    session.flush()
    _add_revision(session, piece, author, now)
    warnings: list[Finding] = []
    if clean.get("scheduled_at") is not None:
        warnings = _schedule(session, piece.posts, clean["scheduled_at"], author, now)
    session.flush()
    audit.record(session, "piece.created", "piece", piece.id, actor=author, now=now,
                 data={"version": 1, "channels": [p.channel_id for p in piece.posts]})
    return SaveResult(piece, new_version=True, warnings=warnings)


def update_piece(session: Session, piece: ContentPiece, data: Mapping[str, Any], *,
                 actor: User, now: datetime, expected_version: int | None = None
                 ) -> SaveResult:
    """Change only the fields given. A change readers would see makes a new version.

    `expected_version` is the version the editor started from: if someone saved another
    since, nothing is changed, so one person's edit never silently overwrites another's.
    """
    if expected_version is not None and expected_version != piece.version:
        raise DomainError(
            N_("Someone saved version %(version)d of this piece while you were editing. "
               "Nothing was changed: reload it, then make your changes again."),
            {"version": piece.version}, code="stale_version")
    clean = _validate(session, data, piece)
    before = _snapshot(piece)
    changed: set[str] = set()
    for name in ("title", "body", "summary"):
        if name in clean and clean[name] != getattr(piece, name):
            setattr(piece, name, clean[name])
            changed.add(name)
    for name in ("audience", "style", "campaign"):
        if name in clean and clean[name] is not getattr(piece, name):
            setattr(piece, name, clean[name])
            changed.add(f"{name}_id")
    if "tags" in clean:
        old = [t.name for t in piece.tags]
        if sorted(n.casefold() for n in old) != sorted(n.casefold() for n in clean["tags"]):
            piece.tags = _tag_rows(session, clean["tags"])
            changed.add("tags")
    created: list[Post] = []
    if "channels" in clean:
        old_channels = {p.channel_id for p in piece.posts if p.status != "cancelled"}
        created = _sync_channels(session, piece, clean["channels"], now)
        if old_channels != {p.channel_id for p in piece.posts if p.status != "cancelled"}:
            changed.add("channel_ids")
    if "variants" in clean:
        _apply_variants(piece, clean["variants"])
    elif "channels" in clean:
        # New posts start without a variant; remaining ones keep theirs.
        for post in created:
            post.title_override = post.body_override = None
    session.flush()
    new_version = _snapshot(piece) != before
    if new_version:
        if before[3] != _snapshot(piece)[3]:
            changed.add("variants")
        piece.version += 1
        _add_revision(session, piece, actor, now)
        session.flush()
        review.content_changed(session, piece, actor, now)
    warnings: list[Finding] = []
    if clean.get("scheduled_at") is not None:
        warnings = _schedule(session, piece.posts, clean["scheduled_at"], actor, now)
        changed.add("scheduled_at")
    elif created and _common_time(piece) is not None:
        # A channel added to a piece whose posts share one time joins them at that time.
        when = _common_time(piece)
        if when is not None and when > now:
            warnings = _schedule(session, created, when, actor, now)
    if changed or new_version:
        piece.updated_at = now
        audit.record(session, "piece.updated", "piece", piece.id, actor=actor, now=now,
                     data={"version": piece.version, "new_version": new_version,
                           "fields": sorted(changed)})
    session.flush()
    return SaveResult(piece, new_version=new_version, warnings=warnings)


def _common_time(piece: ContentPiece) -> datetime | None:
    times = {p.scheduled_at for p in piece.posts if p.status == "scheduled"}
    return times.pop() if len(times) == 1 else None


def common_schedule(piece: ContentPiece) -> datetime | None:
    """The one time all of the piece's scheduled posts share, if they share one."""
    return _common_time(piece)


# --- reading ------------------------------------------------------------------------------

def get_piece(session: Session, piece_id: int) -> ContentPiece:
    piece = session.get(ContentPiece, piece_id)
    if piece is None:
        raise NotFound(N_("No such piece."))
    return piece


def parse_filters(args: Mapping[str, Any], *, strict: bool) -> PieceFilters:
    """Filters from a query string. Strict (API): a bad value is a 422; else it is ignored."""
    errors: dict[str, list[str]] = {}
    out = PieceFilters()
    status = args.get("status") or None
    if status is not None:
        if status in PIECE_STATES:
            out.status = status
        else:
            errors["status"] = [N_("Choose one of the options.")]
    for name in ("audience_id", "style_id", "campaign_id", "channel_id", "author_id"):
        raw = args.get(name)
        if raw in (None, ""):
            continue
        ident = _int_id(raw)
        if ident is None:
            errors[name] = [N_("Enter a valid id.")]
        else:
            setattr(out, name, ident)
    for name, limit in (("tag", MAX_TAG), ("q", MAX_TITLE)):
        raw = args.get(name)
        if isinstance(raw, str) and raw.strip():
            if len(raw) > limit:
                errors[name] = [_TOO_LONG[limit]]
            else:
                setattr(out, name, raw.strip())
    if errors and strict:
        raise ValidationError(errors)
    return out


def parse_page(args: Mapping[str, Any], *, strict: bool, default_per_page: int = 25
               ) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    values = {"page": 1, "per_page": default_per_page}
    for name, high in (("page", 100_000), ("per_page", MAX_PER_PAGE)):
        raw = args.get(name)
        if raw in (None, ""):
            continue
        ident = _int_id(raw)
        if ident is None or ident > high:
            errors[name] = [N_("Enter a whole number from 1 to 200.") if name == "per_page"
                            else N_("Enter a whole number of at least 1.")]
        else:
            values[name] = ident
    if errors and strict:
        raise ValidationError(errors)
    return values["page"], values["per_page"]


def list_pieces(session: Session, filters: PieceFilters, *, page: int = 1,
                per_page: int = 25) -> tuple[list[ContentPiece], int]:
    """One page of pieces, most recently changed first, and the total count."""
    query = select(ContentPiece)
    conditions = []
    if filters.status:
        conditions.append(ContentPiece.status == filters.status)
    for name in ("audience_id", "style_id", "campaign_id", "author_id"):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(getattr(ContentPiece, name) == value)
    if filters.channel_id is not None:
        conditions.append(exists().where(Post.piece_id == ContentPiece.id,
                                         Post.channel_id == filters.channel_id))
    if filters.tag:
        conditions.append(exists().where(
            piece_tags.c.piece_id == ContentPiece.id, piece_tags.c.tag_id == Tag.id,
            func.lower(Tag.name) == filters.tag.lstrip("#").lower()))
    if filters.q:
        like = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(ContentPiece.title.ilike(like, escape="\\"),
                              ContentPiece.summary.ilike(like, escape="\\")))
    if conditions:
        query = query.where(*conditions)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(
        query.options(selectinload(ContentPiece.tags), selectinload(ContentPiece.audience),
                      selectinload(ContentPiece.style), selectinload(ContentPiece.campaign),
                      selectinload(ContentPiece.author),
                      selectinload(ContentPiece.posts).selectinload(Post.channel))
        .order_by(ContentPiece.updated_at.desc(), ContentPiece.id.desc())
        .limit(per_page).offset((page - 1) * per_page)))
    return items, total
