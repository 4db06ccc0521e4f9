"""In-app and e-mail notifications (filled in by the review work)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from ..models import User


def notify(session: Session, users: Iterable[User], kind: str, message: str,
           params: Mapping[str, Any] | None = None, link: str | None = None) -> None:
    """Tell users something happened. `message` is a msgid; kinds: submitted, approved,
    changes_requested, mention, publish_failed, assigned, ..."""
    return None
