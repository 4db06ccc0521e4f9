"""Review workflow (DESIGN.md invariant 1): nothing is published that an approver did not
approve, in exactly that version.

States and the actions between them are one explicit table (TRANSITIONS). Every transition
writes an AuditEvent with who, when, from, to, version and comment.

A piece's posts are claimable only while `claimable_clause()` holds: the piece is approved at
its current version, the post's channel has all the approvals it needs (two distinct ones
for channels that require them), and the post is not on hold.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, distinct, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .. import post_states
from ..channels.base import Finding
from ..errors import N_, DomainError, Forbidden, NotFound, ValidationError
from ..models import POST_STATES, AuditEvent, Channel, ContentPiece, PieceRevision, Post, User
from ..models.review import Approval, Comment, PostHold, ReviewLink
from ..rendering import sanitize_html
from ..timeutil import as_utc
from . import app_settings, audit, compliance
from .notifications import notify

# (state, action) -> next state. Anything not listed is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "in_review",
    ("changes_requested", "submit"): "in_review",
    ("in_review", "withdraw"): "draft",
    ("in_review", "approve"): "approved",
    # A second, distinct approval for channels that need two.
    ("approved", "approve"): "approved",
    ("in_review", "request_changes"): "changes_requested",
    # An approver may take an approval back before the piece goes out.
    ("approved", "request_changes"): "changes_requested",
    ("approved", "reopen"): "draft",
    ("changes_requested", "reopen"): "draft",
    # A saved edit (new version) always returns the piece to draft: it must be submitted and
    # checked again, and an approval of the old text no longer counts.
    ("draft", "edit"): "draft",
    ("in_review", "edit"): "draft",
    ("changes_requested", "edit"): "draft",
    ("approved", "edit"): "draft",
}
ACTIONS: tuple[str, ...] = ("submit", "withdraw", "approve", "request_changes", "reopen", "edit")
# Minimum role per action; approving has further rules (self-approval, distinct approvers).
ACTION_ROLE: dict[str, str] = {
    "submit": "editor", "withdraw": "editor", "approve": "approver",
    "request_changes": "approver", "reopen": "editor", "edit": "editor",
}
ACTION_LABELS: dict[str, str] = {
    "submit": N_("Submit for review"), "withdraw": N_("Withdraw from review"),
    "approve": N_("Approve"), "request_changes": N_("Request changes"),
    "reopen": N_("Reopen"), "edit": N_("Edit"),
}
STATE_LABELS: dict[str, str] = {
    "draft": N_("Draft"), "in_review": N_("In review"),
    "changes_requested": N_("Changes requested"), "approved": N_("Approved"),
}
# Post states a hold applies to: the ones the dispatcher could still pick up.
HOLDABLE = ("scheduled", "retrying")
MAX_COMMENT = 5000
MISSED_REASON = N_("The scheduled time passed while the piece waited for approval.")


class StaleVersion(DomainError):
    """The piece changed after the page (or client) saw it."""

    code = "stale_version"
    status = 409

    def __init__(self, seen: int, current: int, changed: list[str]) -> None:
        super().__init__(
            N_("This piece changed after you opened it: you saw version %(seen)s, it is now "
               "version %(current)s (changed: %(changes)s). Review the new version first."),
            {"seen": seen, "current": current, "changes": ", ".join(changed) or "-"})
        self.seen = seen
        self.current = current
        self.changed = changed


class InvalidTransition(DomainError):
    code = "invalid_transition"

    def __init__(self, action: str, state: str) -> None:
        super().__init__(N_("“%(action)s” is not possible while the piece is %(state)s."),
                         {"action": action, "state": state})
        self.action = action
        self.state = state


class ComplianceBlocked(ValidationError):
    code = "compliance_failed"

    def __init__(self, findings: list[Finding]) -> None:
        fields: dict[str, list[str]] = {}
        for finding in findings:
            fields.setdefault(finding.field or "compliance", []).append(finding.message)
        super().__init__(fields, message=N_("The piece has problems that block submission; "
                                            "fix them (or override with a reason)."))
        self.findings = findings


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


# --- rules ----------------------------------------------------------------------------------

def _next_state(piece: ContentPiece, action: str) -> str:
    target = TRANSITIONS.get((piece.status, action))
    if target is None:
        raise InvalidTransition(action, piece.status)
    return target


def _is_own(session: Session, piece: ContentPiece, user: User) -> bool:
    """The author, or whoever wrote the version under review, may not approve it."""
    if piece.author_id == user.id:
        return True
    writer = session.scalar(select(PieceRevision.author_id).where(
        PieceRevision.piece_id == piece.id, PieceRevision.version == piece.version))
    return writer == user.id


def active_approvals(session: Session, piece: ContentPiece,
                     version: int | None = None) -> list[Approval]:
    return list(session.scalars(select(Approval).where(
        Approval.piece_id == piece.id, Approval.version == (version or piece.version),
        Approval.voided_at.is_(None)).order_by(Approval.created_at, Approval.id)))


def two_approval_channels(piece: ContentPiece) -> list[Channel]:
    seen: list[Channel] = []
    for post in piece.posts:
        if post.status != "cancelled" and post.channel.requires_two_approvals \
                and post.channel not in seen:
            seen.append(post.channel)
    return seen


def approvals_needed(piece: ContentPiece) -> int:
    return 2 if two_approval_channels(piece) else 1


def awaiting_second_approval(session: Session, piece: ContentPiece) -> bool:
    return (piece.status == "approved" and approvals_needed(piece) == 2
            and len(active_approvals(session, piece)) < 2)


def check_action(session: Session, piece: ContentPiece, action: str, user: User) -> str:
    """Raise unless `user` may do `action` now; returns the target state."""
    if action not in ACTIONS:
        raise DomainError(N_("Unknown action."), code="invalid_transition")
    if not user.has_role(ACTION_ROLE[action]):
        raise Forbidden(N_("Your role does not allow this."))
    target = _next_state(piece, action)
    if action == "approve":
        if _is_own(session, piece, user) and not app_settings.get(
                session, "review.allow_self_approval"):
            raise Forbidden(N_("You cannot approve your own piece; ask another approver."),
                            code="self_approval")
        if piece.status == "approved":
            approvers = {a.user_id for a in active_approvals(session, piece)}
            if user.id in approvers:
                raise DomainError(N_("You have already approved this version."),
                                  code="already_approved")
            if not awaiting_second_approval(session, piece):
                raise DomainError(N_("This version is already approved."),
                                  code="already_approved")
    return target


def allowed_actions(session: Session, piece: ContentPiece, user: User) -> list[str]:
    out = []
    for action in ("submit", "withdraw", "approve", "request_changes", "reopen"):
        try:
            check_action(session, piece, action, user)
        except DomainError:
            continue
        out.append(action)
    return out


def _changed_fields(session: Session, piece: ContentPiece, seen: int) -> list[str]:
    old = revision(session, piece, seen)
    if old is None:
        return []
    return [name for name in ("title", "body", "summary")
            if (getattr(old, name) or "") != (getattr(piece, name) or "")]


def _check_version(session: Session, piece: ContentPiece, version: int | None) -> None:
    if version is not None and version != piece.version:
        raise StaleVersion(version, piece.version, _changed_fields(session, piece, version))


def _record(session: Session, piece: ContentPiece, action: str, old: str, actor: User | None,
            now: datetime, comment: str = "", actor_label: str | None = None,
            **extra) -> None:
    audit.record(session, f"piece.{action}", "piece", piece.id, actor=actor,
                 actor_label=actor_label, now=now,
                 data={"from": old, "to": piece.status, "version": piece.version,
                       "comment": comment, **extra})


def _approvers(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(
        User.active.is_(True), User.role.in_(("approver", "admin"))).order_by(User.id)))


def _piece_link(piece: ContentPiece) -> str:
    return f"/review/pieces/{piece.id}"


def _clean_comment(text: str | None, *, required: bool = False, field: str = "comment") -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    text = "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)
    if required and not text:
        raise ValidationError({field: [N_("Say what should change.")]})
    if len(text) > MAX_COMMENT:
        raise ValidationError({field: [N_("Use at most 5000 characters.")]})
    return text


# --- holds ----------------------------------------------------------------------------------

def already_done(session: Session, piece: ContentPiece, action: str, user: User) -> bool:
    """A form sent twice: the same person already did the same thing to this version (the
    last review event on the piece, comments aside, is exactly that)."""
    last = session.scalar(select(AuditEvent).where(
        AuditEvent.object_type == "piece", AuditEvent.object_id == piece.id,
        AuditEvent.action.like("piece.%"), AuditEvent.action != "piece.comment")
        .order_by(AuditEvent.id.desc()).limit(1))
    return (last is not None and last.action == f"piece.{action}"
            and last.actor_id == user.id and (last.data or {}).get("version") == piece.version)


def hold_posts(session: Session, piece: ContentPiece, reason: str, now: datetime,
               version: int | None = None) -> list[Post]:
    held = []
    for post in piece.posts:
        if post.status in HOLDABLE and post.hold is None:
            session.add(PostHold(post_id=post.id, reason=reason, version=version,
                                 held_at=now))
            held.append(post)
    session.flush()
    for post in held:
        session.refresh(post, ["hold"])
        audit.record(session, "post.held", "post", post.id, now=now,
                     data={"reason": reason, "piece_version": version})
    return held


def _channel_satisfied(post: Post, approvals: int) -> bool:
    return approvals >= (2 if post.channel.requires_two_approvals else 1)


def _release(session: Session, piece: ContentPiece, before: int, after: int,
             now: datetime) -> tuple[list[Post], list[Post]]:
    """After an approval: posts that just became claimable are released; those whose time
    has passed become `missed` for a person to decide (never sent late without a decision)."""
    released: list[Post] = []
    missed: list[Post] = []
    for post in piece.posts:
        if post.status not in HOLDABLE and post.hold is None:
            continue
        if not _channel_satisfied(post, after):
            continue
        was_free = before > 0 and _channel_satisfied(post, before) and post.hold is None
        if was_free:
            continue
        if post.hold is not None:
            session.delete(post.hold)
        if post_states.allowed(post.status, "approved_late") \
                and post.scheduled_at is not None and as_utc(post.scheduled_at) <= now:
            post_states.apply(post, "approved_late", now)
            post.last_error = MISSED_REASON
            missed.append(post)
            audit.record(session, "post.missed", "post", post.id, now=now,
                         data={"reason": "approved_after_due_time"})
        elif post.status in HOLDABLE:
            released.append(post)
            audit.record(session, "post.released", "post", post.id, now=now,
                         data={"piece_version": piece.version})
    session.flush()
    for post in released + missed:
        session.expire(post, ["hold"])
    return released, missed


def _void_approvals(session: Session, piece: ContentPiece, now: datetime) -> list[User]:
    voided = session.scalars(select(Approval).where(
        Approval.piece_id == piece.id, Approval.voided_at.is_(None))).all()
    users = []
    for approval in voided:
        approval.voided_at = now
        if approval.user is not None:
            users.append(approval.user)
    return users


def claimable_clause() -> ColumnElement[bool]:
    """SQL condition over Post (correlated): the post's piece is approved at its current
    version with enough distinct approvals for the post's channel, and the post is not held.
    The publishing engine adds it to its claim query."""
    approvals = (select(func.count(distinct(Approval.user_id)))
                 .where(Approval.piece_id == ContentPiece.id,
                        Approval.version == ContentPiece.version,
                        Approval.voided_at.is_(None))
                 .correlate(ContentPiece).scalar_subquery())
    needs_two = exists(select(Channel.id).where(
        Channel.id == Post.channel_id, Channel.requires_two_approvals.is_(True)
    ).correlate(Post))
    piece_ok = exists(
        select(ContentPiece.id).where(
            ContentPiece.id == Post.piece_id,
            ContentPiece.status == "approved",
            ContentPiece.approved_version == ContentPiece.version,
            or_(~needs_two, approvals >= 2),
        ).correlate(Post))
    not_held = ~exists(select(PostHold.post_id).where(PostHold.post_id == Post.id))
    return and_(piece_ok, not_held)


def is_claimable(session: Session, post: Post) -> bool:
    return bool(session.scalar(select(Post.id).where(Post.id == post.id, claimable_clause())))


# --- transitions ----------------------------------------------------------------------------

def submit(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
           comment: str = "", override_reason: str | None = None) -> list[Finding]:
    """Send a piece to review. Compliance errors block unless overridden with a reason.
    Returns the findings (warnings, and overridden errors)."""
    old = piece.status
    check_action(session, piece, "submit", actor)
    comment = _clean_comment(comment)
    findings = compliance.check_piece(session, piece)
    errors = compliance.errors_of(findings)
    override = (override_reason or "").strip()
    if errors:
        if not override:
            raise ComplianceBlocked(errors)
        if not compliance.may_override(session, actor):
            raise Forbidden(N_("Only an admin may submit despite compliance errors."),
                            code="override_not_allowed")
        if len(override) < 5:
            raise ValidationError({"override_reason": [N_(
                "Give a reason of at least 5 characters for the override.")]})
        audit.record(session, "piece.compliance_override", "piece", piece.id, actor=actor,
                     now=now, data={"version": piece.version, "reason": override[:1000],
                                    "findings": [f.code for f in errors],
                                    "terms": [f.params.get("term") for f in errors
                                              if f.params.get("term")]})
    piece.status = "in_review"
    piece.submitted_at = now
    piece.updated_at = now
    _record(session, piece, "submit", old, actor, now, comment)
    notify(session, [u for u in _approvers(session) if u.id != actor.id], "submitted",
           N_("%(actor)s submitted “%(title)s” (version %(version)s) for review."),
           {"actor": actor.name, "title": piece.title, "version": piece.version},
           _piece_link(piece))
    return findings


def withdraw(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
             comment: str = "") -> None:
    old = piece.status
    piece.status = check_action(session, piece, "withdraw", actor)
    piece.updated_at = now
    _record(session, piece, "withdraw", old, actor, now, _clean_comment(comment))


def approve(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
            version: int | None = None, comment: str = "") -> Approval:
    """Approve exactly `version` (refused when the piece changed since it was seen)."""
    _check_version(session, piece, version)
    target = check_action(session, piece, "approve", actor)
    comment = _clean_comment(comment)
    old = piece.status
    before = len({a.user_id for a in active_approvals(session, piece)}) if old == "approved" \
        else 0
    approval = Approval(piece_id=piece.id, version=piece.version, user_id=actor.id,
                        comment=comment, created_at=now)
    session.add(approval)
    piece.status = target
    piece.approved_version = piece.version
    piece.approved_at = now
    piece.updated_at = now
    session.flush()
    after = len({a.user_id for a in active_approvals(session, piece)})
    released, missed = _release(session, piece, before, after, now)
    _record(session, piece, "approve", old, actor, now, comment, approvals=after,
            needed=approvals_needed(piece), released=[p.id for p in released],
            missed=[p.id for p in missed])
    people = [piece.author] + [a.user for a in active_approvals(session, piece)
                               if a.user is not None]
    notify(session, [u for u in people if u.id != actor.id], "approved",
           N_("%(actor)s approved “%(title)s” (version %(version)s)."),
           {"actor": actor.name, "title": piece.title, "version": piece.version},
           _piece_link(piece))
    if after < approvals_needed(piece):
        notify(session, [u for u in _approvers(session) if u.id != actor.id
                         and u.id != piece.author_id], "submitted",
               N_("“%(title)s” needs a second approval for %(channels)s."),
               {"title": piece.title,
                "channels": ", ".join(c.name for c in two_approval_channels(piece))},
               _piece_link(piece))
    if missed:
        notify(session, [piece.author], "publish_failed",
               N_("%(count)s post(s) of “%(title)s” missed their time while waiting for "
                  "approval; choose a new time."),
               {"count": len(missed), "title": piece.title}, "/publishing/")
    return approval


def request_changes(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
                    comment: str, version: int | None = None) -> None:
    _check_version(session, piece, version)
    comment = _clean_comment(comment, required=True)
    old = piece.status
    piece.status = check_action(session, piece, "request_changes", actor)
    if old == "approved":
        hold_posts(session, piece, "approval_withdrawn", now, piece.version)
    _void_approvals(session, piece, now)
    piece.approved_version = None
    piece.updated_at = now
    session.add(Comment(piece_id=piece.id, author_id=actor.id, version=piece.version,
                        body=comment, created_at=now))
    _record(session, piece, "request_changes", old, actor, now, comment)
    notify(session, [u for u in [piece.author] if u.id != actor.id], "changes_requested",
           N_("%(actor)s requested changes on “%(title)s”: %(comment)s"),
           {"actor": actor.name, "title": piece.title, "comment": comment[:200]},
           _piece_link(piece))


def reopen(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
           comment: str = "") -> None:
    old = piece.status
    piece.status = check_action(session, piece, "reopen", actor)
    if old == "approved":
        hold_posts(session, piece, "approval_withdrawn", now, piece.version)
        approvers = _void_approvals(session, piece, now)
        notify(session, [u for u in approvers if u.id != actor.id], "approval_voided",
               N_("%(actor)s reopened “%(title)s”; your approval no longer counts and its "
                  "posts are on hold."), {"actor": actor.name, "title": piece.title},
               _piece_link(piece))
    piece.approved_version = None
    piece.updated_at = now
    _record(session, piece, "reopen", old, actor, now, _clean_comment(comment))


def content_changed(session: Session, piece: ContentPiece, actor: User | None,
                    now: datetime) -> None:
    """Called by services.content after a new version is saved (invariant 1): the approval of
    the old text no longer counts, scheduled posts are held, the approvers are told."""
    old = piece.status
    was_approved = old == "approved" or piece.approved_version is not None
    if was_approved:
        old_version = piece.approved_version
        hold_posts(session, piece, "content_changed", now, old_version)
        approvers = _void_approvals(session, piece, now)
        notify(session, [u for u in approvers if actor is None or u.id != actor.id],
               "approval_voided",
               N_("“%(title)s” was edited after you approved it (now version %(version)s); "
                  "its posts are on hold until it is approved again."),
               {"title": piece.title, "version": piece.version}, _piece_link(piece))
    else:
        _void_approvals(session, piece, now)
    piece.approved_version = None
    if old in ("approved", "in_review", "changes_requested"):
        piece.status = TRANSITIONS[(old, "edit")]
        _record(session, piece, "edit", old, actor, now)


# --- comments -------------------------------------------------------------------------------

_MENTION = re.compile(r"@([^\s@,，。:：;；!！?？()（）]+)")


def mentioned_users(session: Session, text: str) -> list[User]:
    """Users named with @name (their name, or the part of their e-mail before @)."""
    if "@" not in text:
        return []
    found = []
    for user in session.scalars(select(User).where(User.active.is_(True))):
        handles = {user.name, user.name.replace(" ", ""), user.email.split("@")[0]}
        if any(h and re.search(r"@" + re.escape(h) + r"(?![\w])", text) for h in handles):
            found.append(user)
    return found


def add_comment(session: Session, piece: ContentPiece, body: str, now: datetime, *,
                author: User | None = None, author_label: str | None = None,
                parent_id: int | None = None, nonce: str | None = None) -> Comment:
    """Add a comment; the same nonce twice (a double-sent form) returns the first one."""
    if nonce:
        nonce = str(nonce)[:64]
        existing = session.scalar(select(Comment).where(Comment.piece_id == piece.id,
                                                        Comment.nonce == nonce))
        if existing is not None:
            return existing
    text = _clean_comment(body, field="body")
    if not text:
        raise ValidationError({"body": [N_("Write a comment first.")]})
    parent = None
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.piece_id != piece.id:
            raise ValidationError({"parent_id": [N_("No such comment on this piece.")]})
    comment = Comment(piece_id=piece.id, parent_id=parent_id, author_id=author.id if author
                      else None, author_label=(author_label or "")[:100] or None,
                      version=piece.version, body=text, nonce=nonce, created_at=now)
    session.add(comment)
    session.flush()
    name = author.name if author else (author_label or "")
    audit.record(session, "piece.comment", "piece", piece.id, actor=author,
                 actor_label=None if author else name, now=now,
                 data={"comment_id": comment.id, "version": piece.version})
    mentioned = mentioned_users(session, text)
    link = f"{_piece_link(piece)}#comment-{comment.id}"
    notify(session, [u for u in mentioned if author is None or u.id != author.id], "mention",
           N_("%(actor)s mentioned you on “%(title)s”: %(comment)s"),
           {"actor": name, "title": piece.title, "comment": text[:200]}, link)
    others = [piece.author] + ([parent.author] if parent and parent.author else [])
    notify(session, [u for u in others if u not in mentioned
                     and (author is None or u.id != author.id)], "comment",
           N_("%(actor)s commented on “%(title)s”: %(comment)s"),
           {"actor": name, "title": piece.title, "comment": text[:200]}, link)
    return comment


def comment_html(comment: Comment) -> str:
    """Comments are plain text: escaped, then line breaks kept, then sanitised again."""
    from html import escape

    return sanitize_html(escape(comment.body).replace("\n", "<br>"))


@dataclass
class Thread:
    comment: Comment
    replies: list[Thread]


def comments_of(session: Session, piece: ContentPiece) -> list[Comment]:
    """A piece's comments, oldest first (replies after what they answer)."""
    return list(session.scalars(select(Comment).where(Comment.piece_id == piece.id)
                                .order_by(Comment.created_at, Comment.id)))


