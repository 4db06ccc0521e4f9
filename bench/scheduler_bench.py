"""Scheduler benchmark: lateness of single posts, a burst of posts due in the same second,
and scheduler memory with many scheduled posts. One command:

    .venv/bin/python bench/scheduler_bench.py            # SQLite + PostgreSQL (if reachable)
    .venv/bin/python bench/scheduler_bench.py --quick    # fewer posts
    .venv/bin/python bench/scheduler_bench.py --head-of-line  # one channel hangs
    .venv/bin/python bench/scheduler_bench.py --kill-burst    # SIGKILL mid-burst of 1,000
    .venv/bin/python bench/scheduler_bench.py --mp-mix        # a 公众号 channel in the burst

Everything is real: `contentops scheduler` processes, a webhook receiver in its own process
on 127.0.0.1 (HTTP/1.1 keep-alive, HMAC checked), SQLite in WAL mode or PostgreSQL.
Lateness = receiver arrival time − the post's scheduled time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key"
HANG_SECONDS = 45.0
PG_DEFAULT = os.environ.get("CONTENTOPS_TEST_PG_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --- receiver (runs in its own process) -------------------------------------------------------

def run_receiver(port_file: str) -> None:
    arrivals: dict[str, float] = {}
    counts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                counts[key] = counts.get(key, 0) + 1
                arrivals.setdefault(key, now)
            if self.path.startswith("/hang"):
                time.sleep(HANG_SECONDS)  # a service that takes the post and hangs
            post_id = json.loads(body).get("post_id")
            data = json.dumps({"id": f"r-{post_id}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                data = json.dumps({"arrivals": arrivals, "counts": counts}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_DELETE(self) -> None:  # noqa: N802
            with lock:
                arrivals.clear()
                counts.clear()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


class ReceiverProcess:
    def __init__(self, workdir: Path) -> None:
        port_file = workdir / "receiver.port"
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(port_file)])
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}/hook"

    def stats(self) -> dict:
        with urlopen(self.url) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.url, method="DELETE")).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- database and scheduler processes ---------------------------------------------------------

class Env:
    def __init__(self, db_url: str, workdir: Path, receiver: ReceiverProcess) -> None:
        from contentops import create_app

        self.db_url = db_url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.receiver = receiver
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": SECRET_KEY,
                               "INSTANCE_PATH": str(workdir / "instance"),
                               "CONTENTOPS_SCHEDULER": False})
        self.procs: list[subprocess.Popen] = []

    def setup(self) -> None:
        from contentops.extensions import db
        from contentops.models import User
        from contentops.services import channels as channel_service

        with self.app.app_context():
            db.create_all()
            user = User(email="bench@example.com", name="Bench", role="editor",
                        password_hash="x", notification_prefs={})
            db.session.add(user)
            db.session.flush()
            channel = channel_service.create_channel(
                db.session, {"name": "bench webhook", "kind": "webhook",
                             "config": {"url": self.receiver.url, "secret": "s3cret"}},
                secret_key=SECRET_KEY)
            db.session.commit()
            self.user_id, self.channel_id = user.id, channel.id

    def add_channel(self, name: str, url: str = "", *, kind: str = "webhook", **config) -> int:
        from contentops.extensions import db
        from contentops.services import channels as channel_service

        if kind == "webhook":
            config = {"url": url, "secret": "s3cret", **config}
        with self.app.app_context():
            channel = channel_service.create_channel(
                db.session, {"name": name, "kind": kind, "config": config},
                secret_key=SECRET_KEY)
            db.session.commit()
            channel_id = channel.id
            db.session.remove()
            return channel_id

    def add_posts(self, times: list[datetime], channel_id: int | None = None) -> list[int]:
        """Approved pieces with one post each, in one transaction (Core inserts)."""
        from sqlalchemy import insert, select

        from contentops.extensions import db
        from contentops.models import ContentPiece, Post

        with self.app.app_context():
            now = datetime.now(UTC)
            marker = uuid.uuid4().hex[:8]
            rows = [{"title": f"bench {marker} {i}", "body": f"**Body** {i}", "summary": "",
                     "author_id": self.user_id, "status": "approved", "version": 1,
                     "approved_version": 1, "created_at": now, "updated_at": now}
                    for i in range(len(times))]
            for start in range(0, len(rows), 5000):
                db.session.execute(insert(ContentPiece), rows[start:start + 5000])
            piece_ids = list(db.session.scalars(
                select(ContentPiece.id).where(ContentPiece.title.like(f"bench {marker} %"))
                .order_by(ContentPiece.id)))
            posts = [{"piece_id": pid, "channel_id": channel_id or self.channel_id,
                      "scheduled_at": t,
                      "status": "scheduled", "created_at": now, "updated_at": now,
                      "attempt_count": 0, "reads": 0, "likes": 0, "comments": 0, "shares": 0,
                      "clicks": 0}
                     for pid, t in zip(piece_ids, times, strict=True)]
            for start in range(0, len(posts), 5000):
                db.session.execute(insert(Post), posts[start:start + 5000])
            db.session.commit()
            ids = list(db.session.scalars(
                select(Post.id).join(ContentPiece, ContentPiece.id == Post.piece_id)
                .where(ContentPiece.title.like(f"bench {marker} %"))))
            db.session.remove()
            return ids

    def keys_for(self, ids: list[int]) -> dict[str, datetime]:
        from sqlalchemy import select

        from contentops.extensions import db
        from contentops.models import Post
        from contentops.services.publishing import idempotency_key

        with self.app.app_context():
            posts = db.session.scalars(select(Post).where(Post.id.in_(ids))).all()
            out = {idempotency_key(p): p.scheduled_at for p in posts}
            db.session.remove()
            return out

    def count(self, status: str) -> int:
        from sqlalchemy import func, select

        from contentops.extensions import db
        from contentops.models import Post

        with self.app.app_context():
            n = db.session.scalar(select(func.count(Post.id)).where(Post.status == status))
            db.session.remove()
            return n

    def start_schedulers(self, n: int, workers: int = 16, **extra: str) -> None:
        env = {**os.environ, "CONTENTOPS_DATABASE_URL": self.db_url,
               "CONTENTOPS_SECRET_KEY": SECRET_KEY, "CONTENTOPS_PUBLISH_WORKERS": str(workers),
               "PYTHONPATH": str(ROOT), **extra}
        first = len(self.procs)
        for i in range(first, first + n):
            env_i = {**env, "CONTENTOPS_INSTANCE_PATH": str(self.workdir / f"sched{i}")}
            with open(self.workdir / f"sched{i}.log", "w") as log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "contentops", "scheduler"], env=env_i,
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))
        # Ready when every node has beaten once.
        from sqlalchemy import func, select

        from contentops.extensions import db
        from contentops.models.scheduler import SchedulerNode

        deadline = time.time() + 60
        with self.app.app_context():
            while time.time() < deadline:
                alive = db.session.scalar(select(func.count(SchedulerNode.node_id))
                                          .where(SchedulerNode.stopped_at.is_(None)))
                db.session.rollback()
                if alive >= len(self.procs):
                    break
                time.sleep(0.1)
            db.session.remove()
        time.sleep(0.5)

    def stop_schedulers(self) -> None:
        from sqlalchemy import update

        from contentops.extensions import db
        from contentops.models.scheduler import SchedulerNode

        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []
        with self.app.app_context():
            db.session.execute(update(SchedulerNode).values(stopped_at=datetime.now(UTC)))
            db.session.commit()
            db.session.remove()

    def rss_mb(self) -> list[float]:
        out = []
        for p in self.procs:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        return out

    def dispose(self) -> None:
        from contentops.extensions import db

        with self.app.app_context():
            db.engine.dispose()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def bench_singles(env: Env, n: int) -> dict:
    """n posts, one every 0.6 s, each on its own: lateness percentiles."""
    env.receiver.reset()
    start = datetime.now(UTC) + timedelta(seconds=2)
    ids = env.add_posts([start + timedelta(seconds=0.6 * i) for i in range(n)])
    keys = env.keys_for(ids)
    deadline = time.time() + 2 + 0.6 * n + 15
    while time.time() < deadline:
        if len(env.receiver.stats()["arrivals"]) >= n:
            break
        time.sleep(0.2)
    arrivals = env.receiver.stats()["arrivals"]
    late = [arrivals[k] - t.timestamp() for k, t in keys.items() if k in arrivals]
    return {"n": n, "delivered": len(late), "p50": pct(late, 50), "p99": pct(late, 99),
            "max": max(late) if late else float("nan")}


def bench_burst(env: Env, n: int, due: datetime | None = None) -> dict:
    """n posts due in the same second: time from that second to the last delivery."""
    env.receiver.reset()
    due = due or datetime.now(UTC) + timedelta(seconds=3)
    ids = env.add_posts([due] * n)
    keys = env.keys_for(ids)
    deadline = time.time() + 3 + 300
    stats = env.receiver.stats()
    while time.time() < deadline:
        stats = env.receiver.stats()
        if len(stats["arrivals"]) >= n:
            break
        time.sleep(0.1)
    arrivals = [stats["arrivals"][k] for k in keys if k in stats["arrivals"]]
    dup = sum(c - 1 for k, c in stats["counts"].items() if k in keys)
    span = max(arrivals) - due.timestamp() if arrivals else float("nan")
    first = min(arrivals) - due.timestamp() if arrivals else float("nan")
    # Wait for the database to agree (completions are written in batches).
    for _ in range(100):
        if env.count("published") >= len(ids):
            break
        time.sleep(0.1)
    return {"n": n, "delivered": len(arrivals), "duplicates": dup, "first": first,
            "last": span, "rate": len(arrivals) / span if span else float("nan")}


def bench_head_of_line(db_url: str, workdir: Path, receiver: ReceiverProcess,
                       n_hang: int = 20, n_other: int = 50) -> str:
    """n_hang posts on a channel whose service takes each post and hangs (45 s); n_other
    posts on another channel, one every 0.1 s from 2 s later: that channel's lateness."""
    env = Env(db_url, workdir, receiver)
    env.setup()
    hang = env.add_channel("bench hanging", receiver.url.replace("/hook", "/hang"),
                           timeout_s=60)
    env.start_schedulers(1)
    try:
        receiver.reset()
        now = datetime.now(UTC)
        env.add_posts([now] * n_hang, channel_id=hang)
        start = now + timedelta(seconds=2)
        ids = env.add_posts([start + timedelta(seconds=0.1 * i) for i in range(n_other)])
        keys = env.keys_for(ids)
        deadline = time.time() + 2 + 0.1 * n_other + 30
        while time.time() < deadline:
            if len([k for k in env.receiver.stats()["arrivals"] if k in keys]) >= n_other:
                break
            time.sleep(0.2)
        arrivals = env.receiver.stats()["arrivals"]
        late = [arrivals[k] - t.timestamp() for k, t in keys.items() if k in arrivals]
        return (f"head-of-line: {n_hang} posts hanging on one channel; the other channel's "
                f"{n_other} posts: lateness p50 {pct(late, 50) * 1000:.0f} ms, p99 "
                f"{pct(late, 99) * 1000:.0f} ms, max {max(late) * 1000:.0f} ms "
                f"({len(late)}/{n_other} delivered)")
    finally:
        for p in env.procs:
            p.kill()  # the hanging sends would hold a graceful stop for 45 s
            p.wait()
        env.procs = []
        env.dispose()


