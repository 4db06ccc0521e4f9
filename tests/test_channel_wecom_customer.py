"""`wecom_customer` against a local fake of the WeCom 客户联系 API: broadcasts and 朋友圈 tasks
that staff confirm (N of M), reach per customer, deadlines, token expiry, and a lost reply that
must not lead to a second broadcast."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from contentops.channels.base import OutgoingPost, PermanentError, TransientError, text_bytes
from contentops.channels.registry import adapter_class
from contentops.services import channels as channel_service
from tests.fakes.wecom_customer import FakeWeComCustomer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(adapter_class("wecom_customer"), "clock", staticmethod(c))
    return c


@pytest.fixture
def fake(clock):
    service = FakeWeComCustomer()
    service.clock = clock
    for userid, customers in {"zhangsan": ["wmA1", "wmA2", "wmA3"], "lisi": ["wmB1", "wmB2"],
                              "wangwu": ["wmC1"]}.items():
        for ext in customers:
            service.add_customer(userid, ext, tags={"et-vip"} if ext != "wmA3" else set())
    service.add_group("zhangsan", "wrG1")
    service.add_group("lisi", "wrG2")
    service.start()
    yield service
    service.release.set()
    service.stop()


@pytest.fixture
def images():
    def app(environ, start_response):
        if environ["PATH_INFO"] in ("/poster.png", "/b.png", "/p.png"):
            return Response(PNG, content_type="image/png")(environ, start_response)
        return Response("gone", status=404)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def adapter(fake, **config):
    base = {"corp_id": fake.corp_id, "secret": "contact-secret", "api_base": fake.base,
            "kind": "single", "senders": ["zhangsan", "lisi", "wangwu"], "timeout_s": 2}
    return adapter_class("wecom_customer")({**base, **config})


def outgoing(body="双11 会员专享：**满300减50**。", **kw) -> OutgoingPost:
    kw.setdefault("public_url", "https://shop.example.com/p/d11")
    kw.setdefault("scheduled_at", datetime.fromtimestamp(NOW - 60, UTC))
    return OutgoingPost(post_id=7, piece_id=3, version=1, title="双11 预告", body_markdown=body,
                        summary="会员专享五折", **kw)


# --- settings --------------------------------------------------------------------------------

def test_config_needs_senders_and_keeps_the_secret_write_only():
    plain, secret, errors = channel_service.validate_config("wecom_customer", {
        "corp_id": "ww1", "secret": "s3", "senders": "zhangsan, lisi ,zhangsan"})
    assert errors == {}
    assert plain["senders"] == ["zhangsan", "lisi"]
    assert plain["kind"] == "single" and plain["deadline_hours"] == 24
    assert secret == {"secret": "s3"} and "secret" not in plain
    _, _, errors = channel_service.validate_config("wecom_customer", {
        "corp_id": "ww1", "secret": "s3", "senders": "张三!"})
    assert "config.senders" in errors
    _, _, errors = channel_service.validate_config("wecom_customer", {"corp_id": "ww1"})
    assert {"config.secret", "config.senders"} <= set(errors)
    help_text = next(f.help for f in adapter_class("wecom_customer").config_fields
                     if f.name == "secret")
    assert "客户联系" in help_text and "2023-12-01" in help_text


def test_readable_errors_for_wrong_corp_secret_and_the_old_system_app_secret(fake):
    post = outgoing()
    with pytest.raises(PermanentError) as exc:
        adapter(fake, corp_id="ww-other").publish(post, "k")
    assert "40013" in str(exc.value)
    with pytest.raises(PermanentError) as exc:
        adapter(fake, secret="wrong").publish(post, "k")
    assert "40001" in str(exc.value) and "客户联系" in str(exc.value)
    with pytest.raises(PermanentError) as exc:
        adapter(fake, secret="system-app-secret").publish(post, "k")
    assert "48002" in str(exc.value) and "2023-12-01" in str(exc.value)
    assert fake.templates == {}


# --- 客户群发 ----------------------------------------------------------------------------------

def test_publish_hands_one_broadcast_per_sender_to_staff(fake, images):
    post = outgoing(body=f"正文。\n\n![海报]({images}/poster.png)\n\n![图2]({images}/b.png)")
    result = adapter(fake, tag_filter="et-vip").publish(post, "k")
    assert result.status == "awaiting_staff"
    assert result.progress["confirmed"] == 0 and result.progress["total"] == 3
    assert [s["id"] for s in result.progress["staff"]] == ["zhangsan", "lisi", "wangwu"]
    assert result.external_id == result.progress["staff"][0]["msgid"]
    assert result.check_after_s and result.check_after_s > 0
    assert len(fake.templates) == 3
    tpl = fake.template_for("zhangsan")[0]
    assert tpl.targets == {"zhangsan": ["wmA1", "wmA2"]}  # wmA3 lacks the tag
    body = tpl.body
    assert body["chat_type"] == "single"
    assert body["text"]["content"].startswith("双11 预告\n\n正文。")
    link, first, second = body["attachments"]
    assert link == {"msgtype": "link", "link": {
        "title": "双11 预告", "url": "https://shop.example.com/p/d11", "desc": "会员专享五折",
        "picurl": f"{images}/poster.png"}}
    # Images went through uploadimg: only WeCom's own addresses are accepted.
    assert first["image"]["pic_url"] in fake.image_urls
    assert second["image"]["pic_url"] in fake.image_urls
    assert body["tag_filter"] == {"group_list": [{"tag_list": ["et-vip"]}]}


def test_partial_confirmation_counts_staff_and_customers(fake):
    a = adapter(fake)
    post = outgoing()
    result = a.publish(post, "k")
    fake.staff["lisi"]["wmB2"].friend = False  # deleted lisi before the send
    msgid = {s["id"]: s["msgid"] for s in result.progress["staff"]}
    fake.staff_confirms(msgid["zhangsan"], "zhangsan")
    fake.staff_confirms(msgid["lisi"], "lisi")
    clock_before = fake.clock()
    state = a.track(post, result.external_id, result.progress)
    assert state.status == "awaiting_staff"
    progress = state.progress
    assert (progress["confirmed"], progress["total"]) == (2, 3)
    assert progress["reached"] == 4 and progress["not_friend"] == 1
    assert progress["already_received"] == 0
    by_id = {s["id"]: s for s in progress["staff"]}
    assert by_id["zhangsan"]["status"] == "sent"
    assert by_id["zhangsan"]["sent_at"] == datetime.fromtimestamp(
        int(clock_before), UTC).isoformat()
    assert by_id["wangwu"]["status"] == "pending"
    # The last one sends: published, with the totals.
    fake.staff_confirms(msgid["wangwu"], "wangwu")
    done = a.track(post, result.external_id, progress)
    assert done.status == "published"
    assert (done.progress["confirmed"], done.progress["reached"]) == (3, 5)


def test_customers_over_the_receive_limit_show_as_already_received(fake, clock):
    fake.rule = "day"  # the admin tightened 群发规则 to one a day
    a = adapter(fake, senders=["zhangsan"])
    first = a.publish(outgoing(), "k1")
    fake.staff_confirms(first.external_id, "zhangsan")
    clock.now += 3600
    second_post = outgoing(body="第二条消息")
    second = a.publish(second_post, "k2")
    assert second.external_id != first.external_id
    fake.staff_confirms(second.external_id, "zhangsan")
    state = a.track(second_post, second.external_id, second.progress)
    assert state.status == "published"
    assert state.progress["already_received"] == 3 and state.progress["reached"] == 0


def test_deadline_publishes_with_who_did_not_send_and_reminds_them(fake):
    a = adapter(fake)
    post = outgoing()
    result = a.publish(post, "k")
    msgid = {s["id"]: s["msgid"] for s in result.progress["staff"]}
    fake.staff_confirms(msgid["lisi"], "lisi")
    final = a.track(post, result.external_id, result.progress, final=True)
    assert final.status == "published"
    assert (final.progress["confirmed"], final.progress["total"]) == (1, 3)
    pending = [s["id"] for s in final.progress["staff"] if s["status"] == "pending"]
    assert pending == ["zhangsan", "wangwu"]
    reminded = [b["msgid"] for name, b in fake.calls if name == "remind_groupmsg_send"]
    assert reminded == [msgid["zhangsan"], msgid["wangwu"]]


def test_deadline_with_nobody_sent_is_a_permanent_error(fake):
    a = adapter(fake)
    post = outgoing()
    result = a.publish(post, "k")
    with pytest.raises(PermanentError) as exc:
        a.track(post, result.external_id, result.progress, final=True)
    assert "zhangsan, lisi, wangwu" in str(exc.value)


def test_reminders_stop_at_three_per_broadcast_in_24_hours(fake, clock):
    a = adapter(fake, senders=["zhangsan"])
    result = a.publish(outgoing(), "k")
    progress = result.progress
    for _ in range(5):
        progress = a.remind(progress)
        clock.now += 60
    assert len([c for c in fake.calls if c[0] == "remind_groupmsg_send"]) == 3
    assert len(progress["staff"][0]["reminded"]) == 3
    clock.now += 24 * 3600
    a.remind(progress)
    assert len([c for c in fake.calls if c[0] == "remind_groupmsg_send"]) == 4


def test_group_broadcasts_go_to_the_groups_each_sender_owns(fake):
    a = adapter(fake, kind="group", senders=["zhangsan", "lisi"])
    post = outgoing()
    result = a.publish(post, "k")
    assert {t.sender: t.targets for t in fake.templates.values()} == {
        "zhangsan": {"zhangsan": ["wrG1"]}, "lisi": {"lisi": ["wrG2"]}}
    assert all(t.chat_type == "group" for t in fake.templates.values())
    fake.staff_confirms(result.progress["staff"][0]["msgid"], "zhangsan")
    state = a.track(post, result.external_id, result.progress)
    assert (state.progress["confirmed"], state.progress["reached"]) == (1, 1)


def test_token_expiry_and_revocation_mid_run_refresh_once_and_go_on(fake):
    a = adapter(fake)
    post = outgoing()
    result = a.publish(post, "k")
    assert fake.token_requests == 1
    fake.expire_tokens()  # 42001 on the next call
    fake.staff_confirms(result.progress["staff"][0]["msgid"], "zhangsan")
    state = a.track(post, result.external_id, result.progress)
    assert state.progress["confirmed"] == 1
    assert fake.token_requests == 2
    fake.revoke_tokens()  # 40014
    state = a.track(post, result.external_id, state.progress)
    assert state.progress["confirmed"] == 1 and fake.token_requests == 3


def test_a_lost_reply_does_not_create_a_second_broadcast(fake):
    a = adapter(fake, senders=["zhangsan"], timeout_s=1)
    post = outgoing()
    fake.stall_after_create = True
    with pytest.raises(TransientError):
        a.publish(post, "k")  # the broadcast was created but the reply never came
    assert fake.created.is_set() and len(fake.templates) == 1
    fake.stall_after_create = False
    fake.release.set()
    again = a.publish(post, "k")
    assert len(fake.templates) == 1
    assert again.external_id == next(iter(fake.templates))
    assert a.find_existing(post, "k").external_id == again.external_id


def test_an_interrupted_run_creates_only_the_missing_senders_broadcasts(fake):
    post = outgoing()
    adapter(fake, senders=["zhangsan"]).publish(post, "k")  # the run died after the first
    other = adapter(fake, senders=["zhangsan"]).publish(outgoing(body="另一条"), "k2")
    assert adapter(fake).find_existing(post, "k") is None  # not all of it exists
    result = adapter(fake).publish(post, "k")
    assert len(fake.templates) == 4  # 2 earlier + lisi + wangwu
    assert len(fake.template_for("zhangsan")) == 2
    assert result.progress["staff"][0]["msgid"] != other.external_id


def test_text_limits_are_checked_before_sending(fake):
    a = adapter(fake)
    long_body = "\n\n".join(["这是一段很长的会员活动说明，" * 20] * 12)
    assert text_bytes(long_body) > 4000
    with_link = outgoing(body=long_body)
    findings = a.validate(with_link)
    assert [f.code for f in findings] == ["text_shortened"]
    result = a.publish(with_link, "k")
    content = fake.templates[result.external_id].body["text"]["content"]
    assert text_bytes(content) <= 4000
    no_link = outgoing(body=long_body, public_url=None)
    assert [f.code for f in a.validate(no_link) if f.severity == "error"] == ["text_too_long"]
    with pytest.raises(PermanentError):
        a.publish(no_link, "k2")


def test_a_missing_image_is_a_readable_permanent_error(fake, images):
    post = outgoing(body=f"![x]({images}/missing.png)")
    with pytest.raises(PermanentError) as exc:
        adapter(fake).publish(post, "k")
    assert "404" in str(exc.value)
    assert fake.templates == {}


def test_the_secret_never_reaches_the_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    adapter(fake, senders=["zhangsan"]).publish(outgoing(), "k")
    assert "contact-secret" not in caplog.text
    assert "tok-" not in caplog.text


# --- the fake's own strictness ----------------------------------------------------------------

def test_fake_refuses_what_wecom_refuses(fake):
    import requests

    token = requests.get(f"{fake.base}/cgi-bin/gettoken",
                         params={"corpid": fake.corp_id, "corpsecret": "contact-secret"}
                         ).json()["access_token"]

    def add(body):
        return requests.post(f"{fake.base}/cgi-bin/externalcontact/add_msg_template",
                             params={"access_token": token}, json=body).json()["errcode"]

    base = {"chat_type": "single", "sender": "zhangsan", "text": {"content": "hi"}}
    assert add(base) == 0
    assert add({**base, "text": {"content": "字" * 1400}}) == 45002  # 4200 bytes
    assert add({**base, "attachments": [
        {"msgtype": "image", "image": {"pic_url": "https://elsewhere.example/a.png"}}]}) == 40058
    assert add({**base, "attachments": [{"msgtype": "link", "link": {
        "title": "t", "url": "https://x.example"}}] * 10}) == 40058
    assert add({**base, "attachments": [{"msgtype": "link", "link": {"url": "https://x"}}]}) \
        == 41016
    assert add({"chat_type": "group", "text": {"content": "hi"}}) == 41009
    assert add({**base, "sender": "nobody"}) == 40003
    assert requests.post(f"{fake.base}/cgi-bin/externalcontact/add_msg_template",
                         json=base).json()["errcode"] == 41001
    msgid = next(iter(fake.templates))
    fake.templates[msgid].cancelled = True
    assert fake.staff_confirms(msgid, "zhangsan") == []  # a stopped broadcast cannot be sent


# --- 朋友圈 ----------------------------------------------------------------------------------

def test_moment_task_is_tracked_from_job_to_moment_and_per_member(fake, images):
    a = adapter(fake, kind="moment", senders=["zhangsan", "lisi", "ghost"],
                tag_filter="et-vip")
    post = outgoing(body=f"新品上市\n\n![图]({images}/p.png)")
    result = a.publish(post, "k")
    assert result.status == "awaiting_staff" and result.external_id.startswith("job:")
    (moment,) = fake.moments.values()
    assert moment.body["visible_range"] == {
        "sender_list": {"user_list": ["zhangsan", "lisi", "ghost"]},
        "external_contact_list": {"tag_list": ["et-vip"]}}
    assert moment.body["attachments"][0]["image"]["media_id"] in fake.attachments
    assert "阅读全文：https://shop.example.com/p/d11" in moment.body["text"]["content"]
    creating = a.track(post, result.external_id, result.progress)
    assert creating.status == "awaiting_staff" and "moment_id" not in creating.progress
    made = a.track(post, creating.external_id, creating.progress)
    moment_id = made.progress["moment_id"]
    assert made.external_id == moment_id
    assert (made.progress["confirmed"], made.progress["total"]) == (0, 2)  # ghost is invalid
    fake.staff_publishes_moment(moment_id, "zhangsan")
    state = a.track(post, made.external_id, made.progress)
    assert (state.progress["confirmed"], state.progress["reached"]) == (1, 2)
    final = a.track(post, state.external_id, state.progress, final=True)
    assert final.status == "published"


def test_moment_text_is_cut_to_2000_characters(fake):
    a = adapter(fake, kind="moment", senders=["zhangsan"])
    post = outgoing(body="长" * 2500)
    assert [f.code for f in a.validate(post)] == ["text_shortened", "moment_link_in_text"]
    a.publish(post, "k")
    (moment,) = fake.moments.values()
    content = moment.body["text"]["content"]
    assert len(content) <= 2000 and content.endswith("https://shop.example.com/p/d11")


def test_moment_lost_reply_is_found_again(fake):
    a = adapter(fake, kind="moment", senders=["zhangsan"], timeout_s=1)
    post = outgoing()
    fake.stall_after_create = True
    with pytest.raises(TransientError):
        a.publish(post, "k")
    fake.stall_after_create = False
    fake.release.set()
    fake.finish_jobs()
    again = a.publish(post, "k")
    (moment,) = fake.moments.values()
    assert again.external_id == moment.moment_id
    assert again.progress["moment_id"] == moment.moment_id
    fake.staff_publishes_moment(moment.moment_id, "zhangsan")
    assert a.track(post, again.external_id, again.progress).status == "published"


# --- mini program card, readable refusals ------------------------------------------------------

def test_miniprogram_card_is_attached_with_an_uploaded_cover(fake, images):
    mini = adapter(fake, miniprogram_appid="wx-fake-miniapp",
                   miniprogram_page="pages/sale/index.html",
                   miniprogram_cover=f"{images}/p.png")
    result = mini.publish(outgoing(), "k")
    assert result.status == "awaiting_staff"
    body = fake.template_for("zhangsan")[0].body
    cards = [a["miniprogram"] for a in body["attachments"] if a["msgtype"] == "miniprogram"]
    assert len(cards) == 1
    card = cards[0]
    assert (card["appid"], card["page"], card["title"]) == (
        "wx-fake-miniapp", "pages/sale/index.html", "双11 预告")
    # The cover went through media/upload: a media id WeCom knows as an image.
    assert fake.media[card["pic_media_id"]] == "image"
    # A mini program not linked to the company is refused readably.
    with pytest.raises(PermanentError) as exc:
        adapter(fake, miniprogram_appid="wx-other", miniprogram_page="pages/a.html",
                miniprogram_cover=f"{images}/p.png").publish(outgoing(body="另一条"), "k2")
    assert "90207" in str(exc.value)


def test_miniprogram_page_must_end_in_html_before_sending(fake, images):
    wrong = adapter(fake, miniprogram_appid="wx-fake-miniapp", miniprogram_page="pages/sale",
                    miniprogram_cover=f"{images}/p.png")
    assert "miniprogram_page" in {f.code for f in wrong.validate(outgoing())}
    with pytest.raises(PermanentError):
        wrong.publish(outgoing(), "k")
    assert fake.templates == {}


def test_84061_and_missing_fields_read_as_plain_reasons(fake):
    api = adapter(fake).api()
    with pytest.raises(PermanentError) as exc:
        api.call("POST", "/cgi-bin/externalcontact/add_msg_template", body={
            "chat_type": "single", "sender": "lisi", "external_userid": ["wmA1"],
            "text": {"content": "hi"}})
    assert "84061" in str(exc.value) and "not an external contact" in str(exc.value)
    with pytest.raises(PermanentError) as exc:  # a group broadcast needs its sender
        api.call("POST", "/cgi-bin/externalcontact/add_msg_template", body={
            "chat_type": "group", "text": {"content": "hi"}})
    assert "required field is missing" in str(exc.value) and "41009" in str(exc.value)
    with pytest.raises(PermanentError) as exc:  # a link card without its url
        api.call("POST", "/cgi-bin/externalcontact/add_msg_template", body={
            "chat_type": "single", "sender": "lisi", "text": {"content": "hi"},
            "attachments": [{"msgtype": "link", "link": {"title": "t"}}]})
    assert "41010" in str(exc.value)
    assert fake.templates == {}
