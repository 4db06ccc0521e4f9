"""Builders for review tests: pieces with posts on channels, and an edit like the editor's.

A thin wrapper over tests/builders.py kept for tests that still import it; new tests use the
`make` fixture (`make.piece`, `make.channel`, `make.edit`, `make.claimable_ids`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contentops.extensions import db
from contentops.models import Audience, Channel, ContentPiece, Style, User
from contentops.services import review

from .builders import Make

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _make(now: datetime = NOW) -> Make:
    return Make(db.session, now=now)


def taxonomy() -> tuple[Audience, Style]:
    make = _make()
    return make.audience("新会员"), make.style("亲切")


def channel(name: str = "Team hook", *, two: bool = False, kind: str = "webhook") -> Channel:
    return _make().channel(kind, name=name, requires_two_approvals=two)


def make_piece(author: User, *, title: str = "秋季新品上市", body: str = "欢迎来店里看看。",
               channels: list[Channel] | None = None, when: datetime | None = None,
               status: str = "draft") -> ContentPiece:
    """A piece by `author` with its posts scheduled (tomorrow unless said), brought into
    `status` through the review workflow."""
    make = _make()
    piece = make.piece(author=author, title=title, body=body,
                       channels=channels if channels is not None else [channel()],
                       when=when or NOW + timedelta(days=1))
    if status != "draft":
        make.submit(piece)
    if status == "approved":
        make.approve(piece)
    elif status == "changes_requested":
        review.request_changes(db.session, piece, make.approver(exclude=[author]), NOW,
                               comment="改")
        db.session.commit()
    return piece


def edit(piece: ContentPiece, actor: User, now: datetime, *, title: str | None = None,
         body: str | None = None) -> None:
    """What the editor does on save: a new version through the content service."""
    changes = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
    _make(now).edit(piece, actor, at=now, **changes)


def claimable_ids() -> set[int]:
    return _make().claimable_ids()
