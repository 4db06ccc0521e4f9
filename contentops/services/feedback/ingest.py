"""Feedback ingest: events in, post totals and hourly buckets up, each event counted once.

Every way in (see the package docstring) ends here. Invariant 5: an event id is counted
once (`ingest`); pulled totals never make a counter go backwards (`apply_pulled_totals`).

How a batch is written (one transaction, writes only after all reads):
1. validate every event on its own (index + reason for each rejected one);
2. resolve addresses (post id, or channel id + external id) with two IN queries;
3. `INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING event_id` — only the rows this
   transaction really inserted are counted, so a concurrent batch carrying the same ids
   cannot make us count twice;
4. `UPDATE posts SET reads = reads + :n …` per touched post and an upsert of the hourly
   buckets with `x = x + excluded.x`: the database adds, so concurrent batches never lose
   updates. Rows are written in sorted order so two PostgreSQL transactions cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ...errors import N_
from ...models import (
    FEEDBACK_KINDS,
    KIND_METRIC,
    METRICS,
    FeedbackEvent,
    MetricBucket,
    Post,
)
from ...timeutil import parse_iso

MAX_BATCH = 1000
MAX_COUNT = 1_000_000
MAX_TEXT = 5000
# Clocks differ; an event a little "in the future" is accepted, far ahead is a mistake.
FUTURE_SLACK = timedelta(hours=1)

_events = FeedbackEvent.__table__
_posts = Post.__table__
_buckets = MetricBucket.__table__


@dataclass(frozen=True)
class Rejection:
    index: int
    message: str  # msgid
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # post id -> metric -> amount added (or that would be added, for a dry run).
    changes: dict[int, dict[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class _Event:
    index: int
    event_id: str
    kind: str
    count: int
    occurred_at: datetime
    text: str | None
    author: str | None
    post_id: int | None
    channel_id: int | None
    external_id: str | None


def _dialect_insert(session: Session):
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int subclass and must not pass


def _check(index: int, raw: Any, now: datetime, only_channel: int | None,
           times: dict[str, datetime | None]) -> _Event | Rejection:
    """Validate one event. Returns the normalised event or the reason it was refused."""
    if not isinstance(raw, dict):
        return Rejection(index, N_("Each event must be a JSON object."))
    event_id = raw.get("event_id")
    if _is_int(event_id):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        return Rejection(index, N_("event_id is required: text of at most 200 characters."))
    kind = raw.get("kind")
    if kind not in FEEDBACK_KINDS:
        return Rejection(index, N_("kind must be one of: %(kinds)s."),
                         {"kinds": ", ".join(FEEDBACK_KINDS)})
    count = raw.get("count", 1)
    if count is None:
        count = 1
    if not _is_int(count) or not 1 <= count <= MAX_COUNT:
        return Rejection(index, N_("count must be a whole number from 1 to %(max)s."),
                         {"max": MAX_COUNT})
    text, author = raw.get("text"), raw.get("author")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        return Rejection(index, N_("text must be text of at most %(max)s characters."),
                         {"max": MAX_TEXT})
    if author is not None and (not isinstance(author, str) or len(author) > 200):
        return Rejection(index, N_("author must be text of at most 200 characters."))
    occurred = raw.get("occurred_at")
    if occurred is None or occurred == "":
        occurred_at = now
    else:
        # Events of one batch often share timestamps: parse each distinct text once.
        occurred_at = times.get(occurred) if isinstance(occurred, str) else None
        if occurred_at is None and isinstance(occurred, str) and occurred not in times:
            occurred_at = times[occurred] = _parse_time(occurred)
        if occurred_at is None:
            return Rejection(index, N_(
                "occurred_at must be an ISO 8601 time with a UTC offset, "
                "e.g. 2026-11-11T20:00:00+08:00."))
        if occurred_at > now + FUTURE_SLACK:
            return Rejection(index, N_("occurred_at is in the future."))
    post_id, channel_id, external_id = (raw.get("post_id"), raw.get("channel_id"),
                                        raw.get("external_id"))
    if post_id is not None:
        if not _is_int(post_id) or post_id < 1:
            return Rejection(index, N_("post_id must be a positive whole number."))
    else:
        if channel_id is None and only_channel is not None:
            channel_id = only_channel
        if not _is_int(channel_id) or channel_id < 1:
            return Rejection(index, N_("Give post_id, or channel_id and external_id."))
        if _is_int(external_id):
            external_id = str(external_id)
        if not isinstance(external_id, str) or not external_id.strip() \
                or len(external_id) > 255:
            return Rejection(index, N_("Give post_id, or channel_id and external_id."))
    if channel_id is not None and not _is_int(channel_id):
        return Rejection(index, N_("channel_id must be a positive whole number."))
    if only_channel is not None and channel_id is not None and channel_id != only_channel:
        return Rejection(index, N_("This hook only accepts events for its own channel."))
    return _Event(index, event_id.strip(), kind, count, occurred_at,
                  text if text else None, author.strip() if author else None,
                  post_id, channel_id if _is_int(channel_id) else only_channel,
                  external_id.strip() if isinstance(external_id, str) else None)


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time with offset, in UTC; None if it is not one."""
    try:
        # fromisoformat takes the usual forms ('Z' included) directly; parse_iso is the
        # forgiving path (surrounding spaces, a lower-case 'z').
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            return parse_iso(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return None
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _in(session: Session, column, values):
    """`column IN (values)`; on PostgreSQL `= ANY(array)`: one parameter, not a thousand."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import Integer, String, any_

        kind = Integer if column.type.python_type is int else String
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(kind)))
    return column.in_(list(values))


def _resolve(session: Session, events: list[_Event]) -> dict[int, int]:
    """Map event index -> post id for every event whose post exists (two IN queries)."""
    by_id = {e.post_id for e in events if e.post_id is not None}
    found: dict[int, int] = {}
    if by_id and session.get_bind().dialect.name == "sqlite":
        # The common case (a batch addressed by post id), without compiling an expanding
        # IN of a thousand parameters each time.
        found = dict(session.connection().exec_driver_sql(
            f"SELECT id, channel_id FROM posts WHERE id IN ({','.join('?' * len(by_id))})",
            tuple(by_id)).all())
    elif by_id:
        found = dict(session.execute(
            select(_posts.c.id, _posts.c.channel_id).where(_in(session, _posts.c.id, by_id))
        ).all())
    pairs = {(e.channel_id, e.external_id) for e in events if e.post_id is None}
    external: dict[tuple[int, str], int] = {}
    if pairs:
        rows = session.execute(
            select(_posts.c.channel_id, _posts.c.external_id, _posts.c.id)
            .where(tuple_(_posts.c.channel_id, _posts.c.external_id).in_(list(pairs)))
            .order_by(_posts.c.id.desc())).all()
        # Lowest post id wins if a service reused an external id.
        external = {(c, x): pid for c, x, pid in rows}
    resolved: dict[int, int] = {}
    for e in events:
        if e.post_id is not None:
            channel = found.get(e.post_id)
            if channel is not None and (e.channel_id is None or e.channel_id == channel):
                resolved[e.index] = e.post_id
        else:
            pid = external.get((e.channel_id, e.external_id))
            if pid is not None:
                resolved[e.index] = pid
    return resolved


def _hour(value: datetime) -> datetime:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(minute=0, second=0, microsecond=0)


def ingest(session: Session, events: Sequence[Any], *, now: datetime, source: str = "api",
           only_channel: int | None = None, dry_run: bool = False) -> IngestResult:
    """Count a batch of feedback events; see the module docstring for the write order.

    `only_channel` restricts a batch to one channel's posts (signed inbound hooks).
    `dry_run` reports what would change (CSV preview) and writes nothing.
    The caller commits (or rolls back) the session.
    """
    if len(events) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} events per batch")
    result = IngestResult()
    now = now.astimezone(UTC)
    valid: list[_Event] = []
    times: dict[str, datetime | None] = {}
    for index, raw in enumerate(events):
        checked = _check(index, raw, now, only_channel, times)
        if isinstance(checked, Rejection):
            result.rejected.append(checked)
        else:
            valid.append(checked)
    resolved = _resolve(session, valid) if valid else {}
    rows: dict[str, tuple[_Event, int]] = {}
    for e in valid:
        post_id = resolved.get(e.index)
        if post_id is None:
            if e.post_id is not None and only_channel is not None:
                result.rejected.append(Rejection(e.index, N_(
                    "No post with id %(id)s on this channel."), {"id": e.post_id}))
            elif e.post_id is not None:
                result.rejected.append(Rejection(e.index, N_("No post with id %(id)s."),
                                                 {"id": e.post_id}))
            else:
                result.rejected.append(Rejection(e.index, N_(
                    "No post with external id %(external_id)s on channel %(channel_id)s."),
                    {"external_id": e.external_id, "channel_id": e.channel_id}))
            continue
        if e.event_id in rows:
            result.duplicates += 1  # the same id twice in one batch
            continue
        rows[e.event_id] = (e, post_id)
    result.rejected.sort(key=lambda r: r.index)
    if not rows:
        return result

    ordered = sorted(rows)  # sorted writes: no deadlocks between concurrent batches
    if dry_run:
        existing = set(session.scalars(
            select(_events.c.event_id).where(_in(session, _events.c.event_id, ordered))))
        inserted = [eid for eid in ordered if eid not in existing]
    elif session.get_bind().dialect.name == "sqlite":
        inserted = _insert_sqlite(session, ordered, rows, now, source)
    else:
        inserted = _insert_postgres(session, ordered, rows, now, source)
    result.accepted = len(inserted)
    result.duplicates += len(rows) - len(inserted)

    # Amounts per metric as lists in METRICS order: a batch touches up to a thousand posts
    # and hours, and small lists are much cheaper to build and add to than dicts.
    totals: dict[int, list[int]] = {}
    hours: dict[tuple[int, int], list[int]] = {}  # (post id, hours since 1970 UTC)
    slot_of, n_metrics = _METRIC_SLOT, len(METRICS)
    for eid in inserted:
        e, post_id = rows[eid]
        slot = slot_of[e.kind]
        amounts = totals.get(post_id)
        if amounts is None:
            amounts = totals[post_id] = [0] * n_metrics
        amounts[slot] += e.count
        key = (post_id, int(e.occurred_at.timestamp()) // 3600)
        amounts = hours.get(key)
        if amounts is None:
            amounts = hours[key] = [0] * n_metrics
        amounts[slot] += e.count
    result.changes = {pid: {m: n for m, n in zip(METRICS, t, strict=True) if n}
                      for pid, t in totals.items()}
    if not dry_run:
        _add_amounts(session, totals, hours)
    return result


# Event kind -> position of its metric in METRICS (and in the amount lists).
_METRIC_SLOT: dict[str, int] = {kind: METRICS.index(metric)
                                for kind, metric in KIND_METRIC.items()}


def _sqlite_time(value: datetime) -> str:
    # The exact text SQLAlchemy's SQLite DATETIME writes, so comparisons stay consistent.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    out = value.replace(tzinfo=None).isoformat(" ")  # much faster than strftime
    return out if len(out) == 26 else out + ".000000"


_HOUR_TEXT: dict[int, str] = {}


def _hour_text(hour: int) -> str:
    """The stored SQLite text of an hour given as hours since 1970 (memoised: hours repeat
    across batches)."""
    out = _HOUR_TEXT.get(hour)
    if out is None:
        if len(_HOUR_TEXT) > 50_000:
            _HOUR_TEXT.clear()
        out = _HOUR_TEXT[hour] = _sqlite_time(datetime.fromtimestamp(hour * 3600, UTC))
    return out


def _sqlite_write_lock(session: Session):
    """Take SQLite's write lock before reading which event ids exist.

    SQLite has one writer at a time, so inside this transaction nobody else can insert:
    "select the ids that exist, insert the others" is then exact, and much faster than a
    RETURNING insert through the ORM. (pysqlite starts transactions only before DML, so a
    connection that has only read so far is not in one yet.)
    """
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn


def _insert_sqlite(session: Session, ordered: list[str], rows: dict[str, tuple[_Event, int]],
                   now: datetime, source: str) -> list[str]:
    conn = _sqlite_write_lock(session)
    marks = ",".join("?" * len(ordered))
    existing = {r[0] for r in conn.exec_driver_sql(
        f"SELECT event_id FROM feedback_events WHERE event_id IN ({marks})", tuple(ordered))}
    inserted = [eid for eid in ordered if eid not in existing]
    received = _sqlite_time(now)
    texts: dict[datetime, str] = {}
    params = []
    for eid in inserted:
        e, post_id = rows[eid]
        occurred = texts.get(e.occurred_at)
        if occurred is None:
            occurred = texts[e.occurred_at] = _sqlite_time(e.occurred_at)
        params.append((eid, post_id, e.kind, e.count, e.text, e.author, occurred, received,
                       source))
    if params:
        conn.exec_driver_sql(
            "INSERT INTO feedback_events (event_id, post_id, kind, count, text, author, "
            "occurred_at, received_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", params)
    return inserted


_PG_INSERT = text("""
    INSERT INTO feedback_events
        (event_id, post_id, kind, count, text, author, occurred_at, received_at, source)
    SELECT e, p, k, c, t, a, o, :received, :source
    FROM unnest(CAST(:e AS varchar[]), CAST(:p AS integer[]), CAST(:k AS varchar[]),
                CAST(:c AS integer[]), CAST(:t AS text[]), CAST(:a AS varchar[]),
                CAST(:o AS timestamptz[])) AS u(e, p, k, c, t, a, o)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
""")


def _insert_postgres(session: Session, ordered: list[str],
                     rows: dict[str, tuple[_Event, int]], now: datetime,
                     source: str) -> list[str]:
    """One INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING.

    Arrays keep the statement text short and constant (a 9,000-placeholder VALUES list
    costs more to build and parse than to run); RETURNING says exactly which rows this
    transaction inserted, even while another batch carries the same ids.
    """
    events = [rows[eid][0] for eid in ordered]
    returned = set(session.execute(_PG_INSERT, {
        "e": ordered, "p": [rows[eid][1] for eid in ordered],
        "k": [e.kind for e in events], "c": [e.count for e in events],
        "t": [e.text for e in events], "a": [e.author for e in events],
        "o": [e.occurred_at for e in events], "received": now, "source": source,
    }).scalars())
    return [eid for eid in ordered if eid in returned]


def add_to_totals(session: Session, totals: Mapping[int, Mapping[str, int]],
                  hours: Mapping[tuple[int, datetime], Mapping[str, int]]) -> None:
    """Add (or subtract) amounts to post totals and hourly buckets, atomically in SQL.

    `SET x = x + :n`: the database adds, so concurrent writers never lose an update.
    """
    _add_amounts(session,
                 {pid: [int(t.get(m, 0)) for m in METRICS] for pid, t in totals.items()},
                 {(pid, int(hour.timestamp()) // 3600): [int(v.get(m, 0)) for m in METRICS]
                  for (pid, hour), v in hours.items()})


def _add_amounts(session: Session, totals: Mapping[int, list[int]],
                 hours: Mapping[tuple[int, int], list[int]]) -> None:
    """add_to_totals with amounts as lists in METRICS order and hours as whole hours since
    1970-01-01 UTC (integers hash and compare much faster than aware datetimes)."""
    if session.get_bind().dialect.name == "sqlite":
        conn = _sqlite_write_lock(session)
        if totals:
            # Only the metrics that changed appear in SET: each metric has an index, and
            # SQLite maintains the index of every column named in SET.
            groups: dict[tuple[int, ...], list[tuple[int, ...]]] = defaultdict(list)
            # (No sorting here: SQLite has one writer at a time, so no deadlock to avoid.)
            for pid, amounts in totals.items():
                changed = tuple(i for i, n in enumerate(amounts) if n)
                if changed:
                    groups[changed].append((*[amounts[i] for i in changed], pid))
            for changed, params in groups.items():
                sets = ", ".join(f"{METRICS[i]} = {METRICS[i]} + ?" for i in changed)
                conn.exec_driver_sql(f"UPDATE posts SET {sets} WHERE id = ?", params)
        if hours:
            cols = ", ".join(METRICS)
            upd = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)
            conn.exec_driver_sql(
                f"INSERT INTO metric_buckets (post_id, hour, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (post_id, hour) DO UPDATE SET {upd}",
                [(pid, _hour_text(hour), *amounts) for (pid, hour), amounts in hours.items()])
        return
    if totals:
        ids = sorted(totals)
        # Lock the rows in id order first, so two batches never wait on each other in a
        # cycle (UPDATE … FROM may visit rows in any order). NO KEY UPDATE, like the UPDATE
        # itself: it does not conflict with the KEY SHARE locks that inserting events
        # (foreign keys to posts) takes.
        session.execute(text("SELECT id FROM posts WHERE id = ANY(:ids) ORDER BY id "
                             "FOR NO KEY UPDATE"), {"ids": ids})
        sets = ", ".join(f"{m} = posts.{m} + d.{m}" for m in METRICS)
        casts = ", ".join(f"CAST(:{m} AS integer[])" for m in METRICS)
        session.execute(text(
            f"UPDATE posts SET {sets} FROM unnest(CAST(:ids AS integer[]), {casts}) "
            f"AS d(id, {', '.join(METRICS)}) WHERE posts.id = d.id"),
            {"ids": ids, **{m: [totals[pid][i] for pid in ids] for i, m in enumerate(METRICS)}})
    if hours:
        keys = sorted(hours)
        sets = ", ".join(f"{m} = metric_buckets.{m} + excluded.{m}" for m in METRICS)
        casts = ", ".join(f"CAST(:{m} AS integer[])" for m in METRICS)
        session.execute(text(
            f"INSERT INTO metric_buckets (post_id, hour, {', '.join(METRICS)}) "
            f"SELECT * FROM unnest(CAST(:pids AS integer[]), CAST(:hours AS timestamptz[]), "
            f"{casts}) ON CONFLICT (post_id, hour) DO UPDATE SET {sets}"),
            {"pids": [k[0] for k in keys],
             "hours": [datetime.fromtimestamp(k[1] * 3600, UTC) for k in keys],
             **{m: [hours[k][i] for k in keys] for i, m in enumerate(METRICS)}})


def bump(session: Session, post_id: int, metric: str, amount: int, *, now: datetime) -> None:
    """Add `amount` (may be negative: a like undone) to one metric of one post."""
    add_to_totals(session, {post_id: {metric: amount}}, {(post_id, _hour(now)): {metric: amount}})


def apply_pulled_totals(session: Session, totals: Mapping[int, Mapping[str, int]], *,
                        now: datetime) -> dict[int, dict[str, int]]:
    """Raise post counters to totals a service reported; never lower them (invariant 5).

    Returns what each post gained; the gain is also booked in the current hour's bucket.
    """
    clean: dict[int, dict[str, int]] = {}
    for pid, values in totals.items():
        good = {m: int(v) for m, v in values.items()
                if m in METRICS and _is_int(v) and v >= 0}
        if good and _is_int(pid):
            clean[pid] = good
    if not clean:
        return {}
    ids = sorted(clean)
    current = {row[0]: dict(zip(METRICS, row[1:], strict=True)) for row in session.execute(
        select(_posts.c.id, *[_posts.c[m] for m in METRICS]).where(_posts.c.id.in_(ids))
        .with_for_update(key_share=True))}
    gains: dict[int, dict[str, int]] = {}
    for pid in ids:
        if pid not in current:
            continue
        gain = {m: v - current[pid][m] for m, v in clean[pid].items() if v > current[pid][m]}
        if not gain:
            continue
        gains[pid] = gain
        # CASE keeps the larger value even if another writer raised it meanwhile.
        session.execute(
            update(_posts).where(_posts.c.id == pid).values({
                m: case((_posts.c[m] < v, v), else_=_posts.c[m])
                for m, v in clean[pid].items()}),
            execution_options={"synchronize_session": False})
    if gains:
        hour = _hour(now)
        insert = _dialect_insert(session)(_buckets)
        stmt = insert.on_conflict_do_update(
            index_elements=["post_id", "hour"],
            set_={m: _buckets.c[m] + insert.excluded[m] for m in METRICS})
        session.execute(stmt, [{"post_id": pid, "hour": hour,
                                **{m: g.get(m, 0) for m in METRICS}}
                               for pid, g in sorted(gains.items())])
    return gains
