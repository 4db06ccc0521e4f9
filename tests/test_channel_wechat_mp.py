"""`wechat_mp` against a loopback fake of the 公众号 API: tokens (shared, refreshed once on
expiry), readable credential errors, article rendering and limits, freepublish tracked to its
outcome, 群发 with a stable clientmsgid (a re-send is refused by the service, never sent twice),
群发保护, quota, risky content and previews."""

from __future__ import annotations

import re
import time

import pytest

from contentops.channels.base import (
    InDoubt,
    OutgoingPost,
    PermanentError,
    QuotaExhausted,
    TransientError,
)
from contentops.channels.registry import adapter_class
from contentops.channels.tokens import MemoryTokenStore
from contentops.channels.wechat_mp import article_html


@pytest.fixture
def fake(wechat_mp_fake):
    return wechat_mp_fake


def adapter(fake, tokens=None, **config):
    cls = adapter_class("wechat_mp")
    return cls({"app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
                "mode": "publish", **config}, tokens=tokens or MemoryTokenStore())


def post(fake, title="双11 会员专享", body=None, **kw) -> OutgoingPost:
    body = body if body is not None else (
        f"![海报]({fake.base}/img/poster.png)\n\n**限时** 五折，[详情](https://example.com/)")
    return OutgoingPost(post_id=7, piece_id=3, version=1, title=title, body_markdown=body,
                        **kw)


def test_article_html_has_inline_styles_and_no_script():
    html = article_html("# 标题\n\n段落 <script>alert(1)</script> **粗**\n\n"
                        '<p class="x" style="color:red" onclick="x()">p</p>')
    # Raw HTML in the Markdown is shown as text, never as tags or attributes.
    assert "<script" not in html and not re.search(r"<[^>&]*(onclick|class=|color:red)", html)
    assert '<h1 style="' in html and '<p style="' in html and "<strong>粗</strong>" in html


def test_publish_mode_draft_submit_and_track_to_published(fake):
    a = adapter(fake, need_open_comment=True)
    result = a.publish(post(fake), "contentops-post-7-1")
    assert result.status == "publishing" and result.check_after_s
    draft = next(iter(fake.drafts.values()))[0]
    assert draft["need_open_comment"] == 1
    assert draft["thumb_media_id"] in fake.thumbs
    # The image was uploaded and its address replaced by WeChat's own.
    assert fake.base + "/img/poster.png" not in draft["content"]
    assert any(url in draft["content"] for url in fake.images)
    publish_id = result.progress["publish_id"]
    again = a.track(post(fake), result.external_id, result.progress)
    assert again.status == "publishing"
    fake.finish_publish(publish_id, 0)
    done = a.track(post(fake), result.external_id, result.progress)
    assert done.status == "published"
    assert done.url == f"https://mp.weixin.qq.com/s/art-{publish_id}"


@pytest.mark.parametrize("status,words", [(2, "原创失败"), (4, "平台审核不通过"),
                                          (6, "系统封禁")])
def test_publish_failures_are_permanent_with_the_meaning(fake, status, words):
    a = adapter(fake)
    result = a.publish(post(fake), "k")
    fake.finish_publish(result.progress["publish_id"], status)
    with pytest.raises(PermanentError) as err:
        a.track(post(fake), result.external_id, result.progress)
    assert words in str(err.value)


def test_unverified_account_gets_a_readable_refusal(fake):
    fake.verified = False
    with pytest.raises(PermanentError) as err:
        adapter(fake).publish(post(fake), "k")
    assert "48001" in str(err.value) and "verified" in str(err.value)


@pytest.mark.parametrize("setup,code,words", [
    (lambda f: setattr(f, "app_id", "other"), "40013", "基本配置"),
    (lambda f: setattr(f, "secret", "other"), "40125", "AppSecret"),
    (lambda f: setattr(f, "allowed_ip", False), "40164", "IP allow list"),
])
def test_bad_credentials_are_permanent_and_say_what_to_fix(fake, setup, code, words):
    a = adapter(fake)
    setup(fake)
    with pytest.raises(PermanentError) as err:
        a.test_connection()
    assert code in str(err.value) and words in str(err.value)


def test_token_is_shared_and_replaced_once_when_expired(fake):
    tokens = MemoryTokenStore()
    a, b = adapter(fake, tokens), adapter(fake, tokens)
    assert a.test_connection().startswith("Connected")
    b.publish(post(fake), "k1")
    assert fake.token_requests == 1
    fake.expire_tokens()  # mid-run: the next call gets 42001, refreshes once and goes on
    a.publish(post(fake), "k2")
    assert fake.token_requests == 2
    assert len(fake.publishes) == 2


