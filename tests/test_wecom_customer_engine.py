"""`wecom_customer` through the real engine: a `contentops scheduler` process killed (SIGKILL)
while WeCom has created the broadcast but not yet answered must not lead to a second broadcast —
the next scheduler looks it up before creating anything."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contentops.extensions import db as _db
from contentops.models import Post, PublishAttempt
from contentops.timeutil import utcnow
from tests.fakes.wecom_customer import FakeWeComCustomer

from .engine_support import make_channel, make_post
from .test_scheduler_runner import _scheduler_process, _stop, wait_for


@pytest.fixture
def fake():
    service = FakeWeComCustomer()
    for userid in ("zhangsan", "lisi"):
        service.add_customer(userid, f"wm-{userid}-1")
        service.add_customer(userid, f"wm-{userid}-2")
    service.start()
    yield service
    service.release.set()
    service.stop()


def status_of(post_id: int) -> str:
    _db.session.rollback()
    return _db.session.get(Post, post_id).status


@pytest.mark.slow
def test_scheduler_killed_between_add_msg_template_and_its_reply(app, db, make_user, fake,
                                                                 tmp_path):
    channel = make_channel(db.session, "wecom_customer", config={
        "corp_id": fake.corp_id, "secret": "contact-secret", "api_base": fake.base,
        "kind": "single", "senders": ["zhangsan", "lisi"], "timeout_s": 60})
    post = make_post(db.session, channel, make_user("editor"), utcnow())
    db_url = app.config["SQLALCHEMY_DATABASE_URI"]
    fake.stall_after_create = True
    first = _scheduler_process(db_url, tmp_path, "first", CONTENTOPS_LEASE_SECONDS="2")
    try:
        assert fake.created.wait(30), (tmp_path / "first.log").read_text()[-2000:]
    finally:
        first.kill()  # SIGKILL while the reply of add_msg_template is outstanding
        first.wait()
    created_before = len(fake.templates)
    assert created_before == 1  # the first sender's broadcast exists; the reply was lost
    assert status_of(post.id) == "publishing"
    fake.stall_after_create = False
    fake.release.set()
    second = _scheduler_process(db_url, tmp_path, "second", CONTENTOPS_LEASE_SECONDS="2")
    try:
        assert wait_for(lambda: status_of(post.id) == "awaiting_staff", 60), (
            status_of(post.id), (tmp_path / "second.log").read_text()[-3000:])
    finally:
        _stop(second)
    # One broadcast per sender, the first one reused rather than created again.
    assert sorted(t.sender for t in fake.templates.values()) == ["lisi", "zhangsan"]
    assert [c[0] for c in fake.calls].count("add_msg_template") == 2
    db.session.expire_all()
    outcomes = list(db.session.scalars(select(PublishAttempt.outcome).where(
        PublishAttempt.post_id == post.id).order_by(PublishAttempt.id)))
    assert outcomes[0] == "lost" and outcomes[-1] == "published"
