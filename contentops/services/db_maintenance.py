"""Keeping the database's query planner informed (run daily by the scheduler).

SQLite plans without statistics until ANALYZE has run: on a large post list filtered by
channel and status and sorted by reads it then sorts every matching row instead of walking
the reads index (35 ms vs. 0.1 ms for that query at 100,000 posts, see BENCHMARKS.md).
PostgreSQL's autovacuum keeps its own statistics, so there is nothing to do there.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

# The tables whose plans have a real choice between indexes (filters vs. sort order). Only
# these, and in full: sampled statistics (`PRAGMA analysis_limit`) were too rough to change
# the plan, and a full ANALYZE of posts takes ~0.1 s per 100,000 posts; the feedback tables
# (millions of rows) are only ever read through their one obvious index.
TABLES = ("posts", "content_pieces")


def refresh_statistics(session: Session) -> bool:
    """Refresh the planner's statistics where the database needs us to; True if it ran."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    conn = session.connection()
    for table in TABLES:
        conn.exec_driver_sql(f"ANALYZE {table}")
    session.commit()
    return True
