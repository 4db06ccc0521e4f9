"""Posts handed to staff, N of M: what the progress card shows, reminding those who have not
sent, the manual channel's per-assignee confirm links, and the deadline notices.

The progress of a staff post (Post.progress) is the adapter's:
  {"confirmed", "total", "deadline", "reached"?, "not_friend"?, "already_received"?,
   "staff": [{"id", "status": pending|sent|invalid, "sent_at"?, "reached"?, "reminded"?}]}
where `id` is a WeCom userid (wecom_customer) or an e-mail address (manual), `sent_at` ISO
8601 and `reminded` the epoch seconds of reminders. `handoff.staff_values` copies the totals
into plain columns for the post list and analytics.

Deadline rule, the same for both kinds: when the deadline passes, the post counts as published
if at least one of the staff sent it (the others are named to the editor and reminded), else
it is missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ...config import DEFAULT_TIMEZONE
from ...errors import N_, DomainError, NotFound
from ...models import Post, PublishAttempt, User
from ...reasons import encode_reason
from ...timeutil import as_utc
from .. import audit, notifications
from .notices import people_to_tell

STAFF_KINDS: tuple[str, ...] = ("manual", "wecom_customer")
# remind_groupmsg_send: "24小时内每个群发最多触发三次提醒" (WeCom doc 97610). The manual
# channel's reminders (e-mails) keep the same pace so nobody is flooded.
REMINDERS_PER_DAY = 3
DAY_S = 24 * 3600


# --- reading the progress -------------------------------------------------------------------

def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recent_reminders(entry: Mapping[str, Any], now: datetime) -> list[float]:
    """Reminders of one sender in the 24 hours before `now` (epoch seconds)."""
    cutoff = now.timestamp() - DAY_S
    out = []
    for stamp in entry.get("reminded") or []:
        try:
            if float(stamp) > cutoff:
                out.append(float(stamp))
        except (TypeError, ValueError):
            continue
    return out


@dataclass
class SenderRow:
    id: str
    name: str
    status: str  # pending | sent | invalid
    sent_at: datetime | None
    reached: int | None
    reminders: int  # in the last 24 hours
    reminded_at: datetime | None


@dataclass
class StaffCard:
    kind: str
    confirmed: int
    total: int
    reached: int
    not_friend: int
    already_received: int
    failed: int
    deadline: datetime | None
    past_deadline: bool
    rows: list[SenderRow] = field(default_factory=list)
    missing: list[SenderRow] = field(default_factory=list)
    can_remind: bool = False
    # msgid saying why reminding is not possible now (None when it is, or nothing to remind).
    remind_note: str | None = None
    reminders_per_day: int = REMINDERS_PER_DAY


def is_moment(post: Post) -> bool:
    return post.channel.kind == "wecom_customer" and (post.channel.config or {}).get(
        "kind") == "moment"


def _names(session: Session, ids: Sequence[str]) -> dict[str, str]:
    emails = [i.lower() for i in ids if "@" in i]
    if not emails:
        return {}
    return {u.email.lower(): u.name for u in session.scalars(
        select(User).where(func.lower(User.email).in_(emails)))}


def staff_card(session: Session, post: Post, *, now: datetime) -> StaffCard | None:
    """What the post's progress card shows; None for posts not handed to staff."""
    progress = post.progress if isinstance(post.progress, Mapping) else None
    if progress is None or not isinstance(progress.get("staff"), list):
        return None
    entries = [s for s in progress["staff"] if isinstance(s, Mapping) and s.get("id")]
    names = _names(session, [str(s["id"]) for s in entries])
    rows = []
    for s in entries:
        recent = recent_reminders(s, now)
        last = max((float(t) for t in s.get("reminded") or [] if _number(t)), default=None)
        rows.append(SenderRow(
            id=str(s["id"]), name=names.get(str(s["id"]).lower(), ""),
            status=str(s.get("status") or "pending"), sent_at=_when(s.get("sent_at")),
            reached=int(s["reached"]) if _number(s.get("reached")) else None,
            reminders=len(recent),
            reminded_at=datetime.fromtimestamp(last, UTC) if last is not None else None))
    deadline = _when(progress.get("deadline"))
    if deadline is None and post.status == "awaiting_staff":
        deadline = post.next_attempt_at
    past = post.status != "awaiting_staff" or (deadline is not None and deadline <= now)
    card = StaffCard(
        kind=post.channel.kind,
        confirmed=sum(1 for r in rows if r.status == "sent"),
        total=sum(1 for r in rows if r.status != "invalid"),
        reached=_int(progress.get("reached")), not_friend=_int(progress.get("not_friend")),
        already_received=_int(progress.get("already_received")),
        failed=_int(progress.get("failed")), deadline=as_utc(deadline) if deadline else None,
        past_deadline=past, rows=rows)
    if past and deadline is not None:
        card.missing = [r for r in rows if r.status == "pending"]
    pending = [r for r in rows if r.status == "pending"]
    if post.status != "awaiting_staff" or not pending:
        return card
    if is_moment(post):
        card.remind_note = N_("WeCom has no reminder for 朋友圈 tasks; ask the senders "
                              "directly.")
    elif all(r.reminders >= REMINDERS_PER_DAY for r in pending):
        card.remind_note = N_("Everyone who has not sent was reminded %(n)s times in the last "
                              "24 hours, the most WeCom allows.")
    else:
        card.can_remind = True
    return card


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any) -> int:
    return int(value) if _number(value) else 0


