"""`wechat_mp` 群发 through the real engine: a `contentops scheduler` process killed (SIGKILL)
after WeChat counted the mass send but before its reply arrived must not send twice — the next
scheduler re-sends with the same clientmsgid, WeChat answers 45065 with the first msg_id, and
the handoff tracker follows that one to published."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contentops.extensions import db as _db
from contentops.models import Post, PublishAttempt
from contentops.timeutil import utcnow

from .engine_support import make_channel, make_post
from .test_scheduler_runner import _scheduler_process, _stop, wait_for


@pytest.fixture
def fake(wechat_mp_fake):
    return wechat_mp_fake


def status_of(post_id: int) -> str:
    _db.session.rollback()
    return _db.session.get(Post, post_id).status


def handed_off(post_id: int) -> bool:
    """Handed to WeChat: publishing with the mass send's id (a claimed post is publishing too)."""
    _db.session.rollback()
    post = _db.session.get(Post, post_id)
    return post.status == "publishing" and bool(post.external_id)


@pytest.mark.slow
def test_scheduler_killed_between_sendall_and_its_reply(app, db, make_user, fake, tmp_path):
    channel = make_channel(db.session, "wechat_mp", config={
        "app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
        "mode": "mass_send", "account_type": "subscription", "timeout_s": 60})
    post = make_post(db.session, channel, make_user("editor"), utcnow(),
                     body=f"![海报]({fake.base}/img/p.png)\n\n**限时** 五折")
    db_url = app.config["SQLALCHEMY_DATABASE_URI"]
    fake.stall_after_send = True
    first = _scheduler_process(db_url, tmp_path, "first", CONTENTOPS_LEASE_SECONDS="2")
    try:
        assert fake.sent.wait(30), (tmp_path / "first.log").read_text()[-2000:]
    finally:
        first.kill()  # SIGKILL while the reply of sendall is outstanding
        first.wait()
    assert fake.sends == 1
    fake.stall_after_send = False
    fake.release.set()
    second = _scheduler_process(db_url, tmp_path, "second", CONTENTOPS_LEASE_SECONDS="2")
    try:
        assert wait_for(lambda: handed_off(post.id), 60), (
            status_of(post.id), (tmp_path / "second.log").read_text()[-3000:])
        assert fake.sends == 1  # the re-send was refused with 45065, nothing sent twice
        assert fake.calls.count("/cgi-bin/message/mass/sendall") == 2
        msg_id = next(iter(fake.mass))
        db.session.expire_all()
        assert db.session.get(Post, post.id).external_id == f"msg:{msg_id}"
    finally:
        _stop(second)
    outcomes = list(db.session.scalars(select(PublishAttempt.outcome).where(
        PublishAttempt.post_id == post.id).order_by(PublishAttempt.id)))
    assert outcomes[0] == "lost"


def _engine_adapter(fake):
    from contentops.channels.registry import adapter_class
    from contentops.channels.tokens import MemoryTokenStore

    return adapter_class("wechat_mp")(
        {"app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
         "mode": "publish"}, tokens=MemoryTokenStore())


@pytest.mark.parametrize("outcome", ["ok", "refused"])
def test_freepublish_through_dispatcher_and_handoff_tracker(db, make_user, fake, outcome):
    import random
    from datetime import timedelta

    from sqlalchemy.orm import sessionmaker

    from contentops.services import publishing

    from .engine_support import Clock

    clock = Clock(utcnow())
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    adapter = _engine_adapter(fake)
    channel = make_channel(db.session, "wechat_mp", config={
        "app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base})
    post = make_post(db.session, channel, make_user("editor"), clock.now,
                     body=f"![海报]({fake.base}/img/p.png)\n\n**限时** 五折")
    publishing.Dispatcher(factory, lambda c: adapter, node="n1", clock=clock, workers=1,
                          rng=random.Random(1)).run()
    db.session.expire_all()
    handed = db.session.get(Post, post.id)
    assert handed.status == "publishing" and handed.external_id.startswith("pub:")
    publish_id = handed.external_id[4:]
    clock.advance(61)
    stats = publishing.track_due(factory(), now=clock.now, node="n1",
                                 adapter_for=lambda c: adapter)
    assert stats.waiting == 1  # WeChat still publishing (publish_status 1)
    fake.finish_publish(publish_id, 0 if outcome == "ok" else 4)
    clock.advance(61)
    publishing.track_due(factory(), now=clock.now + timedelta(seconds=1), node="n1",
                         adapter_for=lambda c: adapter)
    db.session.expire_all()
    done = db.session.get(Post, post.id)
    if outcome == "ok":
        assert done.status == "published"
        assert done.external_url == f"https://mp.weixin.qq.com/s/art-{publish_id}"
    else:
        assert done.status == "failed" and "平台审核不通过" in (done.last_error or "")


def test_token_shared_through_the_database_store(db, fake):
    from contentops.services import channels as channel_service

    from .engine_support import SECRET_KEY

    channel = make_channel(db.session, "wechat_mp", config={
        "app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base})
    first = channel_service.build_adapter(channel, SECRET_KEY)
    second = channel_service.build_adapter(channel, SECRET_KEY)
    first.test_connection()
    second.test_connection()
    assert fake.token_requests == 1  # the second adapter found the stored token
    fake.expire_tokens()  # 42001 mid-run: one refresh, then everyone uses the new token
    assert first.api().call("/cgi-bin/message/mass/get", body={"msg_id": 1}, accept=(40007,))
    token = fake.current_token
    assert second.api().token() == token and fake.token_requests == 2