def comment_threads(session: Session, piece: ContentPiece) -> list[Thread]:
    rows = comments_of(session, piece)
    nodes = {c.id: Thread(c, []) for c in rows}
    roots: list[Thread] = []
    for c in rows:
        if c.parent_id in nodes:
            nodes[c.parent_id].replies.append(nodes[c.id])
        else:
            roots.append(nodes[c.id])
    return roots


# --- history, revisions ---------------------------------------------------------------------

def revision(session: Session, piece: ContentPiece, version: int) -> PieceRevision | None:
    if version == piece.version:
        rev = session.scalar(select(PieceRevision).where(
            PieceRevision.piece_id == piece.id, PieceRevision.version == version))
        if rev is None:  # the current text is always available, stored snapshot or not
            return PieceRevision(piece_id=piece.id, version=piece.version, title=piece.title,
                                 body=piece.body or "", summary=piece.summary or "",
                                 author_id=None)
        return rev
    return session.scalar(select(PieceRevision).where(
        PieceRevision.piece_id == piece.id, PieceRevision.version == version))


def versions(session: Session, piece: ContentPiece) -> list[int]:
    stored = set(session.scalars(select(PieceRevision.version).where(
        PieceRevision.piece_id == piece.id)))
    stored.add(piece.version)
    return sorted(stored)