# --- per-assignee confirm links (manual channel) --------------------------------------------

def link_key(signing_key: bytes) -> bytes:
    """The key confirm links are signed with, derived from the instance's signing key (the
    e-mail tracking key adapters are given), so no second secret needs configuring."""
    import hashlib
    import hmac

    return hmac.new(signing_key, b"contentops-staff-confirm", hashlib.sha256).digest()


def _serializer(key: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt="staff-confirm")


def confirm_token(key: bytes, post_id: int, assignee: str) -> str:
    """A link token naming the post and the assignee, signed (HMAC-SHA1 via itsdangerous) so
    nobody can confirm for someone else or for another post."""
    return _serializer(key).dumps([int(post_id), assignee.lower()])


def confirm_path(key: bytes, post_id: int, assignee: str) -> str:
    return f"/publishing/posts/{post_id}/confirm/{confirm_token(key, post_id, assignee)}"


def read_token(key: bytes, post_id: int, token: str) -> str | None:
    """The assignee a token was made for, when it is ours and for this post; else None."""
    try:
        data = _serializer(key).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, list) or len(data) != 2 or data[0] != post_id:
        return None
    return str(data[1])


@dataclass
class Confirmation:
    post: Post
    assignee: str
    already: bool  # this person had confirmed before (the link is idempotent)
    published: bool  # this confirmation made the post published


def _entry_of(post: Post | None, assignee: str | None) -> dict[str, Any]:
    """The assignee's entry in the post's progress; NotFound for a link that is not valid."""
    staff = (post.progress or {}).get("staff") if post is not None and isinstance(
        post.progress, Mapping) else None
    entry = next((s for s in staff or [] if isinstance(s, Mapping)
                  and str(s.get("id", "")).lower() == assignee), None) if assignee else None
    if entry is None:
        raise NotFound(N_("This confirmation link is not valid."))
    return dict(entry)


def confirmation_state(session: Session, post_id: int, token: str, *, key: bytes
                       ) -> Confirmation:
    """What a confirm link shows before anyone presses the button (nothing changes):
    NotFound unless the link is valid for this post."""
    post = session.get(Post, post_id)
    assignee = read_token(key, post_id, token) if post is not None else None
    entry = _entry_of(post, assignee)
    return Confirmation(post, str(assignee), entry.get("status") == "sent", False)


def copy_text(post: Post) -> str:
    """The text a person posts by hand (the manual channel's rendering)."""
    from ...channels.registry import adapter_class
    from .claim import outgoing_for

    return adapter_class("manual")({}).render(outgoing_for(post))