def bench_kill_burst(db_url: str, workdir: Path, receiver: ReceiverProcess,
                     n: int = 1000, lease: float | None = None) -> str:
    """SIGKILL the scheduler mid-burst of n posts, start another one at once: seconds from
    the kill until every post is settled (published), lost posts, same-key re-sends. Every
    timer at its default (lease 120 s, heartbeat 2 s, reaper 2 s) unless `lease` is given."""
    from contentops.services import publishing

    env = Env(db_url, workdir, receiver)
    env.setup()
    timers = {} if lease is None else {"CONTENTOPS_LEASE_SECONDS": str(lease)}
    lease = lease or publishing.DEFAULT_LEASE_SECONDS
    env.start_schedulers(1, **timers)
    try:
        receiver.reset()
        ids = env.add_posts([datetime.now(UTC) + timedelta(seconds=1)] * n)
        keys = env.keys_for(ids)
        while len(env.receiver.stats()["arrivals"]) < n // 5:
            time.sleep(0.01)
        victim = env.procs.pop()
        victim.kill()  # SIGKILL: leases left behind
        killed = time.time()
        victim.wait()
        at_kill = len(env.receiver.stats()["arrivals"])
        env.start_schedulers(1, **timers)
        settled = float("nan")
        while time.time() < killed + 120:
            if env.count("published") >= n:
                settled = time.time() - killed
                break
            time.sleep(0.1)
        stats = env.receiver.stats()
        lost = sum(1 for k in keys if k not in stats["arrivals"])
        resent = sum(c - 1 for k, c in stats["counts"].items() if k in keys)
        return (f"kill-burst: SIGKILL after {at_kill}/{n} delivered (lease {lease:.0f} s): "
                f"every post settled {settled:.1f} s after the kill, lost {lost}, "
                f"re-sent with the same key {resent}, published {env.count('published')}/{n}")
    finally:
        env.stop_schedulers()
        env.dispose()


