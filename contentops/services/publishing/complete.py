"""Send and complete: call the adapter outside any transaction, then record the outcome
fenced by the claim token (UPDATE … WHERE id = ? AND claim_token = ?; zero rows = lease lost),
with the retry policy deciding when a transient failure comes back.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, text, update
from sqlalchemy.orm import Session

from ...channels.base import (
    InDoubt,
    PermanentError,
    PublishResult,
    QuotaExhausted,
    TransientError,
)
from ...config import DEFAULT_TIMEZONE
from ...errors import N_
from ...models import Channel, Post, PublishAttempt
from ...reasons import decode_reason, encode_reason, nested_reason, reason_text
from . import mass_send, notices, staff
from .handoff import HANDOFF_STATES, STAFF_COLUMNS, handoff_values
from .types import Job, Outcome

log = logging.getLogger(__name__)

_POSTS = Post.__table__
_ATTEMPTS = PublishAttempt.__table__


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    factor: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None
              ) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so a crowd of
        posts failing together does not come back together. A service's Retry-After wins
        when it asks for longer."""
        raw = min(self.cap_seconds, self.base_seconds * self.factor ** max(0, attempt - 1))
        delay = raw / 2 + rng.uniform(0, raw / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_seconds))
        return delay


def run_publish(job: Job, clock: Callable[[], datetime]) -> Outcome:
    """Call the adapter. Never raises: every ending becomes an Outcome (and an attempt row)."""
    started = clock()
    t0 = time.perf_counter()
    in_doubt = False
    group_results: list[PublishResult] | None = None
    try:
        if job.members:
            group_results = job.adapter.publish_group([m.outgoing for m in job.members],
                                                      job.key)
            if len(group_results) != len(job.members):
                raise PermanentError(N_("The channel answered for %(got)s of %(count)s "
                                        "articles."), {"got": len(group_results),
                                                       "count": len(job.members)})
            result = group_results[0]
        else:
            result = job.adapter.publish(job.outgoing, job.key)
        kind, reason, retry_after = "published", None, None
    except QuotaExhausted as exc:
        # Nothing was sent: complete_batch moves the post to when the quota allows.
        return Outcome(job, "quota", started, int((time.perf_counter() - t0) * 1000), None,
                       encode_reason(exc.message, exc.params, exc.detail),
                       not_before=exc.not_before)
    except TransientError as exc:
        in_doubt = isinstance(exc, InDoubt)
        result, kind, retry_after = None, "transient", exc.retry_after
        reason = encode_reason(exc.message, exc.params, exc.detail)
    except PermanentError as exc:
        result, kind, retry_after = None, "permanent", None
        reason = encode_reason(exc.message, exc.params, exc.detail)
    except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the run
        log.exception("adapter %s crashed publishing post %s", job.adapter.kind, job.post_id)
        result, kind, retry_after = None, "transient", None
        reason = encode_reason(N_("Unexpected error while sending; it will be retried."),
                               detail=type(exc).__name__)
    if kind != "published":
        group_results = None
    return Outcome(job, kind, started, int((time.perf_counter() - t0) * 1000), result,
                   reason, retry_after, in_doubt, group_results=group_results)


def per_member(outcomes: list[Outcome]) -> tuple[list[Outcome], list[int]]:
    """A multi-article send's outcome as one outcome per member post (each fenced by its own
    claim token, each with its own article's result); returns them and, for each, the index
    of its send's first outcome (so the members share one retry time and one move)."""
    out: list[Outcome] = []
    leads: list[int] = []
    for outcome in outcomes:
        members = outcome.job.members
        if not members:
            leads.append(len(out))
            out.append(outcome)
            continue
        first = len(out)
        for i, member in enumerate(members):
            result = (outcome.group_results[i] if outcome.group_results is not None
                      else None)
            out.append(replace(outcome, job=member, result=result, group_results=None))
            leads.append(first)
    return out, leads


