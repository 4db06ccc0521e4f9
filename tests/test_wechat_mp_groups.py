"""公众号 multi-article sends (头条 + 次条) through the real engine against the loopback fake:
posts of one channel at one time are one send — one draft with every article, one sendall
(one quota unit) or one freepublish — and every post gets the outcome with its own article's
URL; a ninth article is refused when scheduling; an unapproved article holds the whole send
(flagged, never sent short); WeChat's MASSSENDJOBFINISH event settles the send."""

from __future__ import annotations

import hashlib
import random
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.errors import DomainError, ValidationError
from contentops.models import Post, PublishAttempt
from contentops.reasons import reason_text
from contentops.services import publishing
from contentops.services.publishing import groups, mass_send
from tests.fakes.wechat_mp import FakeWeChatMP

from .engine_support import Clock

SERVER_TOKEN = "mp-server-token"


@pytest.fixture
def fake(wechat_mp_fake):
    return wechat_mp_fake


def mp_channel(make, fake, **config):
    return make.channel("wechat_mp", config={
        "app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
        "account_type": "subscription", "mode": "mass_send",
        "default_thumb": f"{fake.base}/img/cover.png", "server_token": SERVER_TOKEN,
        **config})


def article(make, channel, when, n, **kw):
    return make.post(channel, when, title=f"第{n}篇 会员日", body=f"![图]({make._img}/img/{n}.png)"
                     f"\n\n**第{n}篇** 正文", **kw)


@pytest.fixture
def engine(db, fake):
    clock = Clock(publishing_now())
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    from contentops.services import channels as channel_service

    from .builders import SECRET_KEY

    def adapter_for(channel):
        return channel_service.build_adapter(channel, SECRET_KEY)

    def dispatch():
        return publishing.Dispatcher(factory, adapter_for, node="n1", clock=clock, workers=2,
                                     rng=random.Random(1)).run()

    def track():
        return publishing.track_due(factory(), now=clock.now, node="n1",
                                    adapter_for=adapter_for)

    return clock, dispatch, track


def publishing_now():
    from .builders import NOW

    return NOW + timedelta(hours=1)


def fresh(db, *posts):
    db.session.expire_all()
    return [db.session.get(Post, p.id) for p in posts]


def event_xml(msg_id: int, urls: list[str], status: str = "send success") -> bytes:
    items = "".join(f"<item><ArticleIdx>{i}</ArticleIdx><ArticleUrl><![CDATA[{u}]]>"
                    f"</ArticleUrl></item>" for i, u in enumerate(urls, start=1))
    return (f"<xml><ToUserName><![CDATA[gh_fake]]></ToUserName><FromUserName><![CDATA[oFake]]>"
            f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]>"
            f"</MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
            f"<Status><![CDATA[{status}]]></Status><TotalCount>120</TotalCount>"
            f"<FilterCount>118</FilterCount><SentCount>117</SentCount><ErrorCount>1</ErrorCount>"
            f"<CopyrightCheckResult><Count>0</Count><ResultList></ResultList><CheckState>1"
            f"</CheckState></CopyrightCheckResult><ArticleUrlResult><Count>{len(urls)}</Count>"
            f"<ResultList>{items}</ResultList></ArticleUrlResult></xml>").encode()


def signed(path: str, token: str = SERVER_TOKEN, *, timestamp: str | None = None,
           **extra) -> str:
    timestamp, nonce = timestamp or str(int(time.time())), "n0nce"
    sig = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    query = "&".join(f"{k}={v}" for k, v in {"signature": sig, "timestamp": timestamp,
                                              "nonce": nonce, **extra}.items())
    return f"{path}?{query}"


@pytest.fixture
def api_headers(db):
    from contentops.services.users import create_token

    def headers(user):
        _token, plain = create_token(db.session, user)
        db.session.commit()
        return {"Authorization": f"Bearer {plain}"}

    return headers


@pytest.fixture(autouse=True)
def _images(make, fake):
    make._img = fake.base


