"""Building plans for calendar tests: channels, audiences, pieces and their posts.

A thin wrapper over tests/builders.py kept for the calendar, quota and receive-limit tests
that import it: channels come from the channel service, pieces from the content service and
are approved (or submitted) through review. Posts are put at their time without the
schedule-time quota and conflict checks (`checked=False`), because these tests build the
very plans those checks warn about."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from contentops.channels.registry import kinds
from contentops.models import Audience, Channel, Post, Style, User

from .builders import Make

# Calendar plans carry titles and channels compliance objects to (a wechat_mp channel without
# a cover, a title with a line break): the editor's override reason lets them through review,
# as it would in the app.
OVERRIDE = "Calendar test plan"


class Planner:
    def __init__(self, session, author: User):
        self.session = session
        self.author = author
        self.make = Make(session)

    def channel(self, name: str = "公众号", *, kind: str = "webhook", color: str = "#07c160",
                **settings) -> Channel:
        if kind in kinds():
            return self.make.channel(kind, name=name, color=color, **settings)
        # A kind no adapter is installed for (a channel left from an uninstalled plug-in):
        # the service would refuse to create it, so it is written as such a row would be.
        row = self.session.scalar(select(Channel).where(Channel.name == name))
        if row is None:
            row = Channel(name=name, kind=kind, color=color, config={}, **settings)
            self.session.add(row)
            self.session.flush()
        return row

    def audience(self, name: str = "新会员") -> Audience:
        return self.make.audience(name)

    def style(self, name: str = "亲切") -> Style:
        return self.make.style(name)

    def post(self, channel: Channel, when: datetime | None, *, title: str = "双11 预热",
             status: str = "scheduled", review: str = "approved",
             audience: Audience | None = None, style: Style | None = None,
             author: User | None = None, **post_fields) -> Post:
        post = self.make.post(channel, when, approved=review == "approved", checked=False,
                              title=title, body="正文", author=author or self.author,
                              audience=audience, style=style, override=OVERRIDE)
        if review == "in_review":
            self.make.submit(post.piece, override=OVERRIDE)
        if status != post.status:
            post.status = status
        if when is None:
            post.scheduled_at = None
        for name, value in post_fields.items():
            setattr(post, name, value)
        self.session.flush()
        return post

    def commit(self) -> None:
        self.session.commit()