def test_limits_checked_at_review_and_send_time(fake):
    a = adapter(fake)
    long_title = post(fake, title="标" * 33)
    codes = {f.code for f in a.validate(long_title)}
    assert "title_too_long" in codes
    with pytest.raises(PermanentError):
        a.publish(long_title, "k")
    assert not fake.drafts  # refused before anything reached WeChat
    no_cover = post(fake, body="只有文字")
    assert "cover_missing" in {f.code for f in a.validate(no_cover)}
    huge = post(fake, body=f"![x]({fake.base}/img/a.png)\n\n" + "字" * 20000)
    assert "body_too_long" in {f.code for f in a.validate(huge)}


def test_fake_rejects_what_the_service_rejects(fake):
    # The fake itself refuses a long title (the adapter's check is the first line).
    a = adapter(fake)
    api = a.api()
    with pytest.raises(PermanentError) as err:
        api.call("/cgi-bin/draft/add", body={"articles": [
            {"title": "标" * 33, "content": "<p>x</p>", "thumb_media_id": "none"}]})
    assert "45166" in str(err.value)


def test_mass_send_clientmsgid_prevents_a_second_send(fake):
    a = adapter(fake, mode="mass_send", tag_id=2)
    first = a.publish(post(fake), "contentops-post-7-1")
    assert first.status == "publishing" and fake.sends == 1
    sent = next(iter(fake.mass.values()))
    assert sent["filter"] == {"is_to_all": False, "tag_id": 2}
    # A re-send (after a crash) with the same idempotency key: 45065 names the first msg_id.
    again = a.publish(post(fake), "contentops-post-7-1")
    assert fake.sends == 1
    assert again.external_id == first.external_id
    msg_id = int(first.external_id.removeprefix("msg:"))
    fake.finish_mass(msg_id)
    assert a.track(post(fake), first.external_id, first.progress).status == "published"


def test_mass_send_failure_and_quota_and_risky_content(fake):
    a = adapter(fake, mode="mass_send")
    result = a.publish(post(fake), "k1")
    fake.finish_mass(int(result.external_id[4:]), "SEND_FAIL")
    with pytest.raises(PermanentError):
        a.track(post(fake), result.external_id, result.progress)
    fake.quota = 0
    with pytest.raises(QuotaExhausted):
        a.publish(post(fake), "k2")
    fake.quota = 5
    with pytest.raises(PermanentError) as err:
        a.publish(post(fake, body=f"![x]({fake.base}/img/a.png)\n\n违禁词"), "k3")
    assert "87014" in str(err.value)
    fake.fail_next(45009)
    with pytest.raises(TransientError):
        a.publish(post(fake), "k4")


def test_mass_send_protection_waits_for_an_admin(fake):
    fake.protection = True
    a = adapter(fake, mode="mass_send")
    result = a.publish(post(fake), "k1")
    assert result.status == "awaiting_staff" and result.deadline_s == 1800
    assert result.check_after_s
    waiting = a.track(post(fake), result.external_id, result.progress)
    assert waiting.status == "awaiting_staff"
    with pytest.raises(PermanentError):
        a.track(post(fake), result.external_id, result.progress, final=True)
    fake.admin_confirms(int(result.external_id[4:]))
    fake.finish_mass(int(result.external_id[4:]))
    assert a.track(post(fake), result.external_id, result.progress).status == "published"


def test_preview_to_one_wechat_id(fake):
    a = adapter(fake, mode="mass_send")
    a.send_preview(post(fake, preview=True), "marketer_wx")
    assert fake.previews[0]["towxname"] == "marketer_wx"
    assert fake.sends == 0
    with pytest.raises(PermanentError):
        a.send_preview(post(fake, preview=True), " ")


