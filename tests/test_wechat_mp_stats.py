"""公众号 statistics the day after, against the loopback fake: the daily job pulls
getarticletotaldetail / getbizsummary / comment/list once per channel and day across nodes
(not before 08:00 Beijing), totals never go backwards, comments count once, a 群发 recovered
through 45065 is matched as the day's one notified message, is_delay and 45011 are retried
later, and an article WeChat leaves out (fewer than 3 interactions) is shown as such."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.channels.base import StatsPost, TransientError
from contentops.channels.registry import adapter_class
from contentops.channels.tokens import MemoryTokenStore
from contentops.models import ChannelDailyStats, FeedbackEvent, Post
from contentops.models.scheduler import JobRun
from contentops.scheduler import jobs
from contentops.services import publishing
from contentops.services.feedback import daily_stats

from .engine_support import Clock, make_channel, make_post

BEIJING = ZoneInfo("Asia/Shanghai")
SENT = datetime(2026, 11, 11, 10, 0, tzinfo=BEIJING)
NEXT_MORNING = datetime(2026, 11, 12, 9, 0, tzinfo=BEIJING)


@pytest.fixture
def fake(wechat_mp_fake):
    return wechat_mp_fake


@pytest.fixture
def clock(fake):
    c = Clock(SENT)
    fake.clock = lambda: c.now.timestamp()
    return c


def config(fake, **extra):
    return {"app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
            "mode": "mass_send", "account_type": "service", "need_open_comment": True,
            **extra}


def adapter_of(fake, **extra):
    return adapter_class("wechat_mp")(config(fake, **extra), tokens=MemoryTokenStore())


def send(db, fake, clock, adapter, channel, author, title: str) -> Post:
    """Through the dispatcher and the handoff tracker, as in production."""
    post = make_post(db.session, channel, author, clock.now, title=title,
                     body=f"![海报]({fake.base}/img/p.png)\n\n**限时** 五折")
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    publishing.Dispatcher(factory, lambda c: adapter, node="n1", clock=clock, workers=1,
                          rng=random.Random(1)).run()
    db.session.expire_all()
    sent = db.session.get(Post, post.id)
    if sent.external_id.startswith("msg:"):
        fake.finish_mass(int(sent.external_id[4:]))
    else:
        fake.finish_publish(sent.external_id[4:], 0)
    clock.advance(61)
    publishing.track_due(factory(), now=clock.now, node="n1", adapter_for=lambda c: adapter)
    db.session.expire_all()
    done = db.session.get(Post, post.id)
    assert done.status == "published", done.last_error
    return done


def tick(db, node: str, when: datetime, adapter, clock=None) -> object:
    """One run of the scheduler's job on `node` at `when` (the fake's clock too)."""
    if clock is not None:
        clock.now = when
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    return jobs.pull_daily_stats(factory, node, when, lambda c: adapter, 8)


def reload(db, post_id: int) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def test_once_per_day_across_nodes_totals_and_comments(db, make_user, fake, clock):
    adapter = adapter_of(fake)
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "双11 会员专享")
    msg_data_id = int(post.progress["msg_data_id"])
    fake.add_stats(msg_data_id, stat_date="2026-11-11", read_user=120, share_user=9,
                   like_user=7, zaikan_user=3, comment_count=2, collection_user=4)
    fake.add_comment(msg_data_id, "好活动！")
    fake.add_comment(msg_data_id, "什么时候开始？", reply="11日零点")
    fake.biz["2026-11-11"] = {"read_user": 300, "share_user": 20, "like_user": 11,
                              "zaikan_user": 4, "comment_count": 5, "collection_user": 6}

    # Before 08:00 Beijing nothing is asked ("请在每日8:00后查询昨日数据").
    assert tick(db, "node-a", NEXT_MORNING.replace(hour=7, minute=30), adapter, clock) == {}
    assert "/datacube/getarticletotaldetail" not in fake.calls
    first = tick(db, "node-a", NEXT_MORNING, adapter, clock)
    second = tick(db, "node-b", NEXT_MORNING + timedelta(seconds=5), adapter, clock)
    again = tick(db, "node-a", NEXT_MORNING + timedelta(minutes=30), adapter, clock)
    assert first[channel.id].posts == 1 and second == {} and again == {}
    assert fake.calls.count("/datacube/getarticletotaldetail") == 1
    assert fake.calls.count("/datacube/getbizsummary") == 1

    got = reload(db, post.id)
    assert (got.reads, got.shares, got.likes, got.comments) == (120, 9, 10, 2)
    assert got.progress["wx_stats"]["reported"] is True
    assert got.progress["wx_stats"]["collection_user"] == 4
    texts = sorted(e.text for e in db.session.scalars(select(FeedbackEvent).where(
        FeedbackEvent.post_id == post.id, FeedbackEvent.kind == "comment")))
    assert texts == ["什么时候开始？", "好活动！"]
    events = db.session.scalars(select(FeedbackEvent)).all()
    assert all("o-fake" not in (e.author or "") + (e.event_id or "") for e in events)
    summary = db.session.scalar(select(ChannelDailyStats))
    assert (summary.day, summary.reads, summary.likes, summary.comments) == (
        date(2026, 11, 11), 300, 15, 5)

    # Next day: WeChat corrects a figure downwards and one comment is new. Nothing goes
    # backwards, the two known comments are not counted again.
    fake.add_stats(msg_data_id, stat_date="2026-11-12", read_user=110, share_user=12,
                   like_user=7, zaikan_user=3, comment_count=3)
    fake.add_comment(msg_data_id, "已下单")
    day2 = NEXT_MORNING + timedelta(days=1)
    assert tick(db, "node-b", day2, adapter, clock)[channel.id].comments == 1
    got = reload(db, post.id)
    assert (got.reads, got.shares, got.likes, got.comments) == (120, 12, 10, 3)
    assert got.progress["wx_stats"]["stat_date"] == "2026-11-12"
    runs = db.session.scalars(select(JobRun.period).where(JobRun.job == "daily_stats")).all()
    assert sorted(runs) == [f"{channel.id}:2026-11-11", f"{channel.id}:2026-11-12"]


def test_mass_send_recovered_through_45065_is_matched_as_the_days_one_message(db, make, fake,
                                                                          clock):
    adapter = adapter_of(fake)
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    from contentops.channels.base import OutgoingPost

    outgoing = OutgoingPost(1, 1, 1, "国庆特惠", f"![海报]({fake.base}/img/p.png)\n\n五折")
    adapter.publish(outgoing, "post-1-key")
    recovered = adapter.publish(outgoing, "post-1-key")  # 45065: only msg_id comes back
    assert fake.sends == 1 and not recovered.progress["msg_data_id"]
    msg_data_id = max(a[0] for a in fake.articles)
    post = make.post(channel, SENT, title="国庆特惠", status="published",
                     body=f"![海报]({fake.base}/img/p.png)\n\n五折",
                     external_id=recovered.external_id, progress=dict(recovered.progress),
                     published_at=SENT)
    fake.add_stats(msg_data_id, read_user=50, share_user=1, like_user=2)
    fake.add_comment(msg_data_id, "支持")
    assert tick(db, "n1", NEXT_MORNING, adapter, clock)[channel.id].posts == 1
    got = reload(db, post.id)
    assert got.reads == 50 and got.comments == 1
    assert got.progress["msg_data_id"] == str(msg_data_id) and got.progress["idx"] == 1
    assert got.progress["msg_id"] == recovered.progress["msg_id"]  # kept


def test_is_delay_applies_what_came_and_retries_later(db, make_user, fake, clock):
    adapter = adapter_of(fake)
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "早鸟价")
    msg_data_id = int(post.progress["msg_data_id"])
    fake.add_stats(msg_data_id, read_user=30, like_user=1, share_user=1)
    fake.delayed = True
    report = tick(db, "n1", NEXT_MORNING, adapter, clock)[channel.id]
    assert report.delayed and reload(db, post.id).reads == 30
    assert not db.session.scalars(select(JobRun).where(JobRun.job == "daily_stats")).all()
    fake.delayed = False
    fake.add_stats(msg_data_id, read_user=80, like_user=1, share_user=1)
    later = NEXT_MORNING + timedelta(minutes=30)
    assert not tick(db, "n2", later, adapter, clock)[channel.id].delayed
    assert reload(db, post.id).reads == 80
    assert fake.calls.count("/datacube/getarticletotaldetail") == 2
    assert tick(db, "n1", NEXT_MORNING + timedelta(hours=1), adapter, clock) == {}


def test_45011_releases_the_day_and_a_later_tick_succeeds(db, make_user, fake, clock):
    adapter = adapter_of(fake)
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "限时秒杀")
    msg_data_id = int(post.progress["msg_data_id"])
    fake.add_stats(msg_data_id, read_user=40, like_user=2, share_user=1)
    fake.add_comment(msg_data_id, "抢到了")
    # Three calls a minute, one already used by other work: the pull's three calls (detail,
    # comments, summary) run into the limit at the third.
    fake.api_per_minute = 3
    clock.now = NEXT_MORNING
    adapter.api().call("/cgi-bin/message/mass/get", body={"msg_id": 1}, accept=(40007,))
    report = tick(db, "n1", NEXT_MORNING, adapter, clock)[channel.id]
    assert report.error and "45011" in report.error
    got = reload(db, post.id)
    assert got.reads == 0 and got.comments == 0  # nothing half-applied
    assert not db.session.scalars(select(JobRun).where(JobRun.job == "daily_stats")).all()
    clock.advance(61)  # the minute has passed
    assert tick(db, "n2", clock.now, adapter, clock)[channel.id].error is None
    got = reload(db, post.id)
    assert got.reads == 40 and got.comments == 1


def test_45011_and_45009_are_transient_with_a_wait():
    from contentops.channels.wechat_mp import ERRORS

    assert ERRORS[45011].transient and ERRORS[45011].retry_after == 60
    assert ERRORS[45009].transient and ERRORS[45009].retry_after


def test_article_with_fewer_than_3_interactions_is_shown_as_not_reported(
        db, make_user, fake, clock, client, login):
    adapter = adapter_of(fake)
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "小众话题")
    fake.add_stats(int(post.progress["msg_data_id"]), read_user=2)  # 2 < 3: left out
    report = tick(db, "n1", NEXT_MORNING, adapter, clock)[channel.id]
    assert report.unreported == 1 and report.posts == 0
    got = reload(db, post.id)
    assert got.progress["wx_stats"] == {"reported": False, "day": "2026-11-11"}
    assert daily_stats.not_reported(got.progress)
    login(make_user("viewer"))
    html = client.get("/posts/").text
    assert "data-stats-note" in html and "not reported by WeChat" in html
    assert "fewer than 3 interactions" in html
    piece = client.get(f"/pieces/{got.piece_id}").text
    assert "data-stats-note" in piece
    zh = client.get("/posts/", headers={"Accept-Language": "zh-CN"}).text
    assert "data-stats-note" in zh


def test_comments_closed_uses_the_reported_count(db, make_user, fake, clock):
    adapter = adapter_of(fake, need_open_comment=False)
    channel = make_channel(db.session, "wechat_mp", config=config(fake,
                                                                   need_open_comment=False))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "评论关闭")
    fake.add_stats(int(post.progress["msg_data_id"]), read_user=10, comment_count=4)
    # 88000 (comments closed) is not an error for statistics.
    assert tick(db, "n1", NEXT_MORNING, adapter, clock)[channel.id].error is None
    got = reload(db, post.id)
    assert got.comments == 4 and got.progress["wx_stats"]["comments_open"] is False


def test_freepublish_article_statistics(db, make_user, fake, clock):
    adapter = adapter_of(fake, mode="publish")
    channel = make_channel(db.session, "wechat_mp", config=config(fake, mode="publish"))
    post = send(db, fake, clock, adapter, channel, make_user("editor"), "发布不通知")
    assert post.progress["msg_data_id"]
    fake.add_stats(int(post.progress["msg_data_id"]), read_user=15, share_user=2)
    tick(db, "n1", NEXT_MORNING, adapter, clock)
    got = reload(db, post.id)
    assert got.reads == 15 and got.progress["wx_stats"]["publish_type"] == 1


def test_latest_stat_date_and_comment_paging(fake, clock):
    adapter = adapter_of(fake)
    from contentops.channels.base import OutgoingPost

    adapter.publish(OutgoingPost(1, 1, 1, "长评", f"![x]({fake.base}/img/p.png)\n\n正文"),
                    "k")
    msg_data_id = max(a[0] for a in fake.articles)
    fake.add_stats(msg_data_id, stat_date="2026-11-11", read_user=5)
    fake.add_stats(msg_data_id, stat_date="2026-11-12", read_user=9)  # not yet "yesterday"
    for i in range(60):
        fake.add_comment(msg_data_id, f"评论 {i}")
    clock.now = NEXT_MORNING
    stats = adapter.fetch_daily_stats(
        [StatsPost(1, "长评", date(2026, 11, 11), {"msg_data_id": str(msg_data_id)})],
        date(2026, 11, 11))
    found = stats.posts[1]
    assert found.totals["reads"] == 5
    assert len(found.comments) == 60 and len({c["event_id"] for c in found.comments}) == 60
    assert fake.calls.count("/cgi-bin/comment/list") == 2  # pages of 49


@pytest.mark.parametrize("body,code", [
    ({"begin_date": "20261111", "end_date": "20261111"}, 61500),
    ({"begin_date": "2026-11-12", "end_date": "2026-11-12"}, 61501),  # today, not yesterday
    ({"begin_date": "2026-11-11", "end_date": "2026-11-10"}, 61501),
])
def test_fake_checks_dates_as_the_datacube_does(fake, clock, body, code):
    clock.now = NEXT_MORNING
    api = adapter_of(fake).api()
    reply = api.call("/datacube/getarticletotaldetail", body=body, accept=(code,))
    assert reply["errcode"] == code


def test_a_transient_error_from_the_service_is_raised(fake, clock):
    clock.now = NEXT_MORNING
    adapter = adapter_of(fake)
    fake.fail_next(45009)
    with pytest.raises(TransientError):
        adapter.fetch_daily_stats([StatsPost(1, "x", date(2026, 11, 11))], date(2026, 11, 11))


def test_account_figures_on_the_analytics_page(db, make_user, client, login, fake):
    channel = make_channel(db.session, "wechat_mp", config=config(fake))
    yesterday = datetime.now(BEIJING).date() - timedelta(days=1)
    db.session.add(ChannelDailyStats(channel_id=channel.id, day=yesterday, reads=4321,
                                     likes=77, shares=12, comments=5, figures={},
                                     updated_at=datetime.now(BEIJING)))
    db.session.commit()
    login(make_user("viewer"))
    html = client.get("/analytics/").text
    assert 'data-table="account-days"' in html and "4321" in html
    assert client.get("/analytics/?from=bad&to=").status_code == 200


def test_one_channel_failing_does_not_stop_the_others(db, make_user, fake, clock):
    adapter = adapter_of(fake)
    broken = make_channel(db.session, "wechat_mp", config=config(fake), name="坏掉的号")
    healthy = make_channel(db.session, "wechat_mp", config=config(fake), name="好的号")
    editor = make_user("editor")
    send(db, fake, clock, adapter, broken, editor, "双12 会员日")
    post = send(db, fake, clock, adapter, healthy, editor, "双12 预告")
    fake.add_stats(int(post.progress["msg_data_id"]), read_user=40)

    class Broken:
        def __getattr__(self, name):
            return getattr(adapter, name)

        def fetch_daily_stats(self, posts, day):
            raise RuntimeError("a bug in one adapter")

    clock.now = NEXT_MORNING
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    report = jobs.pull_daily_stats(
        factory, "node-a", NEXT_MORNING,
        lambda c: Broken() if c.id == broken.id else adapter, 8)
    assert report[broken.id].error == "RuntimeError"
    assert report[healthy.id].posts == 1 and reload(db, post.id).reads == 40
    # The failed channel's day is free again for a later tick.
    assert broken.id in jobs.pull_daily_stats(factory, "node-b",
                                              NEXT_MORNING + timedelta(minutes=30),
                                              lambda c: Broken(), 8)