# --- Complete (fenced) -------------------------------------------------------------------

def _fenced_completion():
    """UPDATE … WHERE id = ? AND claim_token = ? AND status = 'publishing' (DESIGN.md §4).
    Columns a failure must not clear keep their value through COALESCE."""
    keep = ("published_at", "external_id", "external_url", "published_version", "slug")
    values: dict[str, Any] = {c: func.coalesce(bindparam(f"v_{c}"), _POSTS.c[c]) for c in keep}
    values.update({c: bindparam(f"v_{c}") for c in
                   ("status", "next_attempt_at", "last_error", "attempt_count", "updated_at")})
    values.update(claim_token=None, claimed_by=None, lease_expires_at=None)
    return (update(_POSTS).where(_POSTS.c.id == bindparam("f_id"),
                                 _POSTS.c.claim_token == bindparam("f_token"),
                                 _POSTS.c.status == "publishing").values(values))


# Set after the fenced update, one small update each (see _apply_handoffs).
_TRACKING_KEYS = ("check_at", "progress", "scheduled_at", *STAFF_COLUMNS)
_COMPLETION_KEYS = ("published_at", "external_id", "external_url", "published_version", "slug",
                    "status", "next_attempt_at", "last_error", "attempt_count", "updated_at")


def _completion_values(outcome: Outcome, now: datetime, policy: RetryPolicy,
                       rng: random.Random, moved: tuple[datetime, str] | None = None
                       ) -> dict[str, Any]:
    job = outcome.job
    attempts = job.attempt_count + 1
    values: dict[str, Any] = dict.fromkeys(_COMPLETION_KEYS)
    values.update(attempt_count=attempts, updated_at=now)
    if outcome.kind == "quota" and moved is not None:
        # Scheduled again at the moved time (set after the fence, with the tracking columns).
        # A used-up quota is not a failure: the retry budget stays as it was.
        values.update(status="scheduled", attempt_count=job.attempt_count,
                      last_error=moved[1], scheduled_at=moved[0])
    elif outcome.kind == "published":
        result = outcome.result or PublishResult()
        values["published_version"] = job.version
        if result.status in HANDOFF_STATES:
            values.update(handoff_values(result, job.adapter.config, now))
        else:
            values.update(status="published", published_at=now,
                          external_id=result.external_id, external_url=result.url)
            if job.adapter.capabilities.sets_slug and result.external_id:
                values["slug"] = result.external_id
    elif outcome.in_doubt and not job.adapter.capabilities.idempotent:
        # It may have gone out and the service cannot dedupe a second copy: reconcile
        # (lookup, else a person) instead of a blind re-send (invariant 2).
        values.update(status="unknown", next_attempt_at=now, last_error=outcome.reason)
    elif outcome.kind == "transient" and attempts <= job.max_retries:
        delay = policy.delay(attempts, rng, outcome.retry_after)
        values.update(status="retrying", next_attempt_at=now + timedelta(seconds=delay),
                      last_error=outcome.reason)
    else:
        reason = outcome.reason
        if outcome.kind == "transient":
            # The last error nested as stored, so each reader gets it in their language.
            reason = encode_reason(
                N_("Gave up after %(attempts)s attempts. Last error: %(error)s"),
                {"attempts": attempts, "error": nested_reason(outcome.reason)})
        values.update(status="failed", last_error=reason)
    return values