def history(session: Session, piece: ContentPiece) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "piece", AuditEvent.object_id == piece.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(200)))


# --- queue ----------------------------------------------------------------------------------

@dataclass
class QueueItem:
    piece: ContentPiece
    waiting: timedelta
    next_time: datetime | None
    second_approval: bool


# Post states still ahead of publishing: a post already out (or cancelled) waits for nobody.
_NOT_DONE = tuple(s for s in POST_STATES if s not in ("cancelled", "published"))


def _two_approval_channels(session: Session) -> list[int]:
    return list(session.scalars(select(Channel.id).where(
        Channel.requires_two_approvals.is_(True))))


def _awaiting_second_approval(channel_ids: list[int]) -> ColumnElement[bool]:
    """Approved pieces that a two-approval channel still holds: a post there that is not
    cancelled or published, and fewer than two approvals of the current version.

    Starts from the posts of those channels (usually none), so the cost does not grow
    with the number of approved pieces: every piece ever published is approved.
    """
    approvals = (select(func.count(distinct(Approval.user_id)))
                 .where(Approval.piece_id == ContentPiece.id,
                        Approval.version == ContentPiece.version,
                        Approval.voided_at.is_(None)).scalar_subquery())
    held = select(Post.piece_id).where(Post.channel_id.in_(channel_ids),
                                       Post.status.in_(_NOT_DONE))
    return and_(ContentPiece.status == "approved", ContentPiece.id.in_(held), approvals < 2)


