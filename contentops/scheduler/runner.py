"""APScheduler wiring (DESIGN.md §4). The posts table says what is due; APScheduler (3.x,
in-memory job store) only drives timing:

- watch (every 0.5 s): an index-only MIN() over due times; re-arms the dispatch job at the next
  due time, so posts scheduled or moved by any process are picked up without signalling;
- dispatch: a date job at the next due time (claims, publishes, records);
- sweep (every 30 s): a safety dispatch in case a timer was lost;
- reaper (every 2 s): posts whose lease expired, or whose node stopped beating → `unknown`
  (then reconcile at once);
- reconcile (every 10 s): `unknown` → published / re-sent / missed / a person; manual deadlines;
- heartbeat (every 2 s, on a thread of its own so long jobs never delay it): liveness for
  /api/v1/health, the page banner and the other nodes' reapers;
- metrics (every 30 min): pull reads/likes/… from channels that report them (one node per
  period, through a job_runs row);
- daily stats (every 30 min, one node per channel and day): yesterday's figures and comments
  of channels that publish them once a day (公众号), from 08:00 Beijing time;
- statistics (daily, one node): refresh the query planner's statistics (SQLite ANALYZE).

No per-post jobs exist, so 100k scheduled posts cost the scheduler nothing in memory.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPool
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import sessionmaker

from ..extensions import db
from ..models import Channel
from ..services import publishing, system
from ..services.channels import build_adapter
from ..services.feedback.email_tracking import tracking_key
from ..timeutil import utcnow
from . import jobs

log = logging.getLogger(__name__)

_started_lock = threading.Lock()
_started: SchedulerRunner | None = None


def _setting(app: Flask, name: str, default: Any, cast: type) -> Any:
    value = app.config.get(name)
    if value is None:
        value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        return default


class SchedulerRunner:
    def __init__(self, app: Flask, *, node_id: str | None = None) -> None:
        self.app = app
        self.node_id = node_id or system.new_node_id()
        with app.app_context():
            engine = db.engine
        self.session_factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.secret_key = app.config["SECRET_KEY"]
        self.base_url = app.config.get("CONTENTOPS_BASE_URL", "")
        workers = _setting(app, "CONTENTOPS_PUBLISH_WORKERS", 16, int)
        self.poll_seconds = _setting(app, "CONTENTOPS_POLL_SECONDS", 0.5, float)
        self.sweep_seconds = _setting(app, "CONTENTOPS_SWEEP_SECONDS", 30.0, float)
        self.reap_seconds = _setting(app, "CONTENTOPS_REAP_SECONDS", 2.0, float)
        self.reconcile_seconds = _setting(app, "CONTENTOPS_RECONCILE_SECONDS", 10.0, float)
        self.track_seconds = _setting(app, "CONTENTOPS_TRACK_SECONDS", 15.0, float)
        beat = _setting(app, "CONTENTOPS_HEARTBEAT_SECONDS", publishing.HEARTBEAT_SECONDS,
                        float)
        # Other nodes take a node silent for HEARTBEAT_STALE for dead and reap its posts:
        # never beat so rarely that a live node could look like that.
        most = publishing.HEARTBEAT_STALE.total_seconds() / 4
        if beat > most:
            log.warning("CONTENTOPS_HEARTBEAT_SECONDS=%s is too long for other nodes to tell "
                        "this one is alive; using %s", beat, most)
        self.heartbeat_seconds = min(max(0.2, beat), most)
        self.metrics_seconds = max(
            1.0, _setting(app, "CONTENTOPS_METRICS_SECONDS", 1800.0, float))
        self.daily_stats_seconds = max(
            1.0, _setting(app, "CONTENTOPS_DAILY_STATS_SECONDS", 1800.0, float))
        self.daily_stats_hour = min(23, max(0, _setting(
            app, "CONTENTOPS_DAILY_STATS_HOUR", 8, int)))
        # One shared HTTP session: keep-alive connections are reused across posts and threads.
        self.http = requests.Session()
        # The dispatcher runs up to 2 × workers sends at once (workers per channel).
        adapter = HTTPAdapter(pool_connections=32, pool_maxsize=max(2 * workers, 10))
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.lease_seconds = _setting(app, "CONTENTOPS_LEASE_SECONDS", 120.0, float)
        self.dispatcher = publishing.Dispatcher(
            self.session_factory, self.adapter_for, node=self.node_id, clock=utcnow,
            workers=workers,
            lease_seconds=self.lease_seconds,
            policy=publishing.RetryPolicy(
                base_seconds=_setting(app, "CONTENTOPS_RETRY_BASE_SECONDS", 30.0, float)),
            team_tz=app.config.get("CONTENTOPS_TIMEZONE", "Asia/Shanghai"),
            base_url=self.base_url)
        self.scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": APThreadPool(8), "beat": APThreadPool(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._armed_at: datetime | None = None
        self._hold_until: datetime | None = None
        self._arm_lock = threading.Lock()
        self.running = False

    def adapter_for(self, channel: Channel):
        adapter = build_adapter(channel, self.secret_key, http=self.http)
        # A send must end well before its lease does, or the reaper could take a live send
        # for a lost one (channels/_http.py).
        adapter.send_budget_s = min(adapter.send_budget_s, 0.75 * self.lease_seconds)
        return adapter

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> SchedulerRunner:
        for name in ("apscheduler.executors.default", "apscheduler.scheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)
        now = utcnow()
        sch = self.scheduler
        sch.add_job(self.beat, "interval", seconds=self.heartbeat_seconds, id="heartbeat",
                    next_run_time=now, executor="beat")
        sch.add_job(self.reap, "interval", seconds=self.reap_seconds, id="reaper",
                    next_run_time=now)
        sch.add_job(self.watch, "interval", seconds=self.poll_seconds, id="watch",
                    next_run_time=now + timedelta(milliseconds=50))
        sch.add_job(self.dispatch, "interval", seconds=self.sweep_seconds, id="sweep",
                    max_instances=2)
        sch.add_job(self.reconcile, "interval", seconds=self.reconcile_seconds, id="reconcile",
                    next_run_time=now + timedelta(seconds=1))
        sch.add_job(self.track, "interval", seconds=self.track_seconds, id="track",
                    next_run_time=now + timedelta(seconds=2))
        sch.add_job(self.collect_metrics, "interval", seconds=self.metrics_seconds,
                    id="metrics", next_run_time=now + timedelta(
                        seconds=min(60.0, self.metrics_seconds)))
        sch.add_job(self.pull_daily_stats, "interval", seconds=self.daily_stats_seconds,
                    id="daily_stats", next_run_time=now + timedelta(
                        seconds=min(90.0, self.daily_stats_seconds)))
        sch.add_job(self.refresh_statistics, "interval", hours=1, id="statistics",
                    next_run_time=now + timedelta(seconds=30))
        sch.start()
        self.running = True
        log.info("scheduler %s started", self.node_id)
        return self

    def shutdown(self) -> None:
        if not self.running:
            return
        self.running = False
        self.scheduler.shutdown(wait=False)
        # Keep beating while in-flight sends finish: a node whose heartbeat goes stale is
        # taken for dead and its posts reaped, which would re-send posts still being sent.
        draining = threading.Event()
        beating = threading.Thread(target=self._beat_until, args=(draining,),
                                   name="heartbeat-drain", daemon=True)
        beating.start()
        try:
            self.dispatcher.stop()  # finish and record in-flight sends
        finally:
            draining.set()
            beating.join(5)
        session = self.session_factory()
        try:
            system.node_stopped(session, self.node_id, now=utcnow())
        except Exception:  # noqa: BLE001 - the database may be gone at shutdown
            log.warning("could not record scheduler stop", exc_info=True)
        finally:
            session.close()
        self.http.close()

    def _beat_until(self, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - keep trying until the sends are done
                log.warning("heartbeat while draining failed", exc_info=True)

    # --- jobs ------------------------------------------------------------------------
    def beat(self) -> None:
        jobs.heartbeat(self.session_factory, self.node_id, utcnow())

    def reap(self) -> None:
        reaped = jobs.reap(self.session_factory, self.node_id, utcnow())
        if reaped:
            log.warning("%d posts were left mid-publish (lease ran out or their scheduler "
                        "stopped): now unknown", len(reaped))  # type: ignore[arg-type]
            # Settle them now rather than at the next reconcile tick.
            self.reconcile()

    def reconcile(self) -> None:
        now = utcnow()
        jobs.reconcile(self.session_factory, self.node_id, now, self.adapter_for,
                       self.base_url)
        jobs.expire_staff_tasks(self.session_factory, now, tracking_key(self.secret_key))

    def track(self) -> object:
        """Follow posts handed to a service or to staff (handoff.track_due)."""
        return jobs.track_handoffs(self.session_factory, self.node_id, utcnow(),
                                   self.adapter_for, self.base_url)

    def collect_metrics(self) -> dict[int, int] | None:
        now = utcnow()
        # Periods are numbered from the epoch, so every node agrees on the current one.
        period = str(int(now.timestamp() // self.metrics_seconds))
        return jobs.collect_metrics(self.session_factory, self.node_id, now, period,
                                    self.adapter_for)

    def pull_daily_stats(self) -> object:
        return jobs.pull_daily_stats(self.session_factory, self.node_id, utcnow(),
                                     self.adapter_for, self.daily_stats_hour)

    def refresh_statistics(self) -> object:
        # Hourly ticks; the job_runs row for the day lets one of them, on one node, work.
        return jobs.refresh_statistics(self.session_factory, self.node_id, utcnow())

    def watch(self) -> None:
        """Cheap poll: arm the dispatch job at the next due time (or run it now)."""
        due = jobs.next_due(self.session_factory)
        if due is None:
            return
        now = utcnow()
        if self._hold_until is not None and now < self._hold_until:
            due = max(due, self._hold_until)  # a rate limit: nothing to do before then
        if due <= now:
            if self.dispatcher.busy:
                self.dispatcher.kick()  # a run in progress claims it alongside its sends
            else:
                self._arm(now)
        elif due != self._armed_at:
            self._arm(due)

    def _arm(self, when: datetime) -> None:
        with self._arm_lock:
            self._armed_at = when
            self.scheduler.add_job(self.dispatch, "date", run_date=when, id="dispatch",
                                   replace_existing=True, max_instances=3)

    def dispatch(self) -> publishing.DispatchStats | None:
        try:
            stats = self.dispatcher.run()
        except Exception:
            log.exception("dispatch failed")
            return None
        if stats is not None:
            self._hold_until = stats.wake_at
            if stats.wake_at is not None:
                self._arm(stats.wake_at)
        return stats


class _NoScheduler:
    running = False

    def shutdown(self) -> None:
        return None


def _refuse_reason(app: Flask) -> str | None:
    """Why an embedded scheduler must not start in this process, if it must not."""
    # Under the debug reloader the code runs twice: in the watcher (no WERKZEUG_RUN_MAIN)
    # and in the serving child (WERKZEUG_RUN_MAIN=true). Only the child may start one.
    if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return "debug mode outside the reloader's serving process"
    if "gunicorn.arbiter" in sys.modules or "gunicorn" in os.environ.get("SERVER_SOFTWARE", ""):
        return "gunicorn worker (run `contentops scheduler` instead)"
    return None


def start_embedded(app: Flask) -> SchedulerRunner | _NoScheduler:
    """Start the scheduler inside this web process, at most once per process."""
    global _started
    reason = _refuse_reason(app)
    if reason is not None:
        log.warning("not starting the embedded scheduler: %s", reason)
        return _NoScheduler()
    with _started_lock:
        if _started is not None and _started.running:
            log.warning("the embedded scheduler is already running in this process")
            return _NoScheduler()
        _started = SchedulerRunner(app).start()
        return _started


def run_forever(app: Flask) -> None:
    """`contentops scheduler`: run until SIGTERM/SIGINT, then finish in-flight sends."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def _stop(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner = SchedulerRunner(app).start()
    print(f"scheduler {runner.node_id} running", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runner.shutdown()