def test_same_time_forms_one_send_in_order_and_counts_once(db, make, fake):
    channel = mp_channel(make, fake)
    when = publishing_now() + timedelta(hours=2)
    posts = [article(make, channel, when, n) for n in (1, 2, 3)]
    db.session.expire_all()
    keys = {p.send_group for p in posts}
    assert len(keys) == 1 and None not in keys
    assert [p.group_position for p in posts] == [1, 2, 3]
    # Three articles, one mass send: the subscription account's day is full, not over.
    day = mass_send.usage(db.session, when - timedelta(days=1), when + timedelta(days=1),
                          tz="Asia/Shanghai", channel_ids=[channel.id])
    assert [(d.count, d.quota) for d in day] == [(1, 1)]
    # The order is editable: the third becomes the 头条.
    groups.set_position(db.session, posts[2], 1)
    db.session.commit()
    assert [p.id for p in groups.group_of(db.session, posts[0])] == \
        [posts[2].id, posts[0].id, posts[1].id]
    # Moving one member moves the whole send; `alone` takes it out.
    later = when + timedelta(hours=1)
    publishing.schedule_post(db.session, posts[1], later, actor=None, now=make.now)
    db.session.commit()
    assert {p.scheduled_at for p in fresh(db, *posts)} == {later}
    publishing.schedule_post(db.session, posts[1], later + timedelta(hours=1), actor=None,
                             now=make.now, alone=True)
    db.session.commit()
    moved, rest = fresh(db, posts[1])[0], fresh(db, posts[0], posts[2])
    assert moved.send_group is None and moved.scheduled_at == later + timedelta(hours=1)
    assert [p.group_position for p in sorted(rest, key=lambda p: p.group_position)] == [1, 2]


def test_a_ninth_article_is_refused_when_scheduling(db, make, fake, client, api_headers):
    from contentops.timeutil import utcnow

    channel = mp_channel(make, fake)
    make.now = utcnow()
    when = (make.now + timedelta(days=30)).replace(microsecond=0)
    for n in range(8):
        article(make, channel, when, n)
    ninth = article(make, channel, None, 9)
    with pytest.raises(ValidationError) as err:
        publishing.schedule_post(db.session, ninth, when, actor=None, now=make.now)
    assert "scheduled_at" in err.value.fields and err.value.params["max"] == 8
    db.session.rollback()
    # Through the API: 422 with the field and the reason.
    response = client.post(f"/api/v1/posts/{ninth.id}/schedule",
                           json={"scheduled_at": when.isoformat()},
                           headers=api_headers(make.user("editor")))
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()["error"]
    assert "scheduled_at" in body["fields"] and "8" in body["message"]
    assert fresh(db, ninth)[0].scheduled_at is None
    # WeChat itself refuses nine articles in one draft (45008).
    adapter = publishing_adapter(channel)
    with pytest.raises(Exception) as refused:
        adapter.api().call("/cgi-bin/draft/add", body={"articles": [
            {"title": "t", "content": "<p>x</p>", "thumb_media_id": "x"}] * 9})
    assert "45008" in str(refused.value)


def publishing_adapter(channel):
    from contentops.services import channels as channel_service

    from .builders import SECRET_KEY

    return channel_service.build_adapter(channel, SECRET_KEY)


def test_group_of_three_goes_out_as_one_mass_send_and_the_event_settles_it(
        db, make, fake, engine, client):
    clock, dispatch, track = engine
    channel = mp_channel(make, fake)
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    posts = [article(make, channel, when, n) for n in (1, 2, 3)]
    dispatch()
    drafts = list(fake.drafts.values())
    assert len(drafts) == 1 and [a["title"] for a in drafts[0]] == \
        ["第1篇 会员日", "第2篇 会员日", "第3篇 会员日"]
    assert fake.calls.count("/cgi-bin/message/mass/sendall") == 1 and fake.sends == 1
    assert fake.quota == 99  # one quota unit for three articles
    handed = fresh(db, *posts)
    msg_id = next(iter(fake.mass))
    assert {p.status for p in handed} == {"publishing"}
    assert {p.external_id for p in handed} == {f"msg:{msg_id}"}
    assert [p.progress["idx"] for p in handed] == [1, 2, 3]
    # WeChat reports the finished send to the server URL, with each article's URL.
    urls = [f"https://mp.weixin.qq.com/s/mass-{msg_id}-{i}" for i in (1, 2, 3)]
    path = f"/api/v1/channels/{channel.id}/wechat-events"
    response = client.post(signed(path), data=event_xml(msg_id, urls),
                           content_type="text/xml")
    assert response.status_code == 200 and response.get_data(as_text=True) == "success"
    done = fresh(db, *posts)
    assert [p.status for p in done] == ["published"] * 3
    assert [p.external_url for p in done] == urls
    assert {p.reached for p in done} == {117}
    # WeChat retries an event it thinks was lost: nothing changes twice.
    again = client.post(signed(path), data=event_xml(msg_id, urls), content_type="text/xml")
    assert again.status_code == 200
    attempts = db.session.scalars(select(PublishAttempt.outcome).where(
        PublishAttempt.post_id == posts[0].id)).all()
    assert attempts.count("published") == 2  # the send, and the event's settlement once


