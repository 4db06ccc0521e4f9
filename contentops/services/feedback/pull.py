"""Scheduled pull: every 30 minutes the scheduler asks each capable channel for its totals.

Services such as 公众号 statistics or a webhook's signed `metrics_url` report running totals,
not events; `ingest.apply_pulled_totals` raises the post counters to them and never lowers
them (invariant 5), so a late or partial report cannot make a number go backwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...channels.base import ChannelError
from ...models import Channel, Post
from .ingest import apply_pulled_totals

log = logging.getLogger(__name__)


def collect_metrics(session: Session, *, now: datetime,
                    adapter_for: Callable[[Channel], Any],
                    since: timedelta = timedelta(days=30)) -> dict[int, int]:
    """Pull totals from every active channel whose adapter can report them.

    Returns channel id -> number of posts that gained. A failing channel is logged and
    skipped so one broken service does not stop the others.
    """
    report: dict[int, int] = {}
    channels = session.scalars(select(Channel).where(Channel.active.is_(True))).all()
    for channel in channels:
        try:
            adapter = adapter_for(channel)
        except (KeyError, ValueError):
            continue
        if not adapter.capabilities.metrics:
            continue
        items = [(pid, ext) for pid, ext in session.execute(
            select(Post.id, Post.external_id).where(
                Post.channel_id == channel.id, Post.status == "published",
                Post.external_id.is_not(None), Post.published_at >= now - since))]
        if not items:
            continue
        try:
            totals = adapter.fetch_metrics(items)
        except ChannelError as exc:
            log.warning("metrics of channel %s not fetched: %s", channel.id, exc)
            continue
        report[channel.id] = len(apply_pulled_totals(session, totals, now=now))
    return report