def confirm_assignee(session: Session, post_id: int, token: str, *, key: bytes,
                     now: datetime) -> Confirmation:
    """An assignee confirms with their link: counted once; the post is published when all
    have confirmed (a late confirmation of a missed post publishes it too: it went out)."""
    # Take the row's write lock before reading its progress, so two assignees confirming at
    # the same moment are both counted (a read-modify-write of the JSON would lose one).
    session.execute(update(Post).where(Post.id == post_id).values(updated_at=Post.updated_at)
                    .execution_options(synchronize_session=False))
    post = session.get(Post, post_id, populate_existing=True)
    assignee = read_token(key, post_id, token) if post is not None else None
    _entry_of(post, assignee)
    progress = dict(post.progress)
    staff = [dict(s) for s in progress.get("staff") or []]
    entry = next(s for s in staff if str(s.get("id", "")).lower() == assignee)
    if entry.get("status") == "sent":
        return Confirmation(post, assignee, True, False)
    if post.status not in ("awaiting_staff", "published", "missed"):
        raise DomainError(N_("This post no longer waits for confirmations (it is "
                             "%(status)s)."), {"status": post.status}, code="not_waiting")
    entry.update(status="sent", sent_at=now.isoformat())
    progress["staff"] = staff
    progress["confirmed"] = sum(1 for s in staff if s.get("status") == "sent")
    progress["total"] = sum(1 for s in staff if s.get("status") != "invalid")
    from .handoff import staff_values

    post.progress = progress
    for column, value in staff_values(progress).items():
        setattr(post, column, value)
    publish = (post.status == "awaiting_staff" and progress["confirmed"] >= progress["total"]
               ) or post.status == "missed"
    if publish:
        post.status = "published"
        post.published_at = now
        post.next_attempt_at = None
        post.last_error = None
        post.published_version = post.published_version or post.piece.version
    session.add(PublishAttempt(post_id=post.id, started_at=now, duration_ms=0,
                               outcome="reconciled", node=None,
                               error=encode_reason(N_("Confirmed by %(name)s."),
                                                   {"name": assignee})))
    audit.record(session, "post.staff_confirmed", "post", post.id, actor=None,
                 actor_label=assignee, now=now, data={"assignee": assignee})
    return Confirmation(post, assignee, False, publish)


# --- telling people -------------------------------------------------------------------------

def _deadline_text(deadline: datetime | None, tz: str) -> str:
    if deadline is None:
        return "—"
    zone = ZoneInfo(tz or DEFAULT_TIMEZONE)
    return f"{as_utc(deadline).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def _users_by_email(session: Session, emails: Sequence[str]) -> dict[str, User]:
    wanted = [e.lower() for e in emails]
    if not wanted:
        return {}
    return {u.email.lower(): u for u in session.scalars(select(User).where(
        func.lower(User.email).in_(wanted), User.active.is_(True)))}


def tell_assignees(session: Session, post: Post, assignees: Sequence[str], message: str,
                   params: Mapping[str, Any], *, signing_key: bytes | None) -> None:
    """Each assignee gets their own confirm link: in-app and by e-mail when they have an
    account here, else by e-mail alone."""
    users = _users_by_email(session, assignees)
    key = link_key(signing_key) if signing_key else None
    for email in assignees:
        link = (confirm_path(key, post.id, email) if key is not None
                else f"/publishing/posts/{post.id}")
        user = users.get(email.lower())
        if user is not None:
            notifications.notify(session, [user], "assigned", message, params, link=link)
        else:
            notifications.mail_address(session, email, message, params, link)


def notify_handed(session: Session, post_id: int, *, signing_key: bytes | None,
                  tz: str = DEFAULT_TIMEZONE) -> None:
    """Right after the hand-off: manual assignees get the task with their confirm link; for
    other staff channels (WeCom tells its senders itself) the editor hears who has it until
    when."""
    post = session.get(Post, post_id)
    if post is None:
        return
    session.refresh(post)  # the completion wrote it through the connection
    progress = post.progress if isinstance(post.progress, Mapping) else {}
    staff = [str(s.get("id")) for s in progress.get("staff") or [] if s.get("id")]
    deadline = _when(progress.get("deadline")) or post.next_attempt_at
    params = {"title": post.title, "channel": post.channel.name, "post_id": post.id,
              "deadline": _deadline_text(deadline, tz), "n": len(staff)}
    if post.channel.kind == "manual":
        tell_assignees(session, post, staff,
                       N_("Please post “%(title)s” on %(channel)s by hand by %(deadline)s, "
                          "then confirm with your link."), params, signing_key=signing_key)
        return
    message = (N_("“%(title)s” was handed to %(n)s senders on %(channel)s; they have until "
                  "%(deadline)s to send it.") if staff else
               N_("“%(title)s” on %(channel)s waits for someone to confirm it on the "
                  "platform by %(deadline)s."))
    notifications.notify(session, people_to_tell(session, post.piece), "assigned", message,
                         params, link=f"/publishing/posts/{post.id}")


