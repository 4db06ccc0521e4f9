"""What people do to posts — on the Publishing page, the calendar and through the API:
schedule / move, publish now, retry, cancel, unschedule, mark as published.

Which states each action accepts, the state it leads to and the fields it clears are one table,
`contentops.post_states`; the functions here add the checks (approval, quotas, a valid URL) and
the values that come from their arguments, and write the audit event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ... import post_states
from ...errors import N_, DomainError, ValidationError
from ...models import Post, PublishAttempt, User
from ...reasons import encode_reason
from ...timeutil import as_utc, isoformat
from .. import audit
from . import groups, quotas

# States from which a post may be (re)scheduled (the calendar greys out the others).
SCHEDULABLE = set(post_states.sources("schedule"))


def _time_label(post: Post, when: datetime, tz: str | None) -> str:
    zone = quotas.channel_zone(post.channel, tz)
    return f"{as_utc(when).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def schedule_post(session: Session, post: Post, when: datetime, *, actor: User | None,
                  now: datetime, tz: str | None = None, alone: bool = False) -> list:
    """Put a post at `when` (aware). Returns warnings; raises on refusal. Approval is kept:
    the content did not change. `tz` is the team time zone (quota days of channels without
    a zone of their own). A post in a multi-article send moves with the whole send unless
    `alone`; at the time of another post of its channel it joins that send (groups.py)."""
    when = as_utc(when)
    post_states.check(post, "schedule")
    if when < now:
        raise ValidationError({"scheduled_at": [N_("Choose a time in the future.")]})
    groups.refuse_too_many(session, post, when, tz_label=_time_label(post, when, tz),
                           alone=alone)
    findings = quotas.check_schedule(session, post, when, tz=tz)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        refusal = ValidationError({"scheduled_at": [f.message for f in errors]},
                                  message=errors[0].message, params=dict(errors[0].params))
        if errors[0].code in quotas.REFUSAL_CODES:
            refusal.code = errors[0].code  # a code clients can act on (pick another day)
        raise refusal
    old = post.scheduled_at
    along = groups.place(session, post, when, tz_label=_time_label(post, when, tz),
                         alone=alone)
    for p in (post, *along):
        post_states.apply(p, "schedule", now)
        p.scheduled_at = when
    audit.record(session, "post.scheduled", "post", post.id, actor=actor, now=now,
                 data={"from": isoformat(old), "to": isoformat(when),
                       **({"with": [p.id for p in along]} if along else {})})
    return [f for f in findings if f.severity != "error"]


def _require_approved(post: Post) -> None:
    if not post.piece.is_approved_as_is:
        raise DomainError(N_("Approve the current version of the content first."),
                          code="not_approved")


def _send_of(session: Session, post: Post, action: str) -> list[Post]:
    """The post and the other members of its multi-article send that take the action with it
    (they go out as one message, so they are sent again or now together). Every one of them
    must be approved as is: refused, naming the first that is not, otherwise."""
    send = [p for p in groups.group_of(session, post)
            if p is post or (p.status, action) in post_states.TRANSITIONS]
    for p in send:
        if p is not post and not p.piece.is_approved_as_is:
            raise DomainError(N_("“%(title)s”, sent in the same message, is not approved in "
                                 "its current version; approve it first."),
                              {"title": p.title}, code="not_approved")
    return send


def publish_now(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    """Send as soon as a scheduler picks it up (within about a second); the other articles
    of its send go with it."""
    post_states.check(post, "publish_now")
    _require_approved(post)
    old = post.scheduled_at
    for p in _send_of(session, post, "publish_now"):
        post_states.apply(p, "publish_now", now)
        p.scheduled_at = now
    audit.record(session, "post.publish_now", "post", post.id, actor=actor, now=now,
                 data={"from": isoformat(old)})
    return post


def retry_post(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    """Failed, missed or unknown → try again now, with a fresh retry budget."""
    post_states.check(post, "retry")
    _require_approved(post)
    send = _send_of(session, post, "retry")
    old = post.status
    for p in send:
        post_states.apply(p, "retry", now)
        p.next_attempt_at = now
    audit.record(session, "post.retry", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def cancel_post(session: Session, post: Post, *, actor: User | None, now: datetime) -> Post:
    post_states.check(post, "cancel")
    groups.leave(session, post)  # the rest of its send still goes out
    old = post_states.apply(post, "cancel", now)
    audit.record(session, "post.cancelled", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def unschedule_post(session: Session, post: Post, *, actor: User | None, now: datetime
                    ) -> Post:
    post_states.check(post, "unschedule")
    groups.leave(session, post)
    old = post_states.apply(post, "unschedule", now)
    audit.record(session, "post.unscheduled", "post", post.id, actor=actor, now=now,
                 data={"from": old})
    return post


def mark_published(session: Session, post: Post, *, url: str | None, actor: User | None,
                   now: datetime) -> Post:
    """A person confirms it went out (manual channels, or an `unknown` post they checked)."""
    post_states.check(post, "mark_published")
    url = (url or "").strip() or None
    if url is not None and (len(url) > 1000 or not url.lower().startswith(("http://",
                                                                           "https://"))):
        raise ValidationError({"url": [N_("Enter a full URL starting with http:// or "
                                          "https://.")]})
    old = post_states.apply(post, "mark_published", now)
    post.published_at = now
    post.external_url = url or post.external_url
    post.published_version = post.published_version or post.piece.version
    session.add(PublishAttempt(post_id=post.id, started_at=now, duration_ms=0,
                               outcome="reconciled", node=None,
                               error=encode_reason(N_("Confirmed by %(name)s."),
                                                   {"name": actor.name if actor else "?"})))
    audit.record(session, "post.marked_published", "post", post.id, actor=actor, now=now,
                 data={"from": old, "url": url})
    return post


def reschedule(session: Session, post: Post, when: datetime, *, actor: User | None,
               now: datetime, tz: str | None = None, alone: bool = False) -> list:
    """Move to a new time (quotas, conflicts checked by schedule_post; `tz` the team's)."""
    return schedule_post(session, post, when, actor=actor, now=now, tz=tz, alone=alone)
