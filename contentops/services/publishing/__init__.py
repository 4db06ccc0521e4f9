"""The publishing engine (DESIGN.md §3–§4). Where publishing happens, in order:

- `claim`      which posts may go out now (approval, due, grace, quotas, per-minute bucket) and
               taking them in one short transaction — the one place with a dialect branch;
- `complete`   calling the adapter outside any transaction, the retry policy, and recording
               the outcome fenced by the claim token;
- `dispatcher` the loop that keeps a bounded thread pool fed with claimed posts;
- `handoff`    following posts the service or staff finish later (公众号 freepublish,
               企业微信 broadcasts staff confirm) until published, failed or past the deadline;
- `recovery`   the lease reaper, reconciliation of posts in doubt, staff-task deadlines;
- `actions`    what people do to a post (schedule, publish now, retry, cancel, …), by the
               state table in `contentops/post_states.py`;
- `quotas`     channel quotas and scheduling conflicts (checked when scheduling and again
               when dispatching);
- `notices`    who is told about failures, misses and hand-offs;
- `overview`   the Publishing page's read side;
- `types`      Job, Decision, Outcome and the factories the engine is given.

Everything takes a session (or a session factory), `now` and adapters as arguments so tests
inject a clock and fakes. No Flask.

Post states the engine moves:
  scheduled/retrying --claim--> publishing --fenced completion--> published | awaiting_staff
                                                              \\-> retrying (transient) | failed
  publishing --lease expired, or its node's heartbeat stale (reaper)--> unknown
             --reconcile--> published | retrying | (a person)
  scheduled/retrying --due while unapproved / beyond grace / over quota--> missed
  unknown --a same-key re-send would be beyond grace, no proof (reconcile)--> missed
  publishing (handed to the service) --track--> published | failed
  awaiting_staff --deadline--> missed (manual) | final track verdict: published | missed
"""

from . import groups, quotas
from .actions import (
    SCHEDULABLE,
    cancel_post,
    mark_published,
    publish_now,
    reschedule,
    retry_post,
    schedule_post,
    unschedule_post,
)
from .claim import (
    claim_due,
    claim_rows,
    claimable_clause,
    due_clause,
    idempotency_key,
    mark_unapproved_missed,
    next_due_at,
    outgoing_for,
)
from .complete import RetryPolicy, complete, complete_batch, run_publish
from .dispatcher import Dispatcher, DispatchStats
from .handoff import HANDOFF_STATES, TrackStats, track_due
from .notices import people_to_tell
from .overview import PAGE_GROUPS, attempts_for, publishing_overview
from .recovery import expire_staff_tasks, reap_expired, reconcile_unknown
from .types import (
    CLAIMABLE_STATES,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_WORKERS,
    HEARTBEAT_SECONDS,
    HEARTBEAT_STALE,
    AdapterFactory,
    Decision,
    Job,
    Outcome,
    SessionFactory,
)

__all__ = [
    "groups", "quotas", "SCHEDULABLE", "cancel_post", "mark_published", "publish_now", "reschedule",
    "retry_post", "schedule_post", "unschedule_post", "claim_due", "claim_rows",
    "claimable_clause", "due_clause", "idempotency_key", "mark_unapproved_missed",
    "next_due_at", "outgoing_for", "RetryPolicy", "complete", "complete_batch", "run_publish",
    "Dispatcher", "DispatchStats", "HANDOFF_STATES", "TrackStats", "track_due",
    "people_to_tell", "PAGE_GROUPS", "attempts_for",
    "publishing_overview", "expire_staff_tasks", "reap_expired",
    "reconcile_unknown", "CLAIMABLE_STATES", "DEFAULT_LEASE_SECONDS", "DEFAULT_WORKERS",
    "HEARTBEAT_SECONDS", "HEARTBEAT_STALE",
    "AdapterFactory", "Decision", "Job", "Outcome", "SessionFactory",
]
