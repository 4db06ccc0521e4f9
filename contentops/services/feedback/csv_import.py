"""CSV import: feedback typed up by people, for channels that report numbers only to them.

Two row shapes, freely mixed in one file:
- one event per row: `kind` (read|like|comment|share|click) and `count`;
- totals per row: any of the columns `reads, likes, comments, shares, clicks`.
A row is addressed by `post_id`, or by `channel_id` + `external_id`. Without an
`event_id`, the row's content is hashed into one, so importing the same file again
changes nothing (invariant 5); `export` writes the same format, so an exported file
round-trips.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import N_, BadRequest
from ...models import KIND_METRIC, METRICS, FeedbackEvent, Post
from ...timeutil import isoformat
from .ingest import MAX_BATCH, IngestResult, ingest

COLUMNS: tuple[str, ...] = ("event_id", "post_id", "channel_id", "external_id", "kind",
                            "count", "occurred_at", "text", "author")
WIDE: dict[str, str] = {metric: kind for kind, metric in KIND_METRIC.items()}
MAX_ROWS = 200_000


@dataclass
class Parsed:
    # (row number in the file, event dict) — the header is row 1.
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rows: int = 0


@dataclass
class RowError:
    row: int
    message: str  # msgid
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Preview:
    rows: int = 0
    new: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    # post id -> metric -> amount the import adds
    changes: dict[int, dict[str, int]] = field(default_factory=dict)
    posts: dict[int, Post] = field(default_factory=dict)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 as Chinese Excel writes it."""
    if not raw.strip():
        raise BadRequest(N_("The file is empty."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadRequest(N_("The file is not UTF-8 or GB18030 text."))


def _int_or_text(value: str) -> int | str | None:
    value = value.strip()
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value  # left for the event validation to refuse with a clear reason


def parse(content: str) -> Parsed:
    reader = csv.DictReader(io.StringIO(content))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    if not ({"kind"} & set(header) or set(WIDE) & set(header)):
        raise BadRequest(N_("The first line must name the columns: kind and count, or "
                            "reads, likes, comments, shares, clicks."))
    if "post_id" not in header and not {"channel_id", "external_id"} <= set(header):
        raise BadRequest(N_("Add a post_id column, or channel_id and external_id columns."))
    parsed = Parsed()
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise BadRequest(N_("At most %(max)s rows per file."), {"max": MAX_ROWS})
        row = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue
        parsed.rows += 1
        base: dict[str, Any] = {
            "post_id": _int_or_text(row.get("post_id", "")),
            "occurred_at": row.get("occurred_at") or None,
            "text": row.get("text") or None,
            "author": row.get("author") or None,
        }
        if base["post_id"] is None:
            base.pop("post_id")
            base["channel_id"] = _int_or_text(row.get("channel_id", ""))
            base["external_id"] = row.get("external_id") or None
        event_id = row.get("event_id") or "csv:" + hashlib.sha256(
            "\x1f".join(f"{k}={row[k]}" for k in sorted(row) if k != "event_id")
            .encode()).hexdigest()[:40]
        if row.get("kind"):
            count = _int_or_text(row.get("count", ""))
            parsed.events.append((number, {**base, "event_id": event_id, "kind": row["kind"],
                                           "count": 1 if count is None else count}))
        for metric, kind in WIDE.items():
            value = _int_or_text(row.get(metric, ""))
            if value in (None, 0):
                continue
            parsed.events.append((number, {**base, "event_id": f"{event_id}:{metric}",
                                           "kind": kind, "count": value}))
    return parsed


def _run(session: Session, parsed: Parsed, now: datetime, dry_run: bool) -> Preview:
    out = Preview(rows=parsed.rows)
    changes: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    seen_errors: set[tuple[int, str]] = set()
    for start in range(0, len(parsed.events), MAX_BATCH):
        chunk = parsed.events[start:start + MAX_BATCH]
        result = ingest(session, [e for _, e in chunk], now=now, source="csv",
                                 dry_run=dry_run)
        out.new += result.accepted
        out.duplicates += result.duplicates
        for rejection in result.rejected:
            row = chunk[rejection.index][0]
            if (row, rejection.message) not in seen_errors:
                seen_errors.add((row, rejection.message))
                out.errors.append(RowError(row, rejection.message, dict(rejection.params)))
        for pid, delta in result.changes.items():
            for metric, amount in delta.items():
                changes[pid][metric] += amount
    out.changes = {pid: {m: n for m, n in c.items() if n} for pid, c in changes.items()}
    if out.changes:
        out.posts = {p.id: p for p in session.scalars(
            select(Post).where(Post.id.in_(list(out.changes))))}
    return out


def preview(session: Session, parsed: Parsed, *, now: datetime) -> Preview:
    """What importing would change, and each bad row with its reason. Writes nothing."""
    return _run(session, parsed, now, dry_run=True)


def apply(session: Session, parsed: Parsed, *, now: datetime) -> IngestResult:
    report = _run(session, parsed, now, dry_run=False)
    return IngestResult(accepted=report.new, duplicates=report.duplicates,
                                 changes=report.changes)


def export(session: Session, *, post_id: int | None = None) -> str:
    """Every stored event as CSV in the import format (one event per row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    query = select(FeedbackEvent).order_by(FeedbackEvent.id)
    if post_id is not None:
        query = query.where(FeedbackEvent.post_id == post_id)
    for event in session.scalars(query).yield_per(2000):
        writer.writerow([event.event_id, event.post_id, "", "", event.kind, event.count,
                         isoformat(event.occurred_at), event.text or "", event.author or ""])
    return buffer.getvalue()
