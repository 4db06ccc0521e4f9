"""Forms that take a wall-clock time: carrying the user's choice of occurrence (`fold`) for a
time that happens twice, and offering that choice when it is missing (timeutil's policy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..timeutil import AmbiguousTimeError, WallClockError


def requested_fold(form: Mapping[str, str], raw: str) -> int | None:
    """The occurrence chosen for exactly this time. A choice made for another time (the user
    then edited the field) is stale and must not pick an occurrence of the new one."""
    if (form.get("fold_for") or "").strip() != raw.strip():
        return None
    value = form.get("fold")
    return int(value) if value in ("0", "1") else None


def fold_choice(exc: WallClockError, raw: str) -> dict[str, Any] | None:
    """What the template needs to offer both occurrences, or None for other errors."""
    if not isinstance(exc, AmbiguousTimeError):
        return None
    return {"for": raw.strip(), "options": exc.choices()}
