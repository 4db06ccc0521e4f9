"""WeCom, DingTalk and Feishu robots against local fakes that speak their wire protocols."""

from __future__ import annotations

import json
import logging
import time

import pytest

from contentops.channels import dingtalk_robot, feishu_bot, wecom_robot
from contentops.channels.base import InDoubt, OutgoingPost, PermanentError, TransientError
from contentops.channels.registry import adapter_class, kinds
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.wecom import FakeWeCom

BODY = "正文第一段，**重点**和[活动页](https://shop.example.com/d11)。\n\n- 满300减50\n- 包邮"


def outgoing(title: str = "双11 会员专享预告", body: str = BODY, **kw) -> OutgoingPost:
    return OutgoingPost(post_id=kw.pop("post_id", 7), piece_id=3, version=2, title=title,
                        body_markdown=body, **kw)


@pytest.fixture
def wecom():
    fake = FakeWeCom().start()
    yield fake
    fake.stop()


@pytest.fixture
def dingtalk():
    fake = FakeDingTalk().start()
    yield fake
    fake.stop()


@pytest.fixture
def feishu():
    fake = FakeFeishu().start()
    yield fake
    fake.stop()


def wecom_adapter(fake: FakeWeCom, **config):
    return adapter_class("wecom_robot")({"webhook_url": fake.webhook_url(), **config})


def ding_adapter(fake: FakeDingTalk, **config):
    return adapter_class("dingtalk_robot")({"webhook_url": fake.webhook_url(),
                                            "secret": "SECtest-secret-456", **config})


def feishu_adapter(fake: FakeFeishu, **config):
    return adapter_class("feishu_bot")({"webhook_url": fake.webhook_url(),
                                        "secret": "feishu-secret-456", **config})


def test_all_kinds_are_registered():
    assert {"webhook", "wecom_robot", "dingtalk_robot", "feishu_bot"} <= set(kinds())
    for name in ("wecom_robot", "dingtalk_robot", "feishu_bot"):
        cls = kinds()[name]
        assert cls.capabilities.per_minute
        assert cls.capabilities.limits
        secret = {f.name for f in cls.config_fields if f.secret}
        assert "webhook_url" in secret  # the URL carries the robot's credential


# --- WeCom ----------------------------------------------------------------------------------

@pytest.mark.parametrize("msgtype", ["text", "markdown", "news"])
def test_wecom_publishes_each_message_type(wecom, msgtype):
    adapter = wecom_adapter(wecom, msgtype=msgtype, mentions="zhangsan, @all")
    post = outgoing(public_url="https://co.example.com/p/d11")
    assert [f for f in adapter.validate(post) if f.severity == "error"] == []
    result = adapter.publish(post, "post-7")
    assert result.status == "published"
    (msg,) = wecom.received
    assert msg["msgtype"] == msgtype
    if msgtype == "text":
        assert msg["text"]["content"].startswith("双11 会员专享预告")
        assert "活动页 (https://shop.example.com/d11)" in msg["text"]["content"]
        assert msg["text"]["mentioned_list"] == ["zhangsan", "@all"]
    elif msgtype == "markdown":
        content = msg["markdown"]["content"]
        assert content.startswith("## 双11 会员专享预告")
        assert "**重点**" in content and "[活动页](https://shop.example.com/d11)" in content
        assert "- 满300减50\n- 包邮" in content
        assert content.endswith("<@zhangsan> <@all>")
    else:
        (article,) = msg["news"]["articles"]
        assert article["title"] == "双11 会员专享预告"
        assert article["url"] == "https://co.example.com/p/d11"
        assert article["description"].startswith("正文第一段")


@pytest.mark.parametrize("code,kind", [(45009, TransientError), (-1, TransientError),
                                       (93000, PermanentError), (40008, PermanentError),
                                       (44004, PermanentError), (40058, PermanentError),
                                       (45002, PermanentError)])
