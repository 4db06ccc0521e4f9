"""Feedback: reads, likes, comments, shares and clicks of published posts.

Feedback enters in six ways, one module each; all of them end in `ingest`:

1. API push       `push`            POST /api/v1/feedback with a bearer token
2. signed hook    `hook`            a service POSTs to /api/v1/feedback/hooks/<channel id>,
                                    signed with the channel's inbound key (no user token)
3. scheduled pull `pull`            the scheduler asks capable channels for their totals;
                  `daily_stats`     once a day for services that publish yesterday's
                                    figures (公众号), with their comments
4. own pages      `pages`           reads, likes, comments and shares on the web channel's
                                    public pages (/p/<slug>)
5. e-mail         `email_tracking`  the open pixel and signed click redirects in e-mails
6. CSV import     `csv_import`      numbers people typed up (and the matching export)

`ingest` counts events idempotently (an event id counts once) and raises pulled totals
without ever lowering them (invariant 5). `history` reads the result back (timelines,
sparkline trends, received comments); `demo` backfills history for the demo data.

Callers import the module of their way in (`from ..services.feedback import pages`) or the
names below; the ingest function itself is `feedback.ingest.ingest` (the module keeps its
name, so no attribute of this package changes meaning after an import).
"""

from __future__ import annotations

from . import (
    csv_import,
    daily_stats,
    demo,
    email_tracking,
    history,
    hook,
    ingest,
    pages,
    pull,
    push,
)
from .history import post_timeline, received_comments, trends
from .hook import create_hook_key, hook_keys, receive, sign, verify_hook
from .ingest import (
    MAX_BATCH,
    IngestResult,
    Rejection,
    add_to_totals,
    apply_pulled_totals,
    bump,
)
from .pull import collect_metrics

__all__ = [
    "MAX_BATCH",
    "IngestResult",
    "Rejection",
    "add_to_totals",
    "apply_pulled_totals",
    "bump",
    "collect_metrics",
    "create_hook_key",
    "csv_import",
    "daily_stats",
    "demo",
    "email_tracking",
    "history",
    "hook",
    "hook_keys",
    "ingest",
    "pages",
    "post_timeline",
    "pull",
    "push",
    "receive",
    "received_comments",
    "sign",
    "trends",
    "verify_hook",
]
