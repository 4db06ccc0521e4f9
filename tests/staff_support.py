"""A 企业微信 customer broadcast handed to three senders through the real engine: the dispatcher
publishes against the local WeCom fake, senders press "send" on the fake, track_due reads their
progress back. Shared by the end-to-end and browser tests of N-of-M progress."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from contentops.models import Channel, Post, User
from contentops.services import publishing
from contentops.services.channels import build_adapter
from contentops.timeutil import utcnow
from tests.fakes.wecom_customer import FakeWeComCustomer

from .engine_support import SECRET_KEY, Clock, make_channel, make_post

SENDERS = ("zhangsan", "lisi", "wangwu")


def wecom_fake() -> FakeWeComCustomer:
    """zhangsan has three customers (one deleted him: "not a friend"), lisi two, wangwu one."""
    service = FakeWeComCustomer()
    for ext in ("wmA1", "wmA2"):
        service.add_customer("zhangsan", ext)
    service.add_customer("zhangsan", "wmA3", friend=False)
    for ext in ("wmB1", "wmB2"):
        service.add_customer("lisi", ext)
    service.add_customer("wangwu", "wmC1")
    return service


@dataclass
class StaffFlow:
    db: object
    fake: FakeWeComCustomer
    author: User
    config: dict = field(default_factory=dict)
    clock: Clock = field(default_factory=lambda: Clock(utcnow()))

    def __post_init__(self) -> None:
        session = self.db.session
        self.channel: Channel = make_channel(session, "wecom_customer", name="客户群发", config={
            "corp_id": self.fake.corp_id, "secret": "contact-secret",
            "api_base": self.fake.base, "kind": "single", "senders": list(SENDERS),
            "deadline_hours": 24, "timeout_s": 5, **self.config})
        self.post: Post = make_post(session, self.channel, self.author, self.clock.now,
                                    title="双11 会员专享")
        self.factory = sessionmaker(bind=self.db.engine, expire_on_commit=False)

    def adapter_for(self, channel: Channel):
        return build_adapter(channel, SECRET_KEY)

    def dispatch(self) -> None:
        publishing.Dispatcher(self.factory, self.adapter_for, node="test", clock=self.clock,
                              workers=1, rng=random.Random(1)).run()

    def msgid(self, userid: str) -> str:
        return next(t.msgid for t in self.fake.templates.values() if t.sender == userid)

    def confirm(self, userid: str) -> None:
        self.fake.staff_confirms(self.msgid(userid), userid)

    def track(self, seconds: float = 130) -> publishing.TrackStats:
        self.clock.advance(seconds)
        return publishing.track_due(self.factory(), now=self.clock.now, node="test",
                                    adapter_for=self.adapter_for)

    def fresh(self) -> Post:
        self.db.session.expire_all()
        return self.db.session.get(Post, self.post.id)