def _quota_move(session: Session, outcome: Outcome, now: datetime, team_tz: str
                ) -> tuple[datetime, str]:
    """Where a post the service refused for a used-up quota goes (DESIGN: never failed, never
    dropped): the adapter's `not_before`, else the quota layer's next free day or month at the
    post's own local time — the period of `now` counting as full, since the service says so.
    Returns (new time, encoded reason for the post)."""
    job = outcome.job
    channel = session.get(Channel, job.channel_id)
    planned = job.outgoing.scheduled_at or now
    _, _, detail = decode_reason(outcome.reason)
    if channel is None:  # deleted while sending: still never lost, tomorrow at this time
        when = max(outcome.not_before or now, now + timedelta(days=1))
        return when, encode_reason(mass_send.MOVED_REASON,
                                   {"when": f"{when:%Y-%m-%d %H:%M} (UTC)"}, detail)
    if outcome.not_before is not None and outcome.not_before > now:
        when = mass_send.next_allowed_time(session, channel, outcome.not_before, tz=team_tz,
                                           exclude_post_id=job.post_id)
    else:
        # At the planned wall-clock time (09:00 stays 09:00), in the first period after now's.
        when = mass_send.next_allowed_time(session, channel, planned, tz=team_tz,
                                           exclude_post_id=job.post_id, full_through=now)
    reason = encode_reason(mass_send.MOVED_REASON,
                           mass_send.moved_reason_params(when, channel, team_tz), detail)
    return when, reason


def complete_batch(session: Session, outcomes: list[Outcome], *, now: datetime, node: str,
                   policy: RetryPolicy, rng: random.Random,
                   team_tz: str = DEFAULT_TIMEZONE) -> list[str]:
    """Record the attempts and move the posts, each fenced by its claim token (a
    multi-article send's outcome is recorded on each of its posts). Returns the new state per
    post, or "lost" when that lease was lost (the reaper or another node
    took over). The caller commits. `team_tz` counts quota days of channels without a zone."""
    conn = session.connection()
    outcomes, leads = per_member(outcomes)
    moves = {i: _quota_move(session, o, now, team_tz) for i, o in enumerate(outcomes)
             if o.kind == "quota" and leads[i] == i}
    moves.update({i: moves[leads[i]] for i in range(len(outcomes)) if leads[i] in moves})
    all_values = [_completion_values(o, now, policy, rng, moves.get(i))
                  for i, o in enumerate(outcomes)]
    for i, values in enumerate(all_values):
        if leads[i] != i:
            # One message: its articles come back at the same time, together.
            values["next_attempt_at"] = all_values[leads[i]]["next_attempt_at"]
    tracking = [{k: v.pop(k) for k in _TRACKING_KEYS if k in v} for v in all_values]
    fenced = _apply_fenced(conn, outcomes, all_values)
    _apply_handoffs(conn, tracking, fenced, outcomes)
    states: list[str] = []
    attempt_rows: list[dict[str, Any]] = []
    failed: list[int] = []
    for outcome, vals, tracked in zip(outcomes, all_values, tracking, strict=True):
        job = outcome.job
        fenced_ok = job.post_id in fenced
        state = vals["status"]
        error = outcome.reason
        if not fenced_ok:
            state = "lost"
            if outcome.kind == "published":
                # The send worked but the lease had expired. If the reaper parked the post as
                # `unknown`, this attempt is the proof reconcile is waiting for.
                proof = {k: v for k, v in vals.items() if v is not None}
                # A hand-off (staff, service) keeps its tracking, or nobody would look again.
                proof.update(tracked)
                proof.update(claim_token=None, claimed_by=None, lease_expires_at=None,
                             next_attempt_at=vals["next_attempt_at"])
                took = conn.execute(update(_POSTS).where(
                    _POSTS.c.id == job.post_id, _POSTS.c.status == "unknown")
                    .values(proof)).rowcount
                state = vals["status"] if took else "lost"
            error = encode_reason(N_("The lease expired before this attempt finished; the "
                                     "result was recorded but the post had been taken over."),
                                  detail=reason_text(outcome.reason) or outcome.kind)
        attempt_rows.append({
            "post_id": job.post_id, "started_at": outcome.started_at,
            "duration_ms": outcome.duration_ms,
            "outcome": outcome.kind if fenced_ok else "lost", "error": error,
            "node": node[:100]})
        states.append(state)
        if state == "failed":
            failed.append(job.post_id)
        elif state == "awaiting_staff":
            staff.notify_handed(session, job.post_id, signing_key=job.adapter.signing_key,
                                tz=team_tz)
    if attempt_rows:
        conn.execute(insert(_ATTEMPTS), attempt_rows)
    if failed:
        notices.notify_problem(session, failed, "failed")
    return states


