"""Writing audit events: one call per thing that happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..models import AuditEvent, User
from ..timeutil import utcnow


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: int | None,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label,
        data=data or {},
        created_at=now or utcnow(),
    )
    session.add(event)
    return event
