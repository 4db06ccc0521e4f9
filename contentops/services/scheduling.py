"""Putting posts on the timeline: schedule and move. Publishing itself is services.publishing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..errors import N_, DomainError, ValidationError
from ..models import Post, User
from ..timeutil import as_utc, isoformat
from . import audit, quotas

# States from which a post may be (re)scheduled.
SCHEDULABLE = {"unscheduled", "scheduled", "retrying", "failed", "missed", "cancelled"}


def schedule_post(session: Session, post: Post, when: datetime, *, actor: User | None,
                  now: datetime, tz: str | None = None) -> list:
    """Put a post at `when` (aware). Returns warnings; raises on refusal. Approval is kept:
    the content did not change. `tz` is the team time zone (quota days of channels without
    a zone of their own)."""
    when = as_utc(when)
    if post.status not in SCHEDULABLE:
        raise DomainError(N_("A post that is %(status)s cannot be moved."),
                          {"status": post.status}, code="invalid_state")
    if when < now:
        raise ValidationError({"scheduled_at": [N_("Choose a time in the future.")]})
    findings = quotas.check_schedule(session, post, when, tz=tz)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise ValidationError({"scheduled_at": [f.message for f in errors]},
                              message=errors[0].message, params=dict(errors[0].params))
    old = post.scheduled_at
    post.scheduled_at = when
    post.status = "scheduled"
    post.next_attempt_at = None
    post.updated_at = now
    audit.record(session, "post.scheduled", "post", post.id, actor=actor, now=now,
                 data={"from": isoformat(old), "to": isoformat(when)})
    return [f for f in findings if f.severity != "error"]
