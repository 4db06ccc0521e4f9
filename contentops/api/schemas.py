"""The JSON shape of each API resource, in one place (DESIGN.md §6 names the fields).

Every endpoint that returns a post uses `post_dict`, so a post reads the same after an action,
in a piece and in the post list; stored reasons (`last_error`) are rendered here, in the
caller's language, never sent as their raw stored form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, g

from ..channels.base import Finding
from ..i18n import format_datetime_in, translate
from ..models import METRICS, ContentPiece, Post
from ..models.review import Comment
from ..models.users import ApiToken
from ..reasons import reason_text
from ..rendering import markdown_to_html
from ..services.content import variants_of
from ..timeutil import isoformat


def named(record: Any) -> dict[str, Any] | None:
    """An audience, style, campaign or user as {id, name}."""
    return None if record is None else {"id": record.id, "name": record.name}


def channel_ref(channel: Any) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.name, "kind": channel.kind,
            "color": channel.color}


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {"code": finding.code, "severity": finding.severity, "field": finding.field,
            "message": translate(finding.message, dict(finding.params)),
            "params": dict(finding.params)}


def warning_dict(finding: Finding) -> dict[str, Any]:
    return {"code": finding.code, "message": translate(finding.message, dict(finding.params))}


def _reader_time(value: datetime) -> str:
    """A time in a reason, in the API caller's zone (a token has no session to take it from)."""
    user = g.get("api_user")
    zone = (getattr(user, "timezone", None) or current_app.config["CONTENTOPS_TIMEZONE"])
    return format_datetime_in(value, zone)


# --- posts ------------------------------------------------------------------------------------

def post_dict(post: Post) -> dict[str, Any]:
    """A post wherever the API returns one: after an action, in a piece, in the post list."""
    return {
        "id": post.id,
        "piece_id": post.piece_id,
        "channel_id": post.channel_id,
        "channel": channel_ref(post.channel),
        "title": post.title,
        "status": post.status,
        "scheduled_at": isoformat(post.scheduled_at),
        "next_attempt_at": isoformat(post.next_attempt_at),
        "published_at": isoformat(post.published_at),
        "external_id": post.external_id,
        "external_url": post.external_url,
        "attempt_count": post.attempt_count,
        "last_error": reason_text(post.last_error, translate, instant=_reader_time) or None,
        "metrics": {name: getattr(post, name) or 0 for name in METRICS},
        # 公众号 multi-article send: the key shared by its posts and this one's place (1 =
        # 头条); None when the post goes out on its own.
        "send_group": post.send_group,
        "group_position": post.group_position,
    }


def post_list_item(post: Post) -> dict[str, Any]:
    """One item of GET /posts: the post plus what the list filters and sorts by."""
    piece = post.piece
    return {
        **post_dict(post),
        "audience": named(piece.audience),
        "style": named(piece.style),
        "campaign": named(piece.campaign),
        "engagement_rate": post.engagement_rate,
        # Posts handed to staff (manual, wecom_customer): N of M sent, customers reached.
        "staff": ({"confirmed": post.staff_confirmed or 0, "total": post.staff_total,
                   "reached": post.reached or 0}
                  if post.staff_total is not None else None),
    }


def piece_post_dict(post: Post) -> dict[str, Any]:
    """A post inside a piece: the post plus its per-channel variant."""
    return {
        **post_dict(post),
        "title_override": post.title_override,
        "body_override": post.body_override,
        "body_html": markdown_to_html(post.body),
    }


# --- pieces -----------------------------------------------------------------------------------

def piece_summary_dict(piece: ContentPiece) -> dict[str, Any]:
    """A row of GET /pieces: no body."""
    return {
        "id": piece.id, "title": piece.title, "summary": piece.summary,
        "status": piece.status, "version": piece.version,
        "approved_version": piece.approved_version,
        "audience": named(piece.audience), "style": named(piece.style),
        "campaign": named(piece.campaign), "tags": [t.name for t in piece.tags],
        "author": named(piece.author),
        "channels": [{**channel_ref(p.channel), "post_id": p.id, "status": p.status,
                      "scheduled_at": isoformat(p.scheduled_at)} for p in piece.posts],
        "created_at": isoformat(piece.created_at), "updated_at": isoformat(piece.updated_at),
    }


def piece_dict(piece: ContentPiece) -> dict[str, Any]:
    """The full view of a piece (DESIGN.md §6 fields plus the text and its HTML)."""
    return {
        **piece_summary_dict(piece),
        "body": piece.body, "body_html": markdown_to_html(piece.body),
        "audience_id": piece.audience_id, "style_id": piece.style_id,
        "campaign_id": piece.campaign_id,
        "channel_ids": [p.channel_id for p in piece.posts if p.status != "cancelled"],
        "variants": {str(k): v for k, v in variants_of(piece).items()},
        "posts": [piece_post_dict(p) for p in piece.posts],
    }


# --- review -----------------------------------------------------------------------------------

def review_dict(piece: ContentPiece, approvals: list, approvals_needed: int,
                findings: list[Finding] | None = None) -> dict[str, Any]:
    """A piece's review state after submit/approve/request-changes."""
    out = {
        "id": piece.id, "status": piece.status, "version": piece.version,
        "approved_version": piece.approved_version,
        "approvals": [{"user_id": a.user_id, "version": a.version,
                       "approved_at": isoformat(a.created_at)} for a in approvals],
        "approvals_needed": approvals_needed,
        "posts": [{**post_dict(p), "held": p.hold is not None} for p in piece.posts],
    }
    if findings is not None:
        out["findings"] = [finding_dict(f) for f in findings]
    return out


def comment_dict(comment: Comment) -> dict[str, Any]:
    return {"id": comment.id, "piece_id": comment.piece_id, "parent_id": comment.parent_id,
            "author": comment.author_name, "author_id": comment.author_id,
            "version": comment.version, "body": comment.body,
            "created_at": isoformat(comment.created_at)}


# --- tokens -----------------------------------------------------------------------------------

def token_dict(token: ApiToken) -> dict[str, Any]:
    """An API token without its secret (shown once, at creation, elsewhere)."""
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "created_at": isoformat(token.created_at),
            "last_used_at": isoformat(token.last_used_at),
            "revoked_at": isoformat(token.revoked_at)}