def _queue_condition(session: Session) -> ColumnElement[bool]:
    in_review = ContentPiece.status == "in_review"
    channel_ids = _two_approval_channels(session)
    return or_(in_review, _awaiting_second_approval(channel_ids)) if channel_ids else in_review


def _queue_pieces(session: Session) -> list[ContentPiece]:
    return list(session.scalars(
        select(ContentPiece).where(_queue_condition(session))
        .order_by(ContentPiece.submitted_at.asc().nulls_first(), ContentPiece.id)))


def review_queue(session: Session, now: datetime) -> list[QueueItem]:
    """Pieces waiting for an approver, oldest first."""
    items = []
    for piece in _queue_pieces(session):
        since = piece.submitted_at or piece.updated_at or now
        times = [as_utc(p.scheduled_at) for p in piece.posts
                 if p.scheduled_at is not None and p.status not in ("cancelled", "published")]
        items.append(QueueItem(piece, max(now - as_utc(since), timedelta(0)),
                               min(times) if times else None, piece.status == "approved"))
    return items


def queue_count(session: Session) -> int:
    """The navigation badge, on every page an approver opens: two index-driven counts (the
    two parts are disjoint: a piece is either in review or approved)."""
    count = select(func.count(ContentPiece.id))
    in_review = session.scalar(count.where(ContentPiece.status == "in_review")) or 0
    channel_ids = _two_approval_channels(session)
    if not channel_ids:
        return in_review
    return in_review + (session.scalar(count.where(_awaiting_second_approval(channel_ids)))
                        or 0)


