"""Thin wrappers the runner schedules: each opens a session, calls a service, closes it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from ..services import db_maintenance, feedback, publishing, system

log = logging.getLogger(__name__)


def _with_session(factory: Callable[[], Session], fn: Callable[[Session], object]) -> object:
    session = factory()
    try:
        return fn(session)
    except Exception:
        session.rollback()
        log.exception("scheduler job failed")
        return None
    finally:
        session.close()


def heartbeat(factory: Callable[[], Session], node_id: str, now: datetime) -> None:
    _with_session(factory, lambda s: system.heartbeat(s, node_id, now=now))


def reap(factory: Callable[[], Session], node_id: str, now: datetime) -> object:
    return _with_session(factory, lambda s: publishing.reap_expired(s, now=now, node=node_id))


def reconcile(factory: Callable[[], Session], node_id: str, now: datetime,
              adapter_for: publishing.AdapterFactory, base_url: str) -> object:
    return _with_session(factory, lambda s: publishing.reconcile_unknown(
        s, now=now, node=node_id, adapter_for=adapter_for, base_url=base_url))


def track_handoffs(factory: Callable[[], Session], node_id: str, now: datetime,
                   adapter_for: publishing.AdapterFactory, base_url: str) -> object:
    return _with_session(factory, lambda s: publishing.track_due(
        s, now=now, node=node_id, adapter_for=adapter_for, base_url=base_url))


def expire_staff_tasks(factory: Callable[[], Session], now: datetime,
                       signing_key: bytes | None = None) -> object:
    return _with_session(factory, lambda s: publishing.expire_staff_tasks(
        s, now=now, signing_key=signing_key))


def next_due(factory: Callable[[], Session]) -> datetime | None:
    session = factory()
    try:
        return publishing.next_due_at(session)
    finally:
        session.rollback()
        session.close()


def collect_metrics(factory: Callable[[], Session], node_id: str, now: datetime, period: str,
                    adapter_for: publishing.AdapterFactory) -> dict[int, int] | None:
    """Pull totals from channels that report them; one node per period does it."""
    def run(session: Session) -> dict[int, int] | None:
        if not system.claim_period(session, "collect_metrics", period, node_id, now=now):
            return None
        report = feedback.collect_metrics(session, now=now, adapter_for=adapter_for)
        session.commit()
        if report:
            log.info("metrics pulled: %s", report)
        return report
    return _with_session(factory, run)  # type: ignore[return-value]


def pull_daily_stats(factory: Callable[[], Session], node_id: str, now: datetime,
                     adapter_for: publishing.AdapterFactory, not_before_hour: int) -> object:
    """Yesterday's statistics of channels that publish them daily (公众号): one node per
    channel and day; a failed or incomplete pull is released for a later tick."""
    def run(session: Session) -> object:
        report = feedback.daily_stats.collect_daily_stats(
            session, now=now, node_id=node_id, adapter_for=adapter_for,
            not_before_hour=not_before_hour)
        if report:
            log.info("daily statistics pulled: %s", report)
        return report
    return _with_session(factory, run)


def refresh_statistics(factory: Callable[[], Session], node_id: str, now: datetime) -> object:
    """Once a day (UTC) on one node: the query planner's statistics."""
    def run(session: Session) -> bool:
        if not system.claim_period(session, "refresh_statistics", now.date().isoformat(),
                                   node_id, now=now):
            return False
        return db_maintenance.refresh_statistics(session)
    return _with_session(factory, run)