def test_freepublish_group_gets_each_articles_url(db, make, fake, engine):
    clock, dispatch, track = engine
    channel = mp_channel(make, fake, mode="publish")
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    posts = [article(make, channel, when, n) for n in (1, 2)]
    dispatch()
    assert len(fake.drafts) == 1 and len(fake.publishes) == 1
    publish_id = next(iter(fake.publishes))
    fake.finish_publish(publish_id, 0)
    clock.advance(61)
    track()
    done = fresh(db, *posts)
    assert [p.status for p in done] == ["published", "published"]
    assert [p.external_url for p in done] == [
        FakeWeChatMP.article_url(f"art-{publish_id}", 1),
        FakeWeChatMP.article_url(f"art-{publish_id}", 2)]


def test_an_unapproved_article_holds_the_whole_send(db, make, fake, engine):
    clock, dispatch, track = engine
    channel = mp_channel(make, fake)
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    ready = [article(make, channel, when, n) for n in (1, 2)]
    waiting = article(make, channel, when, 3, approved=False)
    assert len({p.send_group for p in fresh(db, *ready, waiting)}) == 1
    dispatch()
    assert not fake.drafts and fake.sends == 0  # nothing went out short of an article
    held = fresh(db, *ready, waiting)
    assert [p.status for p in held] == ["missed"] * 3
    reasons = [reason_text(p.last_error) for p in held[:2]]
    assert all("第3篇 会员日" in r and "头条" in r for r in reasons), reasons
    # Retrying one article retries the send, and only once every article is approved.
    with pytest.raises(DomainError):
        publishing.retry_post(db.session, held[0], actor=None, now=clock.now)
    db.session.rollback()
    make.approve(held[2].piece)
    publishing.retry_post(db.session, fresh(db, ready[0])[0], actor=None, now=clock.now)
    db.session.commit()
    assert {p.status for p in fresh(db, *ready, waiting)} == {"retrying"}
    dispatch()
    assert len(fake.drafts) == 1 and len(next(iter(fake.drafts.values()))) == 3
    assert fake.sends == 1
    assert {p.status for p in fresh(db, *ready, waiting)} == {"publishing"}


def test_event_endpoint_handshake_signature_and_failures(db, make, fake, engine, client):
    clock, dispatch, track = engine
    channel = mp_channel(make, fake)
    path = f"/api/v1/channels/{channel.id}/wechat-events"
    ok = client.get(signed(path, echostr="hello123"))
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "hello123"
    bad = client.get(signed(path, token="wrong", echostr="hello123"))
    assert bad.status_code == 401 and "hello123" not in bad.get_data(as_text=True)
    # A failed send (群发保护: nobody confirmed) fails the post with the reason.
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    post = article(make, channel, when, 1)
    dispatch()
    msg_id = next(iter(fake.mass))
    response = client.post(signed(path), data=event_xml(msg_id, [], status="err(40002)"),
                           content_type="text/xml")
    assert response.status_code == 200
    failed = fresh(db, post)[0]
    assert failed.status == "failed" and "30" in reason_text(failed.last_error)
    # Unsafe or broken XML is refused with a readable error, changing nothing.
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><MsgType>&a;'
            b"</MsgType></xml>")
    assert client.post(signed(path), data=bomb, content_type="text/xml").status_code == 400
    assert client.post(signed(path), data=b"<xml>", content_type="text/xml").status_code == 400
    # Unsigned posts are refused, and so is a signed query replayed later: the signature
    # does not cover the body, so only a current timestamp is taken.
    assert client.post(path, data=event_xml(msg_id, []),
                       content_type="text/xml").status_code == 401
    stale = str(int(time.time()) - 3600)
    assert client.post(signed(path, timestamp=stale), data=event_xml(msg_id, []),
                       content_type="text/xml").status_code == 401


