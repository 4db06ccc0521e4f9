"""Channel quotas and scheduling conflicts (filled in by the calendar work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..channels.base import Finding
from ..models import Post


def check_schedule(session: Session, post: Post, when: datetime) -> list[Finding]:
    """Findings for putting `post` at `when`: errors refuse the move, warnings inform."""
    return []