# PostgreSQL batch completion: one statement, arrays as parameters (cached, one round trip).
_PG_COMPLETION = text("""
UPDATE posts AS p SET
  status = v.status, next_attempt_at = v.next_attempt_at, last_error = v.last_error,
  attempt_count = v.attempt_count, updated_at = v.updated_at,
  published_at = COALESCE(v.published_at, p.published_at),
  external_id = COALESCE(v.external_id, p.external_id),
  external_url = COALESCE(v.external_url, p.external_url),
  published_version = COALESCE(v.published_version, p.published_version),
  slug = COALESCE(v.slug, p.slug),
  claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL
FROM unnest(CAST(:f_id AS integer[]), CAST(:f_token AS varchar[]),
            CAST(:status AS varchar[]), CAST(:next_attempt_at AS timestamptz[]),
            CAST(:last_error AS text[]), CAST(:attempt_count AS integer[]),
            CAST(:updated_at AS timestamptz[]), CAST(:published_at AS timestamptz[]),
            CAST(:external_id AS varchar[]), CAST(:external_url AS varchar[]),
            CAST(:published_version AS integer[]), CAST(:slug AS varchar[]))
  AS v(id, token, status, next_attempt_at, last_error, attempt_count, updated_at,
       published_at, external_id, external_url, published_version, slug)
WHERE p.id = v.id AND p.claim_token = v.token AND p.status = 'publishing'
RETURNING p.id
""")


def _apply_fenced(conn, outcomes: list[Outcome], all_values: list[dict[str, Any]]) -> set[int]:
    """Run the fenced completion updates; returns the ids whose fence held.

    PostgreSQL: one UPDATE … FROM (VALUES …) RETURNING for the whole batch (one round trip).
    Elsewhere: the same fenced UPDATE per row, where rowcount == 1 means the fence held.
    """
    if not outcomes:
        return set()
    if conn.dialect.name == "postgresql":
        params: dict[str, list] = {"f_id": [o.job.post_id for o in outcomes],
                                   "f_token": [o.job.claim_token for o in outcomes]}
        for k in _COMPLETION_KEYS:
            params[k] = [v[k] for v in all_values]
        return set(conn.execute(_PG_COMPLETION, params).scalars())
    stmt = _fenced_completion()
    held = set()
    for outcome, vals in zip(outcomes, all_values, strict=True):
        params = {f"v_{k}": v for k, v in vals.items()}
        params.update(f_id=outcome.job.post_id, f_token=outcome.job.claim_token)
        if conn.execute(stmt, params).rowcount == 1:
            held.add(outcome.job.post_id)
    return held


def _apply_handoffs(conn, tracking: list[dict[str, Any]], fenced: set[int],
                    outcomes: list[Outcome]) -> None:
    """Tracking columns of posts handed to the service or to staff, and the new time of posts
    moved for a used-up quota. Rare next to plain publishes, so one small update each after
    the batch instead of widening it."""
    for values, outcome in zip(tracking, outcomes, strict=True):
        if values and outcome.job.post_id in fenced:
            conn.execute(update(_POSTS).where(_POSTS.c.id == outcome.job.post_id)
                         .values(**values))


def complete(session: Session, outcome: Outcome, *, now: datetime, node: str,
             policy: RetryPolicy, rng: random.Random, team_tz: str = DEFAULT_TIMEZONE) -> str:
    """complete_batch for one outcome."""
    return complete_batch(session, [outcome], now=now, node=node, policy=policy, rng=rng,
                          team_tz=team_tz)[0]
