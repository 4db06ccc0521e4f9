"""Review workflow (filled in by the review work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..models import ContentPiece, User


def content_changed(session: Session, piece: ContentPiece, actor: User | None,
                    now: datetime) -> None:
    """Called by services.content after a new version is saved (invariant 1)."""
    if piece.status in ("approved", "in_review"):
        piece.status = "draft"
    piece.approved_version = None