# --- external reviewer links ----------------------------------------------------------------

LINK_SALT = "contentops.review-link"
MAX_LINK_DAYS = 30


def _serializer(secret_key: str):
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(secret_key, salt=LINK_SALT)


def create_link(session: Session, piece: ContentPiece, actor: User, now: datetime, *,
                secret_key: str, days: int = 7, note: str = "") -> tuple[ReviewLink, str]:
    """A signed link to the piece's current version; returns (row, token)."""
    if not actor.has_role("editor"):
        raise Forbidden(N_("Your role does not allow this."))
    if not isinstance(days, int) or not 1 <= days <= MAX_LINK_DAYS:
        raise ValidationError({"days": [N_("Choose between 1 and 30 days.")]})
    link = ReviewLink(piece_id=piece.id, version=piece.version, nonce=secrets.token_hex(16),
                      note=(note or "").strip()[:200], created_by_id=actor.id, created_at=now,
                      expires_at=now + timedelta(days=days))
    session.add(link)
    session.flush()
    audit.record(session, "piece.link_created", "piece", piece.id, actor=actor, now=now,
                 data={"link_id": link.id, "version": piece.version, "days": days})
    return link, link_token(link, secret_key)


def link_token(link: ReviewLink, secret_key: str) -> str:
    return _serializer(secret_key).dumps({"l": link.id, "n": link.nonce})


