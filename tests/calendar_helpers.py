"""Building plans for calendar tests: channels, audiences, pieces and their posts."""

from __future__ import annotations

from datetime import datetime

from contentops.models import Audience, Channel, ContentPiece, Post, Style, User


class Planner:
    def __init__(self, session, author: User):
        self.session = session
        self.author = author

    def channel(self, name: str = "公众号", *, kind: str = "webhook", color: str = "#07c160",
                **settings) -> Channel:
        channel = Channel(name=name, kind=kind, color=color, config={}, **settings)
        self.session.add(channel)
        self.session.flush()
        return channel

    def audience(self, name: str = "新会员") -> Audience:
        audience = Audience(name=name)
        self.session.add(audience)
        self.session.flush()
        return audience

    def style(self, name: str = "亲切") -> Style:
        style = Style(name=name)
        self.session.add(style)
        self.session.flush()
        return style

    def post(self, channel: Channel, when: datetime | None, *, title: str = "双11 预热",
             status: str = "scheduled", review: str = "approved",
             audience: Audience | None = None, style: Style | None = None,
             author: User | None = None, **post_fields) -> Post:
        piece = ContentPiece(
            title=title, body="正文", author_id=(author or self.author).id, status=review,
            version=1, approved_version=1 if review == "approved" else None,
            audience_id=audience.id if audience else None, style_id=style.id if style else None)
        self.session.add(piece)
        self.session.flush()
        post = Post(piece_id=piece.id, channel_id=channel.id, scheduled_at=when, status=status,
                    **post_fields)
        self.session.add(post)
        self.session.flush()
        return post

    def commit(self) -> None:
        self.session.commit()
