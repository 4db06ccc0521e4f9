"""The dispatcher: claim due posts and publish them on a bounded thread pool."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from .claim import claim_due
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

    Only as many posts are claimed as there are free workers, so no claimed post waits in a
    queue while its lease runs down; completions are written in batches (one transaction for
    many fenced updates), which keeps SQLite fast and PostgreSQL round trips few.
    """

    def __init__(self, session_factory: SessionFactory, adapter_for: AdapterFactory, *,
                 node: str, clock: Callable[[], datetime], workers: int = DEFAULT_WORKERS,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 policy: RetryPolicy | None = None, team_tz: str = "Asia/Shanghai",
                 base_url: str = "", rng: random.Random | None = None) -> None:
        self.session_factory = session_factory
        self.adapter_for = adapter_for
        self.node = node
        self.clock = clock
        self.workers = max(1, workers)
        self.lease_seconds = lease_seconds
        self.policy = policy or RetryPolicy()
        self.team_tz = team_tz
        self.base_url = base_url
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="contentops-publish")
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming; let in-flight sends finish and record them (a run in progress
        drains its in-flight posts and returns), then release the pool."""
        self._stopping.set()
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
        self._pool.shutdown(wait=True)

    def run(self) -> DispatchStats | None:
        """Publish everything due now. Returns None when another run is in progress."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._run()
        finally:
            self._lock.release()

    def _run(self) -> DispatchStats:
        stats = DispatchStats()
        inflight: dict[Future, Job] = {}
        exhausted = False
        triage = True
        # Keep the pool fed: up to two posts per worker claimed at a time (the second waits
        # milliseconds, far inside its lease), claimed in batches of at least `workers`.
        capacity = 2 * self.workers
        while True:
            free = capacity - len(inflight)
            if not exhausted and not self._stopping.is_set() and (
                    free >= self.workers or not inflight):
                jobs, decision = self._claim(free, triage)
                triage = False
                stats.claimed += len(jobs)
                stats.missed += len(decision.missed)
                if decision.wake_at is not None:
                    stats.wake_at = decision.wake_at
                if len(jobs) < free:
                    exhausted = True  # nothing more due (or rate-limited) right now
                for job in jobs:
                    # A claimed post that cannot be submitted keeps its lease; the reaper
                    # and reconcile settle it, so nothing is lost on a racing shutdown.
                    try:
                        inflight[self._pool.submit(run_publish, job, self.clock)] = job
                    except RuntimeError:
                        log.warning("pool closed; post %s left to the reaper", job.post_id)
            if not inflight:
                break
            done, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
            if not done:
                continue
            # Gather a few more completions so they share one transaction.
            if len(done) < len(inflight):
                more, _ = wait([f for f in inflight if f not in done], timeout=0.003,
                               return_when=FIRST_COMPLETED)
                done = set(done) | set(more)
            outcomes = [f.result() for f in done]
            for f in done:
                inflight.pop(f)
            self._complete(outcomes, stats)
            if exhausted and not inflight:
                # Posts may have become due while the last ones were sending: look again
                # (an empty claim then ends the run).
                exhausted = False
        return stats

    def _claim(self, limit: int, triage: bool) -> tuple[list[Job], Decision]:
        session = self.session_factory()
        try:
            return claim_due(session, now=self.clock(), node=self.node, limit=limit,
                             adapter_for=self.adapter_for, lease_seconds=self.lease_seconds,
                             team_tz=self.team_tz, base_url=self.base_url, triage=triage)
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    def _complete(self, outcomes: list[Outcome], stats: DispatchStats) -> None:
        session = self.session_factory()
        try:
            states = complete_batch(session, outcomes, now=self.clock(), node=self.node,
                                    policy=self.policy, rng=self.rng, team_tz=self.team_tz)
            session.commit()
            for state in states:
                if hasattr(stats, state):
                    setattr(stats, state, getattr(stats, state) + 1)
        except Exception:
            session.rollback()
            log.exception("recording %d publish outcomes failed; their leases will expire "
                          "and reconcile settles them", len(outcomes))
        finally:
            session.close()
