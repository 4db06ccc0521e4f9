"""The engine's vocabulary: what a claimed post, a claim decision and a send outcome are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ...channels.base import ChannelAdapter, OutgoingPost, PublishResult
from ...models import Channel

CLAIMABLE_STATES: tuple[str, ...] = ("scheduled", "retrying")
# Defaults; the runner passes values from the app config.
DEFAULT_LEASE_SECONDS = 120
DEFAULT_WORKERS = 16
# Each scheduler writes a heartbeat this often. A node silent for HEARTBEAT_STALE has stopped:
# it no longer counts as alive (health, banner) and other nodes reap the posts it was sending
# (recovery.reap_expired) instead of waiting for their leases. Five missed beats, so a node
# that is merely busy is not taken for dead; and if it is, its fenced completion still counts.
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_STALE = timedelta(seconds=10)

AdapterFactory = Callable[[Channel], ChannelAdapter]
SessionFactory = Callable[[], Session]


@dataclass
class Job:
    """A claimed post, detached from the ORM so a worker thread can publish it."""

    post_id: int
    claim_token: str
    channel_id: int
    version: int
    attempt_count: int
    max_retries: int
    key: str
    outgoing: OutgoingPost
    adapter: ChannelAdapter
    # A multi-article send (groups.py): every member's own job, the lead (this one) first.
    # The adapter sends them as one message; each member's outcome is recorded on its post.
    members: tuple[Job, ...] = ()


@dataclass
class Decision:
    claim: list[int] = field(default_factory=list)
    # post id -> reason (encoded) for posts that become `missed` instead.
    missed: dict[int, str] = field(default_factory=dict)
    # Earliest time a rate-limited channel has a token again.
    wake_at: datetime | None = None
    # Channels that had more due posts than their per-channel concurrency allowed.
    capped: set[int] = field(default_factory=set)


@dataclass
class Outcome:
    job: Job
    kind: str  # published | transient | permanent | quota
    started_at: datetime
    duration_ms: int
    result: PublishResult | None = None
    reason: str | None = None  # encoded
    retry_after: float | None = None
    # A transient error after the request may have reached the service (InDoubt).
    in_doubt: bool = False
    # kind "quota" (the service's send quota is used up): the earliest time it may go again.
    not_before: datetime | None = None
    # A multi-article send that went out: one result per member, in `job.members` order.
    group_results: list[PublishResult] | None = None