def test_wecom_error_codes_map_to_transient_or_permanent(wecom, code, kind):
    wecom.fail_next(code)
    with pytest.raises(kind) as info:
        wecom_adapter(wecom).publish(outgoing(), "k")
    assert f"errcode {code}" in info.value.detail
    assert wecom.received == []
    if code == 45009:
        assert info.value.retry_after == 60
        assert "20 messages a minute" in str(info.value)


def test_wecom_invalid_key_is_permanent_and_readable(wecom):
    adapter = adapter_class("wecom_robot")({"webhook_url": wecom.webhook_url("badkey-zz9")})
    with pytest.raises(PermanentError) as info:
        adapter.publish(outgoing(), "k")
    assert "robot's key" in str(info.value)
    assert "badkey-zz9" not in str(info.value) + (info.value.detail or "")


def test_wecom_rate_limit_is_the_services_own(wecom):
    adapter = wecom_adapter(wecom, msgtype="text")
    for i in range(20):
        adapter.publish(outgoing(post_id=i), f"k{i}")
    with pytest.raises(TransientError) as info:
        adapter.publish(outgoing(post_id=21), "k21")
    assert "errcode 45009" in info.value.detail
    assert len(wecom.received) == 20


def test_wecom_limits_are_bytes_and_enforced_before_sending(wecom):
    # 700 Chinese characters = 2100 bytes: over the 2048-byte text limit although < 2048 chars.
    long_body = "好" * 700
    adapter = wecom_adapter(wecom, msgtype="text")
    findings = adapter.validate(outgoing(body=long_body))
    assert [f.code for f in findings if f.severity == "error"] == ["text_too_long"]
    assert findings[-1].params["limit"] == 2048 and findings[-1].params["size"] > 2048
    with pytest.raises(PermanentError):
        adapter.publish(outgoing(body=long_body), "k")
    assert wecom.raw == []  # refused before any request went out
    # News titles: 43 Chinese characters = 129 bytes > 128.
    news = wecom_adapter(wecom, msgtype="news")
    post = outgoing(title="标" * 43, public_url="https://co.example.com/p/x")
    assert [f.code for f in news.validate(post)] == ["news_title_too_long"]
    assert [f.code for f in news.validate(outgoing(title="标" * 42,
                                                   public_url="https://co.example.com/p/x"))
            ] == []
    assert [f.code for f in news.validate(outgoing())] == ["news_needs_link"]