class LinkProblem(DomainError):
    code = "link_invalid"
    status = 404


def resolve_link(session: Session, token: str, now: datetime, *, secret_key: str
                 ) -> ReviewLink:
    """The link for a token, or LinkProblem with a message a visitor understands."""
    from itsdangerous import BadSignature

    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        raise LinkProblem(N_("This review link is not valid. Check that you copied all of "
                             "it, or ask for a new one.")) from None
    link = session.get(ReviewLink, data.get("l")) if isinstance(data, dict) else None
    if link is None or link.nonce != data.get("n"):
        raise LinkProblem(N_("This review link is not valid. Check that you copied all of "
                             "it, or ask for a new one."))
    if link.revoked_at is not None:
        raise LinkProblem(N_("This review link was withdrawn. Ask the sender for a new one."),
                          code="link_revoked")
    if as_utc(link.expires_at) <= now:
        raise LinkProblem(N_("This review link expired. Ask the sender for a new one."),
                          code="link_expired")
    return link


def revoke_link(session: Session, link: ReviewLink, actor: User, now: datetime) -> None:
    if link.revoked_at is None:
        link.revoked_at = now
        audit.record(session, "piece.link_revoked", "piece", link.piece_id, actor=actor,
                     now=now, data={"link_id": link.id})


def links_for(session: Session, piece: ContentPiece) -> list[ReviewLink]:
    return list(session.scalars(select(ReviewLink).where(ReviewLink.piece_id == piece.id)
                                .order_by(ReviewLink.created_at.desc())))