def test_settings_form_and_preview_page_for_a_wechat_id(client, db, make_user, login, fake):
    from contentops.models import Channel

    login(make_user("admin"))
    response = client.post("/settings/channels/new/wechat_mp", data={
        "name": "品牌公众号", "config.app_id": fake.app_id, "config.app_secret": fake.secret,
        "config.account_type": "subscription", "config.mode": "mass_send",
        "config.api_base": fake.base, "config.default_thumb": f"{fake.base}/img/c.png",
        "active": "on"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    channel = db.session.scalar(db.select(Channel))
    assert "app_secret" not in channel.config  # the secret is stored apart, write-only
    page = f"/settings/channels/{channel.id}/preview"
    assert 'name="to"' in client.get(page).get_data(as_text=True)
    empty = client.post(page, data={"piece_id": "", "to": ""})
    assert empty.status_code == 422 and 'data-field-error="to"' in empty.get_data(as_text=True)
    sent = client.post(page, data={"piece_id": "", "to": "marketer_wx"})
    assert sent.status_code == 302, sent.get_data(as_text=True)[:2000]
    assert fake.previews[-1]["towxname"] == "marketer_wx" and fake.sends == 0


def test_refused_token_is_replaced_with_force_refresh(fake):
    """40001 on a token stable_token still hands out: a plain refetch would get the same
    token back, so the refresh asks with force_refresh and the call goes through."""
    a = adapter(fake)
    a.test_connection()
    revoked = fake.revoke_token()
    # What a refresh without force_refresh would get: the revoked token again.
    assert a.api()._fetch_token()[0] == revoked
    a.publish(post(fake), "k1")
    assert fake.forced_refreshes == 1
    assert fake.current_token != revoked
    assert len(fake.publishes) == 1


def test_preview_from_the_piece_page_sends_the_channel_variant(app, client, db, make, login,
                                                               fake):
    """An editor sends a draft piece's 公众号 article to one WeChat id from the piece page:
    the channel's variant (title/body override) goes out, marked as a preview; WeChat's
    refusals (not a follower, a malformed id) show beside the field in the reader's
    language; the post and the review state are untouched."""
    channel = make.channel("wechat_mp", config={
        "app_id": fake.app_id, "app_secret": fake.secret, "api_base": fake.base,
        "mode": "mass_send", "default_thumb": f"{fake.base}/img/c.png"})
    other = make.channel("webhook")
    piece = make.piece(title="双11 会员日", body=f"![图]({fake.base}/img/p.png)\n\n正文",
                       channels=[channel, other])
    make.edit(piece, variants={str(channel.id): {"title": "公众号版 标题",
                                                 "body": "公众号版 **正文**"}})
    post = next(p for p in piece.posts if p.channel_id == channel.id)
    page = f"/pieces/{piece.id}"
    action = f"{page}/posts/{post.id}/wechat-preview"
    viewer = login(make.user("viewer"), app.test_client())
    assert "data-wechat-preview" not in viewer.get(page).get_data(as_text=True)
    assert viewer.post(action, data={"to": "marketer_wx"}).status_code == 403
    login(make.user("editor"))
    html = client.get(page).get_data(as_text=True)
    assert "data-wechat-preview" in html and f'data-preview-post="{post.id}"' in html
    sent = client.post(action, data={"to": "marketer_wx"})
    assert sent.status_code == 200 and "data-preview-sent" in sent.get_data(as_text=True)
    assert fake.previews[-1]["towxname"] == "marketer_wx" and fake.sends == 0
    draft = fake.drafts[fake.previews[-1]["mpnews"]["media_id"]][0]
    assert draft["title"] == "【预览】公众号版 标题"
    assert "<strong>正文</strong>" in draft["content"] and "<img" not in draft["content"]
    # Not a follower: 43004, readable, beside the field, in Chinese for a Chinese reader.
    refused = client.post(action, data={"to": "stranger_wx"},
                          headers={"Accept-Language": "zh-CN"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'data-field-error="to"' in body and "43004" in body
    malformed = client.post(action, data={"to": "1bad"})
    assert malformed.status_code == 422 and "40132" in malformed.get_data(as_text=True)
    empty = client.post(action, data={"to": "  "})
    assert empty.status_code == 422 and 'data-field-error="to"' in empty.get_data(as_text=True)
    assert len(fake.previews) == 1
    db.session.expire_all()
    assert db.session.get(type(post), post.id).status == post.status
    assert piece.status == "draft"
    # A post of a channel without WeChat previews has no form.
    other_post = next(p for p in piece.posts if p.channel_id == other.id)
    assert client.post(f"{page}/posts/{other_post.id}/wechat-preview",
                       data={"to": "marketer_wx"}).status_code == 404


def test_a_freepublish_submit_without_an_answer_is_in_doubt_not_retried(fake, monkeypatch):
    """freepublish/submit has no idempotency key: a request WeChat took but did not answer in
    time may have published the article, so it is in doubt (reconciled, or a person decides),
    never an ordinary retry that could publish it twice."""
    taken = fake._submit

    def slow(request):
        reply = taken(request)  # WeChat takes the article …
        time.sleep(2.5)  # … and its answer does not come in time
        return reply

    monkeypatch.setattr(fake, "_submit", slow)
    with pytest.raises(InDoubt):
        adapter(fake, timeout_s=1).publish(post(fake), "k")
    assert len(fake.publishes) == 1
