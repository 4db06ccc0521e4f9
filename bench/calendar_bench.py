"""Calendar benchmark: 100k posts, then time the month feed and the iCalendar feed.

    .venv/bin/python bench/calendar_bench.py [--posts 100000] [--database-url URL] [--runs 15]

Times are server time: the request goes through the whole Flask app (auth, parsing, query,
JSON/iCal rendering) via the test client, without a network in between. Defaults to a fresh
SQLite file in a temporary folder; pass a PostgreSQL URL to measure there (its tables are
created in a fresh schema and dropped afterwards).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from contentops import create_app  # noqa: E402
from contentops.extensions import db  # noqa: E402
from contentops.gc_tuning import freeze_startup_objects  # noqa: E402
from contentops.models import Audience, Campaign, Channel, ContentPiece, Post, Style, User  # noqa: E402,I001
from contentops.services.users import create_token  # noqa: E402

CHANNELS = [("公众号", "#07c160"), ("企业微信群", "#1e90ff"), ("钉钉群", "#0089ff"),
            ("飞书群", "#3370ff"), ("邮件周报", "#6f42c1"), ("官网博客", "#fd7e14"),
            ("朋友圈", "#20c997"), ("社群机器人", "#dc3545")]
AUDIENCES = ["新会员", "高价值复购", "沉睡用户", "宝妈社群", "企业客户", "学生党"]
STYLES = ["亲切", "专业", "幽默", "正式"]
CAMPAIGNS = ["双11 大促", "618 年中", "年货节", "会员日"]
STATUSES = ["scheduled"] * 6 + ["published"] * 3 + ["failed", "missed", "cancelled"]
REVIEW = ["approved"] * 7 + ["draft", "in_review", "changes_requested"]


def seed(n_posts: int, start: datetime, days: int) -> None:
    rnd = random.Random(42)
    author = User(email="bench@example.com", name="Bench", password_hash="x", role="admin",
                  notification_prefs={})
    db.session.add(author)
    db.session.add_all([Channel(name=n, kind="webhook", color=c, config={},
                                conflict_window_minutes=120,
                                daily_quota=18 if n == "公众号" else None)
                        for n, c in CHANNELS])
    db.session.add_all([Audience(name=n) for n in AUDIENCES])
    db.session.add_all([Style(name=n) for n in STYLES])
    db.session.add_all([Campaign(name=n) for n in CAMPAIGNS])
    db.session.commit()
    channel_ids = [c.id for c in db.session.query(Channel)]
    now = datetime.now(UTC)
    # One piece per two posts (a piece usually goes to a couple of channels).
    n_pieces = n_posts // 2
    batch = 5000
    for first in range(0, n_pieces, batch):
        rows = []
        for i in range(first, min(first + batch, n_pieces)):
            review = rnd.choice(REVIEW)
            rows.append({"id": i + 1, "title": f"内容 {i + 1}：{rnd.choice(CAMPAIGNS)} 推送",
                         "body": "正文", "summary": "", "author_id": author.id,
                         "audience_id": rnd.randint(1, len(AUDIENCES)),
                         "style_id": rnd.randint(1, len(STYLES)),
                         "campaign_id": rnd.choice([None, 1, 2, 3, 4]), "status": review,
                         "version": 1, "approved_version": 1 if review == "approved" else None,
                         "created_at": now, "updated_at": now})
        db.session.execute(insert(ContentPiece), rows)
    for first in range(0, n_posts, batch):
        rows = []
        for i in range(first, min(first + batch, n_posts)):
            when = start + timedelta(seconds=rnd.randrange(days * 86400))
            rows.append({"piece_id": i // 2 + 1, "channel_id": rnd.choice(channel_ids),
                         "scheduled_at": when, "status": rnd.choice(STATUSES),
                         "reads": rnd.randint(0, 5000), "likes": rnd.randint(0, 300),
                         "comments": rnd.randint(0, 50), "shares": rnd.randint(0, 80),
                         "clicks": 0, "attempt_count": 0, "created_at": now,
                         "updated_at": now})
        db.session.execute(insert(Post), rows)
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def timed(client, url: str, headers: dict, runs: int) -> tuple[list[float], int, int]:
    client.get(url, headers=headers)  # warm-up: caches, prepared statements
    times, cpu = [], []
    size = count = 0
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        res = client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert res.status_code == 200, res.data[:300]
        size = len(res.data)
        count = len(res.get_json()) if res.is_json else res.data.count(b"BEGIN:VEVENT")
    return times, cpu, size, count


def report(label: str, times: list[float], cpu: list[float], size: int, count: int) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label:<34} {count:>6} events {size / 1024:>7.0f} KiB | wall median "
          f"{statistics.median(times):7.1f} ms, p95 {p95:7.1f}, min {times[0]:7.1f} | "
          f"CPU median {statistics.median(cpu):7.1f} ms")


def reference_ms() -> float:
    """CPU time of a fixed pure-Python loop, to compare figures taken on busy or slow machines
    (an idle current x86 core: roughly 30-40 ms)."""
    c0 = time.process_time()
    total = 0
    for i in range(1_000_000):
        total += i
    return (time.process_time() - c0) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="contentops-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    schema = None
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    app = create_app({"TESTING": False, "SECRET_KEY": "bench", "INSTANCE_PATH": str(tmp),
                      "SQLALCHEMY_DATABASE_URI": url, "CONTENTOPS_SCHEDULER": False,
                      "CONTENTOPS_BASE_URL": "http://bench.local"})
    # 20 months of posts around today (100k posts is ~5,000 a month), so the iCal
    # subscription window (last 30 days, next 183) falls inside the data.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=300)
    days = 20 * 30
    month_start = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    grid_start = month_start - timedelta(days=month_start.weekday())
    grid_end = grid_start + timedelta(days=42)
    week_start = month_start + timedelta(days=7 - month_start.weekday())

    def day(value: datetime) -> str:
        return value.strftime("%Y-%m-%dT00:00:00")
    try:
        with app.app_context():
            db.create_all()
            t0 = time.perf_counter()
            seed(args.posts, start, days)
            print(f"reference loop: {reference_ms():.0f} ms CPU "
                  "(idle current x86 core: roughly 30-40 ms)")
            print(f"database: {db.engine.dialect.name}; seeded {args.posts} posts over {days} "
                  f"days in {time.perf_counter() - t0:.1f} s")
            user = db.session.get(User, 1)
            _, token = create_token(db.session, user)
            user.ical_token = "bench-ical-token-" + "x" * 30
            db.session.commit()
            headers = {"Authorization": f"Bearer {token}"}
            client = app.test_client()
            freeze_startup_objects()  # as `contentops serve` does before serving
            month = (f"/api/v1/calendar?start={day(month_start)}&end={day(month_end)}"
                     "&timeZone=Asia/Shanghai")
            report("month feed (JSON)", *timed(client, month, headers, args.runs))
            grid = (f"/api/v1/calendar?start={day(grid_start)}&end={day(grid_end)}"
                    "&timeZone=Asia/Shanghai")
            report("month grid, 6 weeks (JSON)", *timed(client, grid, headers, args.runs))
            report("month feed, one channel", *timed(client, month + "&channel=1", headers,
                                                     args.runs))
            week = (f"/api/v1/calendar?start={day(week_start)}"
                    f"&end={day(week_start + timedelta(days=7))}&timeZone=Asia/Shanghai")
            report("week feed", *timed(client, week, headers, args.runs))
            report("quota overlay, month", *timed(
                client, f"/api/v1/calendar/quota?start={day(month_start)}&end={day(month_end)}"
                "&timeZone=Asia/Shanghai", headers, args.runs))
            ical = "/calendar/feed/" + user.ical_token + ".ics"
            report("iCal subscription (-30 d … +183 d)", *timed(client, ical, {},
                                                                max(3, args.runs // 3)))
    finally:
        if schema:
            db_engine = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with db_engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