def test_wecom_long_text_is_shortened_with_a_link_to_the_web_page(wecom):
    body = "\n\n".join(f"第{i}段：" + "内容" * 60 for i in range(30))
    post = outgoing(body=body, public_url="https://co.example.com/p/long")
    adapter = wecom_adapter(wecom, msgtype="markdown")
    findings = adapter.validate(post)
    assert [f.severity for f in findings] == ["warning"]
    adapter.publish(post, "k")
    content = wecom.received[0]["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith("[阅读全文](https://co.example.com/p/long)")
    assert "第0段" in content and "第29段" not in content


def test_wecom_markdown_subset():
    adapter = adapter_class("wecom_robot")({"webhook_url": "http://x/cgi-bin/webhook/send?key=k"})
    md = adapter.render(outgoing(body="# 大标题\n\n*斜体* ![图](https://i.example.com/a.png)"))
    content = md["markdown"]["content"]
    assert "# 大标题" in content
    assert "*斜体*" not in content and "斜体" in content  # WeCom has no italics
    assert "[图](https://i.example.com/a.png)" in content and "![" not in content


# --- DingTalk -------------------------------------------------------------------------------

@pytest.mark.parametrize("msgtype", ["text", "markdown", "link", "actionCard"])
def test_dingtalk_publishes_each_message_type_with_a_valid_signature(dingtalk, msgtype):
    adapter = ding_adapter(dingtalk, msgtype=msgtype, at_mobiles="13800000000")
    adapter.publish(outgoing(public_url="https://co.example.com/p/d11"), "k")
    (msg,) = dingtalk.received
    assert msg["msgtype"] == msgtype
    if msgtype in ("text", "markdown"):
        assert msg["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
        text = msg["text"]["content"] if msgtype == "text" else msg["markdown"]["text"]
        assert "@13800000000" in text  # DingTalk only notifies mobiles named in the text
    if msgtype == "link":
        assert msg["link"]["messageUrl"] == "https://co.example.com/p/d11"
    if msgtype == "actionCard":
        assert msg["actionCard"]["singleURL"] == "https://co.example.com/p/d11"


def test_dingtalk_signature_is_checked_by_the_fake(dingtalk):
    good = ding_adapter(dingtalk)
    url, _ = good.endpoint(b"{}")
    assert "&timestamp=" in url and "&sign=" in url
    # The sign is URL-encoded base64 of HMAC-SHA256("{ms}\n{secret}") keyed by the secret.
    ts = int(url.split("timestamp=")[1].split("&")[0])
    assert url.endswith("sign=" + dingtalk_robot.sign("SECtest-secret-456", ts))
    bad = ding_adapter(dingtalk, secret="SECwrong")
    with pytest.raises(PermanentError) as info:
        bad.publish(outgoing(), "k")
    assert "signature does not match" in str(info.value)
    assert "errcode 310000" in info.value.detail
    # A clock more than an hour off is refused like a wrong signature.
    skewed = ding_adapter(dingtalk)
    skewed.clock = lambda: time.time() - 7200
    with pytest.raises(PermanentError):
        skewed.publish(outgoing(), "k")
    good.publish(outgoing(), "k")
    assert len(dingtalk.received) == 1


@pytest.mark.parametrize("setup,expected", [
    ("keywords", "custom keywords"), ("ip", "IP address"),
])
def test_dingtalk_security_refusals_say_why(dingtalk, setup, expected):
    if setup == "keywords":
        dingtalk.keywords = ("ContentOps通知",)
    else:
        dingtalk.ip_refused = True
    with pytest.raises(PermanentError) as info:
        ding_adapter(dingtalk).publish(outgoing(), "k")
    assert expected in str(info.value)


@pytest.mark.parametrize("code,kind", [(130101, TransientError), (-1, TransientError),
                                       (310000, PermanentError), (300001, PermanentError),
                                       (460101, PermanentError)])
def test_dingtalk_error_codes(dingtalk, code, kind):
    dingtalk.fail_next(code)
    with pytest.raises(kind) as info:
        ding_adapter(dingtalk).publish(outgoing(), "k")
    assert f"errcode {code}" in info.value.detail
    if code == 130101:
        assert info.value.retry_after == 600  # DingTalk pauses the robot for 10 minutes


def test_dingtalk_throttle_after_20_a_minute(dingtalk):
    adapter = ding_adapter(dingtalk, msgtype="text")
    for i in range(20):
        adapter.publish(outgoing(post_id=i), "k")
    with pytest.raises(TransientError) as info:
        adapter.publish(outgoing(), "k")
    assert info.value.retry_after == 600


def test_dingtalk_unknown_token_is_permanent(dingtalk):
    adapter = adapter_class("dingtalk_robot")({"webhook_url": dingtalk.webhook_url("nope"),
                                               "secret": "SECtest-secret-456"})
    with pytest.raises(PermanentError) as info:
        adapter.publish(outgoing(), "k")
    assert "access token" in str(info.value)


def test_dingtalk_limits_enforced_before_sending(dingtalk):
    body = "钉" * 7000  # 21000 bytes
    adapter = ding_adapter(dingtalk, msgtype="text")
    assert [f.code for f in adapter.validate(outgoing(body=body))] == ["body_too_long"]
    with pytest.raises(PermanentError):
        adapter.publish(outgoing(body=body), "k")
    assert dingtalk.raw == []
    link = ding_adapter(dingtalk, msgtype="link")
    assert [f.code for f in link.validate(outgoing())] == ["link_needs_url"]
    # With a web page to link to, the long text is shortened to fit and sent.
    post = outgoing(body="\n\n".join(["钉" * 500] * 14), public_url="https://co.example.com/p/1")
    adapter.publish(post, "k")
    assert len(dingtalk.raw[-1]) <= 20000
    assert "阅读全文：https://co.example.com/p/1" in dingtalk.received[0]["text"]["content"]


# --- Feishu ---------------------------------------------------------------------------------

@pytest.mark.parametrize("msgtype", ["text", "post", "interactive"])
def test_feishu_publishes_each_message_type(feishu, msgtype):
    adapter = feishu_adapter(feishu, msgtype=msgtype, at_all=True)
    adapter.publish(outgoing(public_url="https://co.example.com/p/d11"), "k")
    (msg,) = feishu.received
    assert msg["msg_type"] == msgtype
    assert msg["sign"] == feishu_bot.sign("feishu-secret-456", int(msg["timestamp"]))
    if msgtype == "text":
        assert '<at user_id="all">所有人</at>' in msg["content"]["text"]
    elif msgtype == "post":
        post = msg["content"]["post"]["zh_cn"]
        assert post["title"] == "双11 会员专享预告"
        tags = [el["tag"] for line in post["content"] for el in line]
        assert "a" in tags and "at" in tags
        links = [el for line in post["content"] for el in line if el["tag"] == "a"]
        assert links[0] == {"tag": "a", "text": "活动页", "href": "https://shop.example.com/d11"}
    else:
        card = msg["card"]
        assert card["header"]["title"]["content"] == "双11 会员专享预告"
        assert card["elements"][1]["actions"][0]["url"] == "https://co.example.com/p/d11"


def test_feishu_signature_checked_by_the_fake(feishu):
    with pytest.raises(PermanentError) as info:
        feishu_adapter(feishu, secret="wrong").publish(outgoing(), "k")
    assert "signature does not match" in str(info.value)
    assert "errcode 19021" in info.value.detail
    skewed = feishu_adapter(feishu)
    skewed.clock = lambda: time.time() + 4000
    with pytest.raises(PermanentError):
        skewed.publish(outgoing(), "k")
    assert feishu.received == []


@pytest.mark.parametrize("code,kind", [(11232, TransientError), (19021, PermanentError),
                                       (19022, PermanentError), (19024, PermanentError),
                                       (9499, PermanentError)])
def test_feishu_error_codes(feishu, code, kind):
    feishu.fail_next(code)
    with pytest.raises(kind) as info:
        feishu_adapter(feishu).publish(outgoing(), "k")
    assert f"errcode {code}" in info.value.detail


def test_feishu_body_limit_is_20kb_enforced_before_sending(feishu):
    body = "飞" * 7000  # 21000 bytes of text alone
    adapter = feishu_adapter(feishu, msgtype="text")
    assert [f.code for f in adapter.validate(outgoing(body=body))] == ["body_too_long"]
    with pytest.raises(PermanentError):
        adapter.publish(outgoing(body=body), "k")
    assert feishu.raw == []
    post = outgoing(body="\n\n".join(["飞" * 400] * 20), public_url="https://co.example.com/p/2")
    adapter.publish(post, "k")
    assert len(feishu.raw[-1]) <= 20 * 1024


def test_feishu_old_style_reply_is_understood(feishu):
    adapter = feishu_adapter(feishu)
    assert adapter.reply_code({"StatusCode": 0, "StatusMessage": "success"}) == (0, "success")
    assert adapter.reply_code({"code": 19021, "msg": "sign"}) == (19021, "sign")


# --- Network trouble, shared by all robots --------------------------------------------------

@pytest.mark.parametrize("mode", ["timeout", "drop", "html"])
@pytest.mark.parametrize("which", ["wecom", "dingtalk", "feishu"])
def test_network_trouble_is_transient(request, which, mode):
    fake = request.getfixturevalue(which)
    fake.mode = mode
    fake.delay = 2
    make = {"wecom": wecom_adapter, "dingtalk": ding_adapter, "feishu": feishu_adapter}[which]
    adapter = make(fake, timeout_s=1)
    with pytest.raises(TransientError) as info:
        adapter.publish(outgoing(), "k")
    assert fake.received == []
    expected = {"timeout": "did not answer in time", "drop": "Could not connect",
                "html": "unexpected reply"}[mode]
    assert expected in str(info.value)


def test_test_connection_sends_a_short_message(wecom, dingtalk, feishu):
    assert "accepted a short test message" in wecom_adapter(wecom).test_connection()
    assert "accepted" in ding_adapter(dingtalk).test_connection()
    assert "accepted" in feishu_adapter(feishu).test_connection()
    assert "连接测试" in wecom.received[0]["text"]["content"]
    with pytest.raises(PermanentError):
        feishu_adapter(feishu, secret="nope").test_connection()


def test_preview_is_marked_and_sent(wecom):
    adapter = wecom_adapter(wecom)
    adapter.send_preview(outgoing())
    assert wecom.received[0]["markdown"]["content"].startswith("## 【预览 Preview】双11")


def test_robot_keys_never_reach_logs_or_error_texts(wecom, dingtalk, feishu, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    for adapter in (wecom_adapter(wecom), ding_adapter(dingtalk), feishu_adapter(feishu)):
        adapter.publish(outgoing(), "k")
    for fake, adapter in ((wecom, wecom_adapter(wecom)), (dingtalk, ding_adapter(dingtalk)),
                          (feishu, feishu_adapter(feishu))):
        fake.mode = "drop"
        with pytest.raises(TransientError) as info:
            adapter.publish(outgoing(), "k")
        texts += [str(info.value), info.value.detail or ""]
    logged = caplog.text + "\n".join(texts)
    assert "/cgi-bin/webhook/send" in caplog.text  # urllib3 did log the requests …
    for secret in ("wecom-key-123", "ding-token-123", "SECtest-secret-456", "feishu-hook-123",
                   "feishu-secret-456"):
        assert secret not in logged  # … with the credentials blanked out


def test_error_messages_have_translations():
    """Every marketer-facing message of the robots exists in the zh catalog."""
    from babel.messages.pofile import read_po

    with open("contentops/translations/zh/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    for module in (wecom_robot, dingtalk_robot, feishu_bot):
        for rule in module.ERRORS.values():
            message = catalog.get(rule.message)
            assert message is not None and message.string, rule.message


def test_rendered_payload_is_what_is_sent(wecom):
    adapter = wecom_adapter(wecom, msgtype="markdown")
    post = outgoing()
    adapter.publish(post, "k")
    assert json.loads(wecom.raw[0]) == adapter.render(post)


@pytest.mark.parametrize("status", [302, 307])
def test_a_robot_address_that_redirects_is_refused_and_its_key_kept_out(status):
    """Following a redirected robot POST as a GET to a page answering {"errcode": 0} would
    count as sent; and the Location, which repeats the key, must not reach the reason."""
    from tests.engine_support import Redirector

    with Redirector(status) as target:
        adapter = adapter_class("wecom_robot")({
            "webhook_url": f"{target.base}/cgi-bin/webhook/send?key=SECRET-ROBOT-KEY"})
        with pytest.raises(PermanentError) as caught:
            adapter.publish(outgoing(), "k1")
        assert target.landed == []
        assert target.redirected == [("POST", "/cgi-bin/webhook/send?key=SECRET-ROBOT-KEY")]
    error = caught.value
    assert error.params["status"] == status
    assert error.params["location"] == f"{target.base}/landing/cgi-bin/webhook/send?key=***"
    assert "SECRET-ROBOT-KEY" not in f"{error} {error.detail}"


def test_a_robot_reply_too_large_to_read_leaves_the_message_in_doubt(wecom):
    """The message went out and only the answer could not be read: in doubt (a person
    checks the group), never `failed`, which would invite a second copy."""
    wecom.mode = "huge"
    with pytest.raises(InDoubt):
        wecom_adapter(wecom).publish(outgoing(), "k")
    assert len(wecom.received) == 1
