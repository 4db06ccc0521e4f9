"""Feedback benchmark: ingest throughput and the post list under 100k posts / 1M events.

    .venv/bin/python bench/feedback_bench.py            # everything (PostgreSQL if it answers)
    .venv/bin/python bench/feedback_bench.py --quick    # smaller sizes, for a smoke run

Measures, in batches of 1,000 events:
  1. raw SQLite insert rate (sqlite3 executemany into a table shaped like feedback_events,
     same pragmas) — the ceiling on this machine, as a reference;
  2. services.feedback.ingest.ingest on SQLite (validation, idempotency, totals, hourly buckets);
  3. the same on PostgreSQL (CONTENTOPS_TEST_PG_URL or the default test server);
  4. POST /api/v1/feedback over real HTTP on loopback (waitress, bearer token);
  5. the post list: 100k posts with 1M events ingested through the service, first page
     sorted by reads — server time of GET /posts?sort=-reads (and /api/v1/posts).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from contentops import create_app  # noqa: E402
from contentops.extensions import db  # noqa: E402
from contentops.services.feedback import history  # noqa: E402
from contentops.services.feedback.ingest import ingest  # noqa: E402

PG_URL = os.environ.get("CONTENTOPS_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KINDS = ["read"] * 80 + ["like"] * 10 + ["share"] * 5 + ["comment"] * 3 + ["click"] * 2
NOW = datetime.now(UTC)


def make_app(tmp: Path, url: str | None = None):
    return create_app({
        "TESTING": False, "SECRET_KEY": "bench", "INSTANCE_PATH": str(tmp / "instance"),
        "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp / 'bench.db'}",
        "CONTENTOPS_SCHEDULER": False, "WTF_CSRF_ENABLED": False,
    })


def seed_posts(n_posts: int, n_channels: int = 5) -> list[int]:
    """n_posts published posts (n_posts / n_channels pieces), inserted in bulk."""
    conn = db.session.connection()
    conn.execute(text("INSERT INTO users (email, name, password_hash, role, active, "
                      "notification_prefs, created_at) VALUES ('bench@example.com', 'Bench', "
                      "'!', 'admin', true, '{}', :t)"), {"t": NOW})
    for name in ("新会员", "高价值复购", "沉睡用户", "宝妈社群"):
        conn.execute(text("INSERT INTO audiences (name, description, created_at) "
                          "VALUES (:n, '', :t)"), {"n": name, "t": NOW})
    for name in ("亲切", "专业", "幽默", "正式"):
        conn.execute(text("INSERT INTO styles (name, description, guidelines, created_at) "
                          "VALUES (:n, '', '', :t)"), {"n": name, "t": NOW})
    for c in range(n_channels):
        conn.execute(text("INSERT INTO channels (name, kind, color, config, active, "
                          "grace_minutes, max_retries, conflict_window_minutes, "
                          "requires_two_approvals, created_at) VALUES (:n, 'web', '#0d6efd', "
                          "'{}', true, 60, 5, 120, false, :t)"), {"n": f"Channel {c}", "t": NOW})
    n_pieces = max(1, n_posts // n_channels)
    rnd = random.Random(1)
    conn.execute(text(
        "INSERT INTO content_pieces (title, body, summary, audience_id, style_id, author_id, "
        "status, version, approved_version, created_at, updated_at) VALUES (:title, 'Body', '',"
        " :a, :s, 1, 'approved', 1, 1, :t, :t)"),
        [{"title": f"Piece {i}", "a": rnd.randint(1, 4), "s": rnd.randint(1, 4), "t": NOW}
         for i in range(n_pieces)])
    rows = []
    for i in range(n_posts):
        when = NOW - timedelta(minutes=rnd.randint(60, 60 * 24 * 90))
        rows.append({"piece": i // n_channels + 1 if i // n_channels < n_pieces else n_pieces,
                     "channel": i % n_channels + 1, "when": when, "slug": f"p{i}"})
    conn.execute(text(
        "INSERT INTO posts (piece_id, channel_id, scheduled_at, status, attempt_count, "
        "published_at, slug, reads, likes, comments, shares, clicks, created_at, updated_at) "
        "VALUES (:piece, :channel, :when, 'published', 1, :when, :slug, 0, 0, 0, 0, 0, "
        ":when, :when)"), rows)
    db.session.commit()
    return list(range(1, n_posts + 1))


def batches(post_ids: list[int], n_events: int, *, prefix: str, with_time: bool,
            seed: int = 2) -> list[list[dict]]:
    rnd = random.Random(seed)
    out, batch = [], []
    for i in range(n_events):
        event = {"event_id": f"{prefix}-{i}", "post_id": rnd.choice(post_ids),
                 "kind": rnd.choice(KINDS)}
        if with_time:
            # Realistic spread: any second of the last two weeks.
            event["occurred_at"] = (NOW - timedelta(seconds=rnd.randint(0, 14 * 86400))
                                    ).isoformat()
        batch.append(event)
        if len(batch) == 1000:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} events/s ({n:,} events in {seconds:.2f} s)"


# --- 1. raw SQLite ------------------------------------------------------------------------

def raw_sqlite(tmp: Path, n_events: int) -> float:
    conn = sqlite3.connect(tmp / "raw.db")
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE feedback_events (id INTEGER PRIMARY KEY, event_id VARCHAR(200) "
                 "UNIQUE NOT NULL, post_id INTEGER NOT NULL, kind VARCHAR(10), count INTEGER, "
                 "text TEXT, author VARCHAR(200), occurred_at DATETIME, received_at DATETIME, "
                 "source VARCHAR(10))")
    conn.execute("CREATE INDEX ix_post_occ ON feedback_events (post_id, occurred_at)")
    stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [(f"raw-{i}", i % 1000 + 1, "read", 1, None, None, stamp, stamp, "api")
            for i in range(n_events)]
    start = time.perf_counter()
    for i in range(0, n_events, 1000):
        conn.executemany("INSERT INTO feedback_events (event_id, post_id, kind, count, text, "
                         "author, occurred_at, received_at, source) VALUES (?,?,?,?,?,?,?,?,?)",
                         rows[i:i + 1000])
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


# --- 2/3. the service ---------------------------------------------------------------------

def service(app, post_ids: list[int], n_events: int, *, with_time: bool, prefix: str) -> float:
    work = batches(post_ids, n_events, prefix=prefix, with_time=with_time)
    with app.app_context():
        start = time.perf_counter()
        for batch in work:
            ingest(db.session, batch, now=datetime.now(UTC))
            db.session.commit()
        elapsed = time.perf_counter() - start
        # The same batches again: all duplicates, nothing changes (invariant 5).
        again = ingest(db.session, work[0], now=datetime.now(UTC))
        db.session.commit()
        assert again.accepted == 0 and again.duplicates == len(work[0])
    return elapsed


def pg_available() -> bool:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server: skip that part
        return False


# --- 4. HTTP ------------------------------------------------------------------------------

def http_ingest(app, post_ids: list[int], n_events: int) -> float:
    import requests
    from waitress.server import create_server

    from contentops.services.users import create_token

    with app.app_context():
        from contentops.models import User

        user = db.session.get(User, 1)
        _row, token = create_token(db.session, user, "bench")
        db.session.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    work = batches(post_ids, n_events, prefix="http", with_time=True, seed=5)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"http://127.0.0.1:{port}/api/v1/feedback"
    start = time.perf_counter()
    for batch in work:
        r = session.post(url, json={"events": batch}, timeout=60)
        r.raise_for_status()
        assert r.json()["accepted"] == len(batch), r.text[:300]
    elapsed = time.perf_counter() - start
    session.close()
    time.sleep(0.5)  # let waitress's worker finish its last response before closing
    server.close()
    return elapsed


# --- 5. post list -------------------------------------------------------------------------

def post_list(app, repeats: int) -> dict[str, list[float]]:
    from contentops.models import User

    results: dict[str, list[float]] = {}
    with app.app_context():
        user = db.session.get(User, 1)
        uid = user.id
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = str(uid)
        sess["_fresh"] = True
    for label, url in (("page GET /posts?sort=-reads", "/posts/?sort=-reads"),
                       ("API GET /api/v1/posts?sort=-reads", "/api/v1/posts?sort=-reads")):
        r = client.get(url)
        if r.status_code != 200 or (label.startswith("page") and b"data-post-id" not in r.data
                                    and b"<table" not in r.data):
            print(f"  {label}: not available on this build (status {r.status_code})")
            continue
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            r = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200
        results[label] = times
    # The query the list rests on, without rendering: first 50 by reads + the sparklines.
    with app.app_context():
        from sqlalchemy import select

        from contentops.models import Post

        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            ids = db.session.scalars(select(Post.id).order_by(Post.reads.desc(), Post.id.desc())
                                     .limit(50)).all()
            history.trends(db.session, ids, now=datetime.now(UTC))
            times.append((time.perf_counter() - start) * 1000)
            db.session.rollback()
        results["query: top 50 by reads + 14-day trends"] = times
    return results


def bulk_events(post_ids: list[int], n_events: int) -> float:
    """The same rows ingest would write (events, hourly buckets, totals), in bulk."""
    from collections import defaultdict

    from contentops.models import KIND_METRIC

    rnd = random.Random(3)
    conn = db.session.connection()
    raw = conn.connection.dbapi_connection
    start = time.perf_counter()
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hours: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    received = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    chunk = []
    for i in range(n_events):
        pid = rnd.choice(post_ids)
        kind = rnd.choice(KINDS)
        when = NOW - timedelta(seconds=rnd.randint(0, 14 * 86400))
        metric = KIND_METRIC[kind]
        totals[pid][metric] += 1
        hours[(pid, when.strftime("%Y-%m-%d %H:00:00.000000"))][metric] += 1
        chunk.append((f"bulk-{i}", pid, kind, 1, when.strftime("%Y-%m-%d %H:%M:%S.%f"),
                      received, "bench"))
        if len(chunk) == 50_000:
            raw.executemany("INSERT INTO feedback_events (event_id, post_id, kind, count, "
                            "occurred_at, received_at, source) VALUES (?,?,?,?,?,?,?)", chunk)
            chunk = []
    if chunk:
        raw.executemany("INSERT INTO feedback_events (event_id, post_id, kind, count, "
                        "occurred_at, received_at, source) VALUES (?,?,?,?,?,?,?)", chunk)
    metrics = ("reads", "likes", "comments", "shares", "clicks")
    raw.executemany(
        "INSERT INTO metric_buckets (post_id, hour, reads, likes, comments, shares, clicks) "
        "VALUES (?,?,?,?,?,?,?)",
        [(pid, hour, *[v.get(m, 0) for m in metrics]) for (pid, hour), v in hours.items()])
    raw.executemany(
        "UPDATE posts SET reads = ?, likes = ?, comments = ?, shares = ?, clicks = ? "
        "WHERE id = ?", [(*[v.get(m, 0) for m in metrics], pid) for pid, v in totals.items()])
    db.session.commit()
    return time.perf_counter() - start


def list_part(tmp: Path, n_posts: int, n_events: int, repeats: int, via_service: bool) -> None:
    list_app = make_app(tmp / "list")
    with list_app.app_context():
        db.create_all()
        start = time.perf_counter()
        ids = seed_posts(n_posts)
        seeded = time.perf_counter() - start
        if not via_service:
            elapsed = bulk_events(ids, n_events)
            print(f"5. post list data: {n_posts:,} posts seeded in {seeded:.1f} s; "
                  f"{n_events:,} events bulk-loaded in {elapsed:.1f} s")
    if via_service:
        elapsed = service(list_app, ids, n_events, with_time=True, prefix="list")
        print(f"5. post list data: {n_posts:,} posts seeded in {seeded:.1f} s; "
              f"{n_events:,} events through the service: {rate(n_events, elapsed)}")
    for label, times in post_list(list_app, repeats).items():
        times.sort()
        print(f"   {label}: median {statistics.median(times):.1f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms, "
              f"min {times[0]:.1f} ms ({repeats} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-list", action="store_true")
    parser.add_argument("--only-list", action="store_true", help="only part 5")
    parser.add_argument("--list-via-service", action="store_true",
                        help="part 5: ingest the 1M events through the service (slow) instead "
                             "of bulk-loading the same rows")
    args = parser.parse_args()
    n_ingest = 20_000 if args.quick else 100_000
    n_http = 10_000 if args.quick else 50_000
    n_posts = 10_000 if args.quick else 100_000
    n_list_events = 100_000 if args.quick else 1_000_000
    repeats = 20

    print(f"ContentOps feedback bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
          f"python {sys.version.split()[0]}  sqlite {sqlite3.sqlite_version}  "
          f"cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.only_list:
            list_part(tmp, n_posts, n_list_events, repeats, args.list_via_service)
            return 0
        elapsed = raw_sqlite(tmp, n_ingest)
        print(f"1. raw SQLite insert (executemany, batches of 1000): {rate(n_ingest, elapsed)}")

        app = make_app(tmp)
        with app.app_context():
            db.create_all()
            post_ids = seed_posts(1000)
        for with_time, label in ((False, "no occurred_at"), (True, "occurred_at spread")):
            elapsed = service(app, post_ids, n_ingest, with_time=with_time,
                              prefix=f"svc-{with_time}")
            print(f"2. service on SQLite, 1000 posts, {label}: {rate(n_ingest, elapsed)}")
        elapsed = http_ingest(app, post_ids, n_http)
        print(f"4. HTTP POST /api/v1/feedback on SQLite (waitress, loopback): "
              f"{rate(n_http, elapsed)}")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

        if not args.skip_pg and pg_available():
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in PG_URL else "?"
            try:
                pg_app = make_app(tmp / "pg", f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
                with pg_app.app_context():
                    db.create_all()
                    pg_posts = seed_posts(1000)
                for with_time, label in ((False, "no occurred_at"), (True, "occurred_at spread")):
                    elapsed = service(pg_app, pg_posts, n_ingest, with_time=with_time,
                                      prefix=f"pg-{with_time}")
                    print(f"3. service on PostgreSQL, 1000 posts, {label}: "
                          f"{rate(n_ingest, elapsed)}")
                elapsed = http_ingest(pg_app, pg_posts, n_http)
                print(f"4. HTTP POST /api/v1/feedback on PostgreSQL: {rate(n_http, elapsed)}")
                with pg_app.app_context():
                    db.session.remove()
                    db.engine.dispose()
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
        else:
            print("3. PostgreSQL: skipped (no server or --skip-pg)")

        if not args.skip_list:
            list_part(tmp, n_posts, n_list_events, repeats, args.list_via_service)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
