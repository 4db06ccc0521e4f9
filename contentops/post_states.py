"""The post state machine for what people (and the review workflow) do to a post: one table of
from-states → action → to-state, with the fields each action clears and the ones it sets.

The engine's own moves (claim → publishing → published/retrying/failed, the reaper's
`unknown`, hand-off tracking) are the engine's business and live in
`services/publishing/`; this table is for the actions a person starts — publish now, retry,
cancel, unschedule, mark as published, schedule — and for the review release that marks a
post `missed` when its approval came after its time.

It lives here, beside `reasons.py` and not inside `services/publishing/`, for the same
reason: the publishing engine imports the review workflow (its claim condition) and the
review workflow needs this table, so the table must be a leaf both can import without a
circle. `services/publishing/actions.py` is its main user.

Every (state, action) pair is either a source of the action or explicitly refused;
tests/test_post_states.py checks that the table is complete and that each action function
has exactly the effect written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import N_, DomainError


@dataclass(frozen=True)
class PostTransition:
    action: str
    sources: tuple[str, ...]
    # Written out rather than derived, so adding a state forces a decision for every action.
    refused: tuple[str, ...]
    to: str
    clears: tuple[str, ...] = ()
    # Fields given a fixed value (attempt_count → 0 on retry).
    resets: tuple[tuple[str, Any], ...] = ()
    # Fields the action function fills from its arguments (a time, a URL, a reason).
    sets: tuple[str, ...] = ()
    refusal: str = N_("A post that is %(status)s cannot do that.")


_TABLE: tuple[PostTransition, ...] = (
    PostTransition(
        "schedule",
        sources=("unscheduled", "scheduled", "retrying", "failed", "missed", "cancelled"),
        refused=("publishing", "published", "unknown", "awaiting_staff"),
        # last_error: a person chose the time, so an earlier reason (e.g. the engine's
        # "mass-send quota used up; moved to …") no longer applies.
        to="scheduled", clears=("next_attempt_at", "last_error"), sets=("scheduled_at",),
        refusal=N_("A post that is %(status)s cannot be moved.")),
    PostTransition(
        "publish_now",
        sources=("unscheduled", "scheduled", "missed", "failed", "cancelled"),
        refused=("publishing", "published", "retrying", "unknown", "awaiting_staff"),
        to="scheduled", clears=("next_attempt_at", "last_error"), sets=("scheduled_at",)),
    PostTransition(
        # A fresh retry budget: the attempts that failed do not count against the new try.
        "retry",
        sources=("failed", "missed", "unknown"),
        refused=("unscheduled", "scheduled", "publishing", "published", "retrying",
                 "awaiting_staff", "cancelled"),
        to="retrying", clears=("claim_token", "last_error"), resets=(("attempt_count", 0),),
        sets=("next_attempt_at",)),
    PostTransition(
        # `publishing` is refused: a send is under way and its outcome will be recorded.
        "cancel",
        sources=("unscheduled", "scheduled", "retrying", "failed", "unknown",
                 "awaiting_staff", "missed"),
        refused=("publishing", "published", "cancelled"),
        to="cancelled", clears=("next_attempt_at", "claim_token")),
    PostTransition(
        "unschedule",
        sources=("scheduled", "retrying", "missed", "failed", "cancelled"),
        refused=("unscheduled", "publishing", "published", "unknown", "awaiting_staff"),
        to="unscheduled", clears=("scheduled_at", "next_attempt_at")),
    PostTransition(
        # A person confirms it went out: manual channels, or a post in doubt they checked.
        "mark_published",
        sources=("unknown", "awaiting_staff", "missed", "failed"),
        refused=("unscheduled", "scheduled", "publishing", "published", "retrying",
                 "cancelled"),
        to="published", clears=("claim_token", "next_attempt_at", "last_error"),
        sets=("published_at", "published_version")),
    PostTransition(
        # Review release: the approval came after the post's time. Never sent late without a
        # person deciding; a `retrying` post is simply released (its time is "now" anyway).
        "approved_late",
        sources=("scheduled",),
        refused=("unscheduled", "publishing", "published", "retrying", "failed", "unknown",
                 "awaiting_staff", "missed", "cancelled"),
        to="missed", clears=("next_attempt_at",), sets=("last_error",)),
)

POST_ACTIONS: tuple[str, ...] = tuple(t.action for t in _TABLE)
BY_ACTION: dict[str, PostTransition] = {t.action: t for t in _TABLE}
# (state, action) -> next state, the same shape as review.TRANSITIONS. Anything not listed
# is refused (and listed in REFUSED).
TRANSITIONS: dict[tuple[str, str], str] = {
    (state, t.action): t.to for t in _TABLE for state in t.sources}
REFUSED: frozenset[tuple[str, str]] = frozenset(
    (state, t.action) for t in _TABLE for state in t.refused)


class InvalidPostState(DomainError):
    code = "invalid_state"

    def __init__(self, action: str, status: str) -> None:
        super().__init__(BY_ACTION[action].refusal, {"status": status})
        self.action = action
        self.status_name = status


def allowed(status: str, action: str) -> bool:
    return (status, action) in TRANSITIONS


def sources(action: str) -> frozenset[str]:
    return frozenset(BY_ACTION[action].sources)


def check(post: Any, action: str) -> PostTransition:
    """The transition for `action` from the post's state; raises InvalidPostState."""
    if (post.status, action) not in TRANSITIONS:
        raise InvalidPostState(action, post.status)
    return BY_ACTION[action]


def apply(post: Any, action: str, now: datetime) -> str:
    """Move the post: status, cleared and reset fields, updated_at. Returns the old state.
    The caller fills the action's `sets` fields and writes the audit event."""
    transition = check(post, action)
    old = post.status
    post.status = transition.to
    for name in transition.clears:
        setattr(post, name, None)
    for name, value in transition.resets:
        setattr(post, name, value)
    post.updated_at = now
    return old

