"""API push: `POST /api/v1/feedback` with a bearer token (DESIGN.md §6).

The caller (a service's integration, a script, another tool) sends up to MAX_BATCH events;
each is validated on its own, so one bad event does not refuse the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ...errors import N_, ValidationError
from .ingest import MAX_BATCH, IngestResult, ingest


def events_of(data: Mapping[str, Any]) -> list[Any]:
    """The `events` list of a request body; ValidationError if it is missing or too long."""
    events = data.get("events")
    if not isinstance(events, list):
        raise ValidationError({"events": [N_("Send a list of events.")]})
    if len(events) > MAX_BATCH:
        raise ValidationError({"events": [N_("At most %(max)s events per request.")]},
                              params={"max": MAX_BATCH})
    return events


def push(session: Session, data: Mapping[str, Any], *, now: datetime) -> IngestResult:
    """Count the events of one API request body. The caller commits."""
    return ingest(session, events_of(data), now=now, source="api")
