"""The dispatcher: claim due posts and publish them on a bounded thread pool."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

from .claim import claim_due, next_due_at
from .complete import RetryPolicy, complete_batch, run_publish
from .types import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_WORKERS,
    AdapterFactory,
    Decision,
    Job,
    Outcome,
    SessionFactory,
)

log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    claimed: int = 0
    published: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0
    unknown: int = 0
    awaiting_staff: int = 0
    missed: int = 0
    wake_at: datetime | None = None


class Dispatcher:
    """Claims due posts and publishes them on a bounded thread pool.

    Claiming is continuous: whenever workers are free and something may be due (a completion
    freed room, the runner's timer or poll kicked, or a periodic look), the loop claims again,
    so one slow send never holds back posts of other channels (head-of-line). Each channel
    has at most `workers` posts in flight and the pool has `2 × workers` threads, so a channel
    whose service hangs can take at most half the pool. Completions are written in batches
    (one transaction for many fenced updates). An outcome whose write fails (the database
    restarting, a write lock outlasting the busy timeout) stays in memory and is written when
    the database answers again: a delivered post is never re-sent for it, and every attempt is
    recorded.
    """

    # Retrying buffered outcomes and failed claims: 0.2 s doubling to 5 s.
    RETRY_FIRST_SECONDS = 0.2
    RETRY_MAX_SECONDS = 5.0
    # A periodic look while posts are in flight (rate-limit wake-ups, posts due without a
    # kick); the runner's timer and poll kick the loop sooner.
    LOOK_SECONDS = 1.0

    def __init__(self, session_factory: SessionFactory, adapter_for: AdapterFactory, *,
                 node: str, clock: Callable[[], datetime], workers: int = DEFAULT_WORKERS,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 policy: RetryPolicy | None = None, team_tz: str = "Asia/Shanghai",
                 base_url: str = "", rng: random.Random | None = None,
                 per_channel: int | None = None) -> None:
        self.session_factory = session_factory
        self.adapter_for = adapter_for
        self.node = node
        self.clock = clock
        self.workers = max(1, workers)
        self.per_channel = max(1, per_channel or self.workers)
        self.capacity = 2 * self.workers
        self.lease_seconds = lease_seconds
        # Buffered outcomes are retried this long; after that their leases have long run
        # out and the reaper → reconcile path (same-key re-send or lookup) settles them.
        self.give_up_seconds = max(60.0, 2.0 * float(lease_seconds))
        self.policy = policy or RetryPolicy()
        self.team_tz = team_tz
        self.base_url = base_url
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(max_workers=self.capacity,
                                        thread_name_prefix="contentops-publish")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a send finished, or a kick
        self._kicked = threading.Event()
        self._claimed_at = clock()  # the `now` of the last claim

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def kick(self) -> None:
        """Something is due now: a running loop claims again at once."""
        self._kicked.set()
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming; let in-flight sends finish and record them (a run in progress
        drains its in-flight posts and buffered outcomes and returns), then release the
        pool."""
        self._stopping.set()
        self._wake.set()
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
        self._pool.shutdown(wait=True)

    def run(self) -> DispatchStats | None:
        """Publish everything due now. Returns None when another run is in progress (which
        is then kicked to look again)."""
        if not self._lock.acquire(blocking=False):
            self.kick()
            return None
        try:
            return self._run()
        finally:
            self._lock.release()

    def _run(self) -> DispatchStats:
        stats = DispatchStats()
        inflight: dict[Future, Job] = {}
        per_channel: Counter[int] = Counter()
        full: set[int] = set()  # channels at their cap (or with more due) at the last claim
        pending: list[Outcome] = []  # finished sends whose write failed: retried
        pending_since = 0.0
        write_failures = claim_failures = 0
        write_at = claim_at = 0.0  # monotonic: not before
        exhausted = False
        triage = True
        batch = max(1, self.workers // 2)
        freed = self.capacity  # slots freed since the last claim
        look_at = 0.0
        idle_claim = False
        self._kicked.clear()
        while True:
            self._wake.clear()
            now_m = time.monotonic()
            if self._kicked.is_set():
                self._kicked.clear()
                exhausted = False
                freed = self.capacity
            if exhausted and inflight and now_m >= look_at:
                exhausted = False
                freed = self.capacity
            free = self.capacity - len(inflight)
            if (not self._stopping.is_set() and free > 0 and now_m >= claim_at
                    and not exhausted and (freed >= batch or not inflight)):
                idle_claim = False
                was_idle = not inflight and not pending
                try:
                    jobs, decision = self._claim(free, triage, dict(per_channel))
                except Exception:  # noqa: BLE001 - the database is away: sends go on
                    claim_failures += 1
                    claim_at = now_m + self._backoff(claim_failures)
                    log.warning("claiming failed (attempt %d); trying again shortly",
                                claim_failures, exc_info=claim_failures == 1)
                else:
                    claim_failures = 0
                    idle_claim = was_idle and not jobs
                    triage = False
                    freed = 0
                    look_at = now_m + self.LOOK_SECONDS
                    stats.claimed += len(jobs)
                    stats.missed += len(decision.missed)
                    if decision.wake_at is not None:
                        stats.wake_at = decision.wake_at
                    # Nothing more due (or rate-limited) right now, apart from channels at
                    # their cap, which are looked at again as their sends finish.
                    exhausted = len(jobs) < free and not decision.capped
                    for job in jobs:
                        # A claimed post that cannot be submitted keeps its lease; the reaper
                        # and reconcile settle it, so nothing is lost on a racing shutdown.
                        try:
                            future = self._pool.submit(run_publish, job, self.clock)
                        except RuntimeError:
                            log.warning("pool closed; post %s left to the reaper", job.post_id)
                            continue
                        inflight[future] = job
                        per_channel[job.channel_id] += 1
                        future.add_done_callback(lambda _f: self._wake.set())
                    full = set(decision.capped) | {
                        c for c, n in per_channel.items() if n >= self.per_channel}
                    if exhausted and inflight:
                        # Sends go on: look again when the next post becomes due, not a
                        # poll later (lateness of other channels stays the single-post one).
                        look_at = min(look_at, self._next_look(full, now_m,
                                                                   self._claimed_at))
            done = [f for f in inflight if f.done()]
            if done and len(done) < len(inflight):
                # Gather a few more completions so they share one transaction.
                more, _ = wait([f for f in inflight if f not in done], timeout=0.003,
                               return_when=FIRST_COMPLETED)
                done.extend(more)
            outcomes = [f.result() for f in done]
            for f in done:
                job = inflight.pop(f)
                per_channel[job.channel_id] -= 1
                if not per_channel[job.channel_id]:
                    del per_channel[job.channel_id]
                freed += 1
                if job.channel_id in full:
                    exhausted = False  # its cap has room again: more of it may be due
            if outcomes and not pending:
                pending_since = now_m
            pending.extend(outcomes)
            if pending and (outcomes or now_m >= write_at):
                if self._complete(pending, stats):
                    pending, write_failures = [], 0
                else:
                    write_failures += 1
                    write_at = time.monotonic() + self._backoff(write_failures)
                    if time.monotonic() - pending_since > self.give_up_seconds:
                        log.error("gave up recording %d publish outcomes after %d tries; "
                                  "their leases expired and reconcile settles them",
                                  len(pending), write_failures)
                        pending, write_failures = [], 0
            if not inflight and not pending:
                if self._stopping.is_set() or idle_claim or claim_failures:
                    break  # nothing due, nothing sending (or the database is away)
                if exhausted:
                    # Posts may have become due while the last ones were sending: look
                    # again (an empty claim then ends the run).
                    exhausted = False
                    freed = self.capacity
                continue
            if done:
                continue  # look at claiming right away
            timeout = self.LOOK_SECONDS
            for at in (((write_at,) if pending else ()) + ((claim_at,) if claim_failures
                                                           else ())
                       + ((look_at,) if exhausted else ())):
                timeout = min(timeout, max(0.0, at - time.monotonic()))
            self._wake.wait(timeout)
        return stats

    def _next_look(self, full: set[int], now_m: float, claimed_at: datetime) -> float:
        """Monotonic time of the next due post on a channel with room (a far look when one
        is due already: it is rate-limited, and the periodic look covers it)."""
        session = self.session_factory()
        try:
            due = next_due_at(session, full)
        except Exception:  # noqa: BLE001 - the periodic look covers it
            return now_m + self.LOOK_SECONDS
        finally:
            with contextlib.suppress(Exception):
                session.close()
        if due is None:
            return now_m + self.LOOK_SECONDS
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        if due <= claimed_at:
            # It was due at the claim and not taken (a rate limit): the periodic look.
            return now_m + self.LOOK_SECONDS
        # Just after it becomes due (timers may wake a little early).
        delay = (due - self.clock()).total_seconds() + 0.002
        return time.monotonic() + max(0.0, delay)

    def _backoff(self, failures: int) -> float:
        delay = min(self.RETRY_MAX_SECONDS, self.RETRY_FIRST_SECONDS * 2 ** (failures - 1))
        return delay * (0.75 + 0.5 * self.rng.random())

    def _claim(self, limit: int, triage: bool, in_flight: dict[int, int]
               ) -> tuple[list[Job], Decision]:
        session = self.session_factory()
        self._claimed_at = self.clock()
        try:
            return claim_due(session, now=self._claimed_at, node=self.node, limit=limit,
                             adapter_for=self.adapter_for, lease_seconds=self.lease_seconds,
                             team_tz=self.team_tz, base_url=self.base_url, triage=triage,
                             in_flight=in_flight, per_channel=self.per_channel)
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    def _complete(self, outcomes: list[Outcome], stats: DispatchStats) -> bool:
        """Write the outcomes in one transaction; False (nothing written) when the database
        did not answer, so the caller keeps them and tries again."""
        session = self.session_factory()
        try:
            states = complete_batch(session, outcomes, now=self.clock(), node=self.node,
                                    policy=self.policy, rng=self.rng, team_tz=self.team_tz)
            session.commit()
        except Exception:  # noqa: BLE001 - kept in memory and written when it answers
            log.warning("recording %d publish outcomes failed; kept and retried",
                        len(outcomes), exc_info=True)
            with contextlib.suppress(Exception):
                session.rollback()
            return False
        finally:
            with contextlib.suppress(Exception):
                session.close()
        for state in states:
            if hasattr(stats, state):
                setattr(stats, state, getattr(stats, state) + 1)
        return True