def bench_mp_mix(db_url: str, workdir: Path, receiver: ReceiverProcess, *, n_hook: int,
                 n_mp: int) -> list[str]:
    """The burst with and without a 公众号 channel in it: n_hook webhook posts due in one
    second, then again with n_mp 公众号 articles (publish mode, one article each, against the
    loopback fake WeChat API: token, image and cover uploads, draft/add, freepublish/submit,
    then the hand-off tracker polling freepublish/get) due in the same second."""
    from tests.fakes.wechat_mp import FakeWeChatMP

    fake = FakeWeChatMP().start()
    env = Env(db_url, workdir, receiver)
    env.setup()
    mp_id = env.add_channel("bench 公众号", kind="wechat_mp", app_id=fake.app_id,
                            app_secret=fake.secret, account_type="service", mode="publish",
                            api_base=fake.base, default_thumb=f"{fake.base}/img/cover.png")
    env.start_schedulers(1)
    lines = []
    try:
        alone = bench_burst(env, n_hook)
        lines.append(f"burst of {n_hook} webhook posts alone: all delivered "
                     f"{alone['last']:.2f} s after due time, {alone['rate']:.0f} posts/s, "
                     f"duplicates {alone['duplicates']}")
        print(lines[-1], flush=True)
        due = datetime.now(UTC) + timedelta(seconds=4)
        mp_ids = env.add_posts([due] * n_mp, channel_id=mp_id)
        mixed = bench_burst(env, n_hook, due=due)
        handed = _wait_for(lambda: fake.calls.count("/cgi-bin/freepublish/submit") >= n_mp, 120)
        handed_s = time.time() - due.timestamp() if handed else float("nan")
        # WeChat finishes publishing (publish_status 0) now; the tracker's next look (every
        # CONTENTOPS_TRACK_SECONDS, 15 s) marks the posts published with their URLs.
        finished = time.time()
        for publish_id in list(fake.publishes):
            fake.finish_publish(publish_id)
        done = _wait_for(lambda: env.count("published") >= 2 * n_hook + n_mp, 120)
        done_s = time.time() - finished if done else float("nan")
        drafts = fake.calls.count("/cgi-bin/draft/add")
        lines.append(f"same burst + {n_mp} 公众号 articles due in the same second: webhook "
                     f"posts all delivered {mixed['last']:.2f} s after due time, "
                     f"{mixed['rate']:.0f} posts/s, duplicates {mixed['duplicates']}; "
                     f"公众号: all submitted {handed_s:.2f} s after due time, all published "
                     f"{done_s:.1f} s after WeChat finished (tracker polls freepublish/get); "
                     f"drafts "
                     f"{drafts} for {len(mp_ids)} articles")
        print(lines[-1], flush=True)
    finally:
        env.stop_schedulers()
        env.dispose()
        fake.stop()
    return lines


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def scenario(label: str, db_url: str, workdir: Path, receiver: ReceiverProcess, *,
             schedulers: int, singles: int, burst: int, memory_posts: int) -> list[str]:
    lines = []
    env = Env(db_url, workdir, receiver)
    env.setup()
    env.start_schedulers(schedulers)
    try:
        if singles:
            s = bench_singles(env, singles)
            lines.append(f"{label:<28} single posts (n={s['n']}): lateness p50 "
                         f"{s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, "
                         f"max {s['max'] * 1000:.0f} ms ({s['delivered']}/{s['n']} delivered)")
            print(lines[-1], flush=True)
        if burst:
            b = bench_burst(env, burst)
            lines.append(f"{label:<28} burst of {b['n']} due at once: all delivered "
                         f"{b['last']:.2f} s after due time (first {b['first'] * 1000:.0f} ms), "
                         f"{b['rate']:.0f} posts/s, duplicates {b['duplicates']}, "
                         f"delivered {b['delivered']}/{b['n']}")
            print(lines[-1], flush=True)
        if memory_posts:
            base = env.rss_mb()
            env.stop_schedulers()
            far = datetime.now(UTC) + timedelta(days=7)
            env.add_posts([far + timedelta(seconds=i) for i in range(memory_posts)])
            env.start_schedulers(schedulers)
            time.sleep(3)
            loaded = env.rss_mb()
            lines.append(f"{label:<28} scheduler RSS: {statistics.mean(base):.0f} MB after "
                         f"the runs above; {statistics.mean(loaded):.0f} MB right after a "
                         f"restart with {memory_posts:,} more posts scheduled")
            print(lines[-1], flush=True)
    finally:
        env.stop_schedulers()
        env.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer posts, faster")
    parser.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL URL ('' to skip)")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--memory-posts", type=int, default=100_000)
    parser.add_argument("--head-of-line", action="store_true",
                        help="only: one channel hangs; the other channel's lateness")
    parser.add_argument("--kill-burst", action="store_true",
                        help="only: SIGKILL a scheduler mid-burst of 1,000 posts")
    parser.add_argument("--mp-mix", action="store_true",
                        help="only: the burst with and without 公众号 articles in it")
    parser.add_argument("--mp-posts", type=int, default=100)
    parser.add_argument("--lease", type=float, default=None,
                        help="--kill-burst: lease seconds (default: the product's, 120)")
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
        return
    if args.mp_mix:
        workdir = Path(tempfile.mkdtemp(prefix="contentops-bench-"))
        receiver = ReceiverProcess(workdir)
        try:
            lines = bench_mp_mix(f"sqlite:///{workdir / 'mix.db'}", workdir / "mix", receiver,
                                 n_hook=500 if args.quick else args.burst,
                                 n_mp=args.mp_posts)
        finally:
            receiver.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        print("\n".join(["", "Summary"] + lines))
        return
    if args.head_of_line or args.kill_burst:
        workdir = Path(tempfile.mkdtemp(prefix="contentops-bench-"))
        receiver = ReceiverProcess(workdir)
        try:
            lines = []
            if args.head_of_line:
                lines.append(bench_head_of_line(f"sqlite:///{workdir / 'hol.db'}",
                                                workdir / "hol", receiver))
                print(lines[-1], flush=True)
            if args.kill_burst:
                lines.append(bench_kill_burst(f"sqlite:///{workdir / 'kill.db'}",
                                              workdir / "kill", receiver, lease=args.lease))
                print(lines[-1], flush=True)
        finally:
            receiver.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.quick:
        args.burst, args.singles, args.memory_posts = 500, 10, 10_000
    workdir = Path(tempfile.mkdtemp(prefix="contentops-bench-"))
    receiver = ReceiverProcess(workdir)
    results: list[str] = []
    try:
        results += scenario("SQLite, 1 scheduler", f"sqlite:///{workdir / 'bench.db'}",
                            workdir / "sqlite", receiver, schedulers=1, singles=args.singles,
                            burst=args.burst, memory_posts=args.memory_posts)
        if args.pg:
            results += pg_scenarios(args, workdir, receiver)
    finally:
        receiver.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(["", "Summary"] + results))


def pg_scenarios(args, workdir: Path, receiver: ReceiverProcess) -> list[str]:
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL skipped: {str(exc).splitlines()[0]}")
        return []
    lines = []
    for n in (1, 3):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.pg else "?"
        url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
        try:
            lines += scenario(f"PostgreSQL, {n} scheduler{'s' if n > 1 else ''}", url,
                              workdir / f"pg{n}", receiver, schedulers=n,
                              singles=args.singles if n == 1 else 0, burst=args.burst,
                              memory_posts=args.memory_posts if n == 1 else 0)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    return lines


if __name__ == "__main__":
    main()