def notify_deadline(session: Session, post_id: int, *, signing_key: bytes | None = None
                    ) -> list[str]:
    """The deadline passed: the editor hears who did not send (when the post still counts as
    published; a missed post's reason names them already), manual assignees who did not
    confirm are told. Returns who did not send."""
    post = session.get(Post, post_id)
    if post is None:
        return []
    session.refresh(post)
    if not isinstance(post.progress, Mapping):
        return []
    staff = [s for s in post.progress.get("staff") or [] if isinstance(s, Mapping)]
    missing = [str(s["id"]) for s in staff if s.get("status") == "pending" and s.get("id")]
    if not missing:
        return []
    names = _names(session, missing)
    shown = ", ".join(names.get(m.lower()) or m for m in missing)
    params = {"title": post.title, "channel": post.channel.name, "post_id": post.id,
              "missing": len(missing), "total": len([s for s in staff
                                                      if s.get("status") != "invalid"]),
              "names": shown}
    if post.status == "published":
        notifications.notify(
            session, people_to_tell(session, post.piece), "publish_failed",
            N_("The deadline for “%(title)s” on %(channel)s passed: %(missing)s of %(total)s "
               "did not send it (%(names)s). It counts as published."), params,
            link=f"/publishing/posts/{post.id}")
    if post.channel.kind == "manual":
        tell_assignees(session, post, missing,
                       N_("The deadline for “%(title)s” on %(channel)s has passed and you "
                          "have not confirmed posting it. If you did, confirm with your "
                          "link."), params, signing_key=signing_key)
    return missing


def missing_reason(progress: Mapping[str, Any] | None) -> str:
    """The reason of a staff post nobody sent by its deadline, naming who had it."""
    staff = [s for s in (progress or {}).get("staff") or [] if isinstance(s, Mapping)]
    pending = [str(s["id"]) for s in staff if s.get("status") == "pending" and s.get("id")]
    if not pending:
        return encode_reason(N_("Nobody confirmed posting it by the deadline."))
    return encode_reason(N_("Nobody confirmed posting it by the deadline (%(pending)s)."),
                         {"pending": ", ".join(pending)})


# --- reminding ------------------------------------------------------------------------------

def remind_pending(session: Session, post: Post, adapter: Any, *, now: datetime,
                   actor: User | None) -> list[str]:
    """Remind the staff who have not sent: WeCom's own reminder (客户群发; at most three per
    broadcast in 24 hours), or the manual assignee's notification again. Returns who was
    reminded; refuses with a readable reason when nobody can be."""
    if post.status != "awaiting_staff" or not isinstance(post.progress, Mapping):
        raise DomainError(N_("Only posts waiting for staff can be reminded."),
                          code="not_waiting")
    if is_moment(post):
        raise DomainError(N_("WeCom has no reminder for 朋友圈 tasks; ask the senders "
                             "directly."), code="no_reminder")
    progress = dict(post.progress)
    staff = [dict(s) for s in progress.get("staff") or []]
    pending = [s for s in staff if s.get("status") == "pending"]
    if not pending:
        raise DomainError(N_("Everyone has sent it already."), code="nobody_pending")
    due = [s for s in pending if len(recent_reminders(s, now)) < REMINDERS_PER_DAY]
    if not due:
        raise DomainError(N_("Everyone who has not sent was reminded %(n)s times in the last "
                             "24 hours, the most WeCom allows."), {"n": REMINDERS_PER_DAY},
                          code="reminder_limit")
    before = {str(s["id"]): len(s.get("reminded") or []) for s in staff}
    if post.channel.kind == "manual":
        stamp = now.timestamp()
        for s in due:
            s["reminded"] = [*recent_reminders(s, now), stamp]
        progress["staff"] = staff
        tell_assignees(session, post, [str(s["id"]) for s in due],
                       N_("Reminder: please post “%(title)s” on %(channel)s by hand, then "
                          "confirm with your link."),
                       {"title": post.title, "channel": post.channel.name, "post_id": post.id},
                       signing_key=getattr(adapter, "signing_key", None))
        new = progress
    else:
        # The tracker may be writing this post's progress at the same moment; WeCom keeps
        # its own count, so a reminder lost from ours is refused there, never sent a 4th time.
        new = dict(adapter.remind(progress))
    reminded = [str(s["id"]) for s in new.get("staff") or []
                if len(s.get("reminded") or []) > before.get(str(s.get("id")), 0)]
    if not reminded:
        raise DomainError(N_("WeCom did not accept the reminder; try again later."),
                          code="reminder_refused")
    post.progress = new
    post.updated_at = now
    audit.record(session, "post.staff_reminded", "post", post.id, actor=actor, now=now,
                 data={"reminded": reminded})
    return reminded
