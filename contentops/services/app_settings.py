"""Team-wide settings stored in the database, changed by admins in the UI."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..models import User
from ..models.review import AppSetting
from ..timeutil import utcnow
from . import audit

# Every setting with its default; unknown keys are refused so typos cannot hide.
DEFAULTS: dict[str, Any] = {
    # Whether the author (or the last writer) of a piece may approve it.
    "review.allow_self_approval": False,
    # Whether people below admin may submit despite compliance errors, giving a reason.
    # Admins may always override (with a reason, audited).
    "compliance.allow_override": False,
    # Set once the default Advertising-Law term list has been written.
    "compliance.terms_seeded": False,
}


def get(session: Session, key: str) -> Any:
    if key not in DEFAULTS:
        raise KeyError(key)
    row = session.get(AppSetting, key)
    return DEFAULTS[key] if row is None else row.value


def put(session: Session, key: str, value: Any, *, actor: User | None = None) -> None:
    if key not in DEFAULTS:
        raise KeyError(key)
    row = session.get(AppSetting, key)
    old = DEFAULTS[key] if row is None else row.value
    if row is None:
        row = AppSetting(key=key, value=value, updated_at=utcnow())
        session.add(row)
    else:
        row.value = value
        row.updated_at = utcnow()
    if actor is not None and old != value:
        audit.record(session, "setting.changed", "setting", None, actor=actor,
                     data={"key": key, "from": old, "to": value})
