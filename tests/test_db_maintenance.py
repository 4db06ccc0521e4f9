"""The daily statistics job: SQLite gets planner statistics once a day, on one node."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text
from sqlalchemy.orm import sessionmaker

from contentops.models import Channel, ContentPiece, Post
from contentops.scheduler import jobs

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def test_statistics_once_a_day_on_one_node(db, make_user):
    author = make_user("editor")
    channels = [Channel(name=f"c{i}", kind="webhook", color="#123456", config={})
                for i in range(4)]
    db.session.add_all(channels)
    db.session.flush()
    db.session.execute(insert(ContentPiece), [
        {"id": i + 1, "title": f"p{i}", "body": "b", "summary": "", "author_id": author.id,
         "status": "approved", "version": 1, "approved_version": 1} for i in range(500)])
    db.session.execute(insert(Post), [
        {"piece_id": i % 500 + 1, "channel_id": channels[i % 4].id, "status": "published",
         "scheduled_at": NOW - timedelta(hours=i), "reads": i % 37, "attempt_count": 1}
        for i in range(2000)])
    db.session.commit()

    factory = sessionmaker(bind=db.engine)
    assert jobs.refresh_statistics(factory, "node-a", NOW) is True
    # Another node (or a later tick) the same UTC day does nothing; the next day runs again.
    assert jobs.refresh_statistics(factory, "node-b", NOW + timedelta(hours=1)) is False
    assert jobs.refresh_statistics(factory, "node-b", NOW + timedelta(days=1)) is True
    stats = dict(db.session.execute(text(
        "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'posts'")).all())
    # Row count, then rows per distinct key prefix: 2,000 posts over 4 channels.
    assert stats["ix_posts_channel_scheduled_at"].split()[:2] == ["2000", "500"]
    assert stats["ix_posts_reads"].split()[0] == "2000"
    assert db.session.execute(text(
        "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'content_pieces'")).scalar() > 0