def external_decision(session: Session, link: ReviewLink, decision: str, name: str,
                      comment: str, now: datetime) -> None:
    """Record a visitor's one decision. Their approval is recorded for the team to see; it
    does not by itself release posts (invariant 1 needs an approver). Their request for
    changes sends a piece in review back to its author."""
    if decision not in ("approved", "changes_requested"):
        raise ValidationError({"decision": [N_("Choose one of the options.")]})
    name = " ".join((name or "").split())[:100]
    if not name:
        raise ValidationError({"name": [N_("Tell us your name.")]})
    comment = _clean_comment(comment, required=decision == "changes_requested")
    if link.decision is not None:
        raise DomainError(N_("A decision was already recorded with this link."),
                          code="already_decided")
    piece = link.piece
    if piece.version != link.version:
        raise DomainError(N_("The piece changed after this link was made; ask the sender for "
                             "a link to the new version."), code="stale_version")
    link.decision = decision
    link.decided_at = now
    link.reviewer_name = name
    old = piece.status
    if decision == "changes_requested" and old == "in_review":
        piece.status = TRANSITIONS[(old, "request_changes")]
        piece.updated_at = now
    if comment:
        session.add(Comment(piece_id=piece.id, author_label=name, version=piece.version,
                            body=comment, created_at=now))
    audit.record(session, f"piece.external_{decision}", "piece", piece.id,
                 actor_label=name, now=now,
                 data={"from": old, "to": piece.status, "version": piece.version,
                       "comment": comment, "link_id": link.id})
    people = [piece.author] + ([link.created_by] if link.created_by else [])
    if decision == "approved":
        notify(session, people, "approved",
               N_("%(name)s (external reviewer) approved “%(title)s” (version %(version)s)."),
               {"name": name, "title": piece.title, "version": piece.version},
               _piece_link(piece))
    else:
        notify(session, people, "changes_requested",
               N_("%(name)s (external reviewer) requested changes on “%(title)s”: "
                  "%(comment)s"), {"name": name, "title": piece.title,
                                   "comment": comment[:200]}, _piece_link(piece))


def get_piece(session: Session, piece_id: int) -> ContentPiece:
    piece = session.get(ContentPiece, piece_id)
    if piece is None:
        raise NotFound(N_("No such piece."))
    return piece