def test_calendar_shows_a_send_as_one_event_and_refuses_a_ninth_on_drop(
        db, make, fake, client, api_headers):
    from contentops.services import calendar as cal
    from contentops.timeutil import utcnow

    channel = mp_channel(make, fake)
    make.now = utcnow()
    when = (make.now + timedelta(days=10)).replace(second=0, microsecond=0)
    posts = [article(make, channel, when, n) for n in range(1, 4)]
    alone = article(make, channel, when + timedelta(days=1), 9)
    events = cal.feed_events(db.session, when - timedelta(days=1), when + timedelta(days=3),
                             tz="Asia/Shanghai", filters=cal.Filters(), now=make.now,
                             can_move=True)
    by_id = {e["id"]: e for e in events}
    assert set(by_id) == {str(posts[0].id), str(alone.id)}  # one event for the send
    group = by_id[str(posts[0].id)]["extendedProps"]["group"]
    assert group["size"] == 3 and group["others"] == 2
    assert [a["id"] for a in group["posts"]] == [p.id for p in posts]
    assert [a["position"] for a in group["posts"]] == [1, 2, 3]
    assert by_id[str(alone.id)]["extendedProps"]["group"] is None
    # The contract's fields are still there for the send's event.
    assert {"id", "title", "start", "color", "extendedProps"} <= set(by_id[str(posts[0].id)])
    # Through the API the page uses.
    headers = api_headers(make.user("editor"))
    feed = client.get(f"/api/v1/calendar?start={(when - timedelta(days=1)).date()}"
                      f"&end={(when + timedelta(days=3)).date()}&tz=Asia/Shanghai",
                      headers=headers).get_json()
    assert [e["extendedProps"]["group"]["others"] for e in feed
            if e["extendedProps"].get("group")] == [2]
    # Dropping the lone article onto the send joins it (a fourth article) …
    moved = client.patch(f"/api/v1/posts/{alone.id}", json={
        "scheduled_at": when.isoformat(), "timezone": "Asia/Shanghai"}, headers=headers)
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert fresh(db, alone)[0].group_position == 4
    # … and a ninth is refused with the reason the page shows, changing nothing.
    for n in range(5, 9):
        article(make, channel, when, n)
    ninth = article(make, channel, when + timedelta(days=2), 10)
    refused = client.patch(f"/api/v1/posts/{ninth.id}", json={
        "scheduled_at": when.isoformat(), "timezone": "Asia/Shanghai"},
        headers={**headers, "Accept-Language": "zh-CN"})
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert "8" in error["fields"]["scheduled_at"][0]
    assert fresh(db, ninth)[0].scheduled_at == when + timedelta(days=2)


def test_order_is_editable_from_the_piece_page_and_the_api(db, make, fake, client, login,
                                                           api_headers):
    from contentops.timeutil import utcnow

    channel = mp_channel(make, fake)
    make.now = utcnow()
    when = (make.now + timedelta(days=5)).replace(second=0, microsecond=0)
    first, second, third = (article(make, channel, when, n) for n in (1, 2, 3))
    editor = make.user("editor")
    login(editor)
    page = client.get(f"/pieces/{third.piece_id}").get_data(as_text=True)
    assert 'data-group-position="3"' in page and "/lead" in page
    assert client.post(f"/pieces/{third.piece_id}/posts/{third.id}/lead").status_code == 302
    assert [p.group_position for p in fresh(db, first, second, third)] == [2, 3, 1]
    response = client.post(f"/api/v1/posts/{first.id}/position", json={"position": 1},
                           headers=api_headers(editor))
    assert response.status_code == 200 and response.get_json()["group_position"] == 1
    assert [p.group_position for p in fresh(db, first, second, third)] == [1, 3, 2]
    bad = client.post(f"/api/v1/posts/{first.id}/position", json={"position": 9},
                      headers=api_headers(editor))
    assert bad.status_code == 422 and "position" in bad.get_json()["error"]["fields"]
    # Both changes are in the audit log, by whom.
    from contentops.models import AuditEvent

    moves = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "post.position")
                               .order_by(AuditEvent.id)).all()
    assert [(m.object_id, m.actor_id) for m in moves] == [(third.id, editor.id),
                                                          (first.id, editor.id)]


def test_an_event_never_sets_an_article_address_outside_wechat(db, make, fake, engine, client):
    clock, dispatch, track = engine
    channel = mp_channel(make, fake)
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    post = article(make, channel, when, 1)
    dispatch()
    msg_id = next(iter(fake.mass))
    response = client.post(signed(f"/api/v1/channels/{channel.id}/wechat-events"),
                           data=event_xml(msg_id, ["javascript:alert(1)"]),
                           content_type="text/xml")
    assert response.status_code == 200
    done = fresh(db, post)[0]
    assert done.status == "published" and done.external_url is None


def test_a_send_of_three_articles_takes_one_slot_of_the_daily_quota(db, make, fake, engine):
    from contentops.services.publishing import quotas

    clock, dispatch, track = engine
    channel = mp_channel(make, fake, mode="publish")
    channel.daily_quota = 1  # the channel's own limit, set by an admin
    db.session.commit()
    when = clock.now - timedelta(seconds=5)
    make.now = when - timedelta(minutes=1)
    # Scheduling the 次条 at the 头条's time joins its send: allowed on a quota of one.
    posts = [article(make, channel, when, n) for n in (1, 2, 3)]
    assert len({p.send_group for p in fresh(db, *posts)}) == 1
    # A second send that day is refused.
    other = article(make, channel, None, 4)
    refused = quotas.check_schedule(db.session, other, when + timedelta(hours=1))
    assert [f.code for f in refused if f.severity == "error"] == ["daily_quota"]
    # The dispatcher counts the send once: all three go out together.
    dispatch()
    assert {p.status for p in fresh(db, *posts)} == {"publishing"}
    assert fake.calls.count("/cgi-bin/freepublish/submit") == 1
