"""Service access tokens shared by every process (see channels.tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class AccessToken(db.Model):
    """One service credential's current token, encrypted; `refresh_until` is the lease of the
    process fetching a new one, so only one process refreshes at a time."""

    __tablename__ = "access_tokens"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    token: Mapped[str | None] = mapped_column(Text)  # encrypted with the channel-secret key
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_by: Mapped[str | None] = mapped_column(String(100))
    refresh_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
