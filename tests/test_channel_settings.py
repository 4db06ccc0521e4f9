"""Channel settings pages: typed fields per kind, write-only encrypted secrets, Test
connection, Send preview, recipient lists — and secrets never in pages, API or logs."""

from __future__ import annotations

import io
import logging

import pytest

from contentops.models import Audience, Channel
from contentops.models.recipients import Recipient
from contentops.services import channels as channel_service
from tests.conftest import free_port
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.smtp import FakeSMTP
from tests.fakes.wecom import FakeWeCom

DING_SECRET = "SECtest-secret-456"


@pytest.fixture
def admin_client(client, make_user, login):
    login(make_user("admin"))
    return client


@pytest.fixture
def dingtalk():
    fake = FakeDingTalk().start()
    yield fake
    fake.stop()


def test_new_channel_form_is_typed_per_kind(admin_client):
    page = admin_client.get("/settings/channels/new/dingtalk_robot").get_data(as_text=True)
    assert 'type="password"' in page and 'name="config.secret"' in page
    assert 'name="config.webhook_url"' in page
    assert '<select class="form-select" id="c-msgtype" name="config.msgtype">' in page
    assert 'value="actionCard"' in page
    email = admin_client.get("/settings/channels/new/email").get_data(as_text=True)
    assert 'type="number"' in email and 'name="config.port"' in email
    assert 'type="email"' in email and 'name="config.tracking"' in email
    assert admin_client.get("/settings/channels/new/nosuchkind").status_code == 404


def test_create_validates_fields_and_shows_errors_next_to_them(admin_client, db):
    response = admin_client.post("/settings/channels/new/dingtalk_robot", data={
        "name": "", "config.webhook_url": "not a url", "config.msgtype": "video",
        "config.timeout_s": "abc"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("name", "config.webhook_url", "config.msgtype", "config.secret",
                  "config.timeout_s"):
        assert f'data-field-error="{field}"' in page, field
    assert db.session.query(Channel).count() == 0


def test_secrets_are_encrypted_and_write_only(admin_client, db, app, dingtalk, caplog):
    caplog.set_level(logging.DEBUG)
    url = dingtalk.webhook_url()
    response = admin_client.post("/settings/channels/new/dingtalk_robot", data={
        "name": "钉钉运营群", "color": "#123456", "config.webhook_url": url,
        "config.secret": DING_SECRET, "config.msgtype": "markdown", "active": "on"})
    assert response.status_code == 302
    channel = db.session.scalar(db.select(Channel))
    assert channel.config == {"msgtype": "markdown", "at_all": False, "timeout_s": 10}
    assert DING_SECRET not in (channel.secrets or "") and "ding-token-123" not in channel.secrets
    # The edit page never shows the stored secret, only that one is set.
    page = admin_client.get(f"/settings/channels/{channel.id}/edit").get_data(as_text=True)
    assert DING_SECRET not in page and "ding-token-123" not in page
    assert "Saved — leave empty to keep it" in page
    # Saving with the secret fields empty keeps them.
    response = admin_client.post(f"/settings/channels/{channel.id}/edit", data={
        "name": "钉钉运营群", "color": "#123456", "config.webhook_url": "",
        "config.secret": "", "config.msgtype": "text", "active": "on"})
    assert response.status_code == 302
    db.session.expire_all()
    channel = db.session.get(Channel, channel.id)
    assert channel.config["msgtype"] == "text"
    full = channel_service.full_config(channel, app.config["SECRET_KEY"])
    assert full["secret"] == DING_SECRET and full["webhook_url"] == url
    # Test connection reaches the fake with a valid signature.
    response = admin_client.post(f"/settings/channels/{channel.id}/test",
                                 follow_redirects=True)
    assert "accepted a short test message" in response.get_data(as_text=True)
    assert len(dingtalk.received) == 1
    # Send preview: a sample text, marked.
    response = admin_client.post(f"/settings/channels/{channel.id}/preview", data={},
                                 follow_redirects=True)
    assert response.status_code == 200
    assert "【预览 Preview】" in dingtalk.received[-1]["text"]["content"]
    pages = [admin_client.get("/settings/channels/").get_data(as_text=True),
             admin_client.get(f"/settings/channels/{channel.id}/preview").get_data(as_text=True),
             page, response.get_data(as_text=True)]
    api = [str(channel_service.channel_dict(channel))]
    for text in [*pages, *api, caplog.text]:
        for secret in (DING_SECRET, "ding-token-123"):
            assert secret not in text


def test_test_connection_failure_is_readable(admin_client, db, dingtalk):
    channel = channel_service.create_channel(db.session, {
        "name": "坏钉钉", "kind": "dingtalk_robot",
        "config": {"webhook_url": dingtalk.webhook_url(), "secret": "SECwrong"}},
        secret_key="test-secret-key")
    db.session.commit()
    page = admin_client.post(f"/settings/channels/{channel.id}/test",
                             follow_redirects=True).get_data(as_text=True)
    assert "Test connection failed" in page and "signature does not match" in page


def test_test_connection_page_in_chinese(admin_client, db):
    wecom = FakeWeCom().start()
    try:
        channel = channel_service.create_channel(db.session, {
            "name": "企微群", "kind": "wecom_robot",
            "config": {"webhook_url": wecom.webhook_url("bad-key")}},
            secret_key="test-secret-key")
        db.session.commit()
        admin_client.post("/language", data={"lang": "zh", "next": "/settings/channels/"})
        page = admin_client.post(f"/settings/channels/{channel.id}/test",
                                 follow_redirects=True).get_data(as_text=True)
        assert "企业微信不接受这个机器人的 key" in page
    finally:
        wecom.stop()


def test_email_preview_and_recipient_lists(admin_client, db, tmp_path):
    smtp = FakeSMTP(free_port(), tmp_path).start()
    try:
        response = admin_client.post("/settings/channels/new/email", data={
            "name": "会员周刊", "config.host": "127.0.0.1", "config.port": str(smtp.port),
            "config.security": "none", "config.from_address": "news@example.com",
            "config.password": "mail-pass-789", "config.recipient_source": "both",
            "config.tracking": "on", "active": "on"})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        channel = db.session.scalar(db.select(Channel))
        assert channel.config["tracking"] is True and "password" not in channel.config
        base = f"/settings/channels/{channel.id}/recipients"
        assert admin_client.post(base, data={"email": "bad"}).status_code == 422
        assert admin_client.post(base, data={"email": "a@example.com", "name": "甲"}
                                 ).status_code == 302
        dup = admin_client.post(base, data={"email": "A@example.com"})
        assert dup.status_code == 422 and "already on the list" in dup.get_data(as_text=True)
        upload = admin_client.post(f"{base}/import", data={
            "file": (io.BytesIO("email,name\nb@example.com,乙\nnope,丙\n".encode()),
                     "list.csv")}, content_type="multipart/form-data")
        text = upload.get_data(as_text=True)
        assert upload.status_code == 200 and 'id="import-report"' in text
        assert "Line 3" in text and "nope" in text
        page = admin_client.get(base).get_data(as_text=True)
        assert 'data-recipient="a@example.com"' in page and 'data-recipient="b@example.com"' in page
        rid = db.session.scalar(db.select(Recipient.id).where(Recipient.email == "b@example.com"))
        admin_client.post(f"{base}/{rid}/delete")
        assert 'data-recipient="b@example.com"' not in admin_client.get(base).get_data(
            as_text=True)
        # Preview only to the address typed in.
        bad = admin_client.post(f"/settings/channels/{channel.id}/preview", data={"to": "x"})
        assert bad.status_code == 422
        ok = admin_client.post(f"/settings/channels/{channel.id}/preview",
                               data={"to": "me@example.com"})
        assert ok.status_code == 302
        assert [m[1] for m in smtp.messages] == [["me@example.com"]]
        assert "mail-pass-789" not in admin_client.get(
            f"/settings/channels/{channel.id}/edit").get_data(as_text=True)
    finally:
        smtp.stop()


def test_audience_lists(admin_client, db):
    audience = Audience(name="宝妈社群")
    db.session.add(audience)
    db.session.commit()
    overview = admin_client.get("/settings/channels/audiences/").get_data(as_text=True)
    assert "宝妈社群" in overview
    base = f"/settings/channels/audiences/{audience.id}/recipients"
    assert admin_client.post(base, data={"email": "mom@example.com"}).status_code == 302
    assert "mom@example.com" in admin_client.get(base).get_data(as_text=True)
    # Robots have no recipient lists.
    robot = channel_service.create_channel(db.session, {
        "name": "群", "kind": "wecom_robot",
        "config": {"webhook_url": "http://127.0.0.1:1/cgi-bin/webhook/send?key=k"}},
        secret_key="test-secret-key")
    db.session.commit()
    assert admin_client.get(f"/settings/channels/{robot.id}/recipients").status_code == 404


def test_editors_cannot_reach_channel_settings(client, make_user, login):
    login(make_user("editor"))
    assert client.get("/settings/channels/").status_code == 403
    assert client.get("/settings/channels/new/email").status_code == 403


def test_channels_api_never_returns_secrets(client, db, make_user, caplog):
    from contentops.services import users as user_service

    caplog.set_level(logging.DEBUG)
    tokens = {}
    for role in ("admin", "viewer"):
        _t, plain = user_service.create_token(db.session, make_user(role), "t")
        tokens[role] = {"Authorization": f"Bearer {plain}"}
    db.session.commit()
    secret_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=top-secret-key-42"
    created = client.post("/api/v1/channels", headers=tokens["admin"], json={
        "name": "企微客户群", "kind": "wecom_robot",
        "config": {"webhook_url": secret_url, "msgtype": "news"}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["kind"] == "wecom_robot" and body["config"]["msgtype"] == "news"
    listed = client.get("/api/v1/channels", headers=tokens["viewer"])
    shown = client.get(f"/api/v1/channels/{body['id']}", headers=tokens["viewer"])
    patched = client.patch(f"/api/v1/channels/{body['id']}", headers=tokens["admin"],
                           json={"config": {"msgtype": "text"}})
    assert patched.status_code == 200 and patched.get_json()["config"]["msgtype"] == "text"
    # The secret survived the PATCH that did not repeat it.
    channel = db.session.get(Channel, body["id"])
    assert channel_service.full_config(channel, "test-secret-key")["webhook_url"] == secret_url
    for response in (created, listed, shown, patched):
        assert "top-secret-key-42" not in response.get_data(as_text=True)
    assert "top-secret-key-42" not in caplog.text
    bad = client.post("/api/v1/channels", headers=tokens["admin"], json={
        "name": "x", "kind": "dingtalk_robot", "config": {"webhook_url": "ftp://nope"}})
    assert bad.status_code == 422
    fields = bad.get_json()["error"]["fields"]
    assert set(fields) >= {"config.webhook_url", "config.secret"}
    assert client.post("/api/v1/channels", headers=tokens["viewer"],
                       json={"name": "v", "kind": "web", "config": {}}).status_code == 403
    assert client.get("/api/v1/channels/999999", headers=tokens["viewer"]).status_code == 404


def test_secrets_from_another_secret_key_are_asked_for_again(admin_client, db):
    from contentops.channels.base import OutgoingPost, PermanentError

    channel = channel_service.create_channel(db.session, {
        "name": "旧钥匙", "kind": "feishu_bot",
        "config": {"webhook_url": "http://127.0.0.1:1/open-apis/bot/v2/hook/x",
                   "secret": "s"}}, secret_key="an-old-secret-key")
    db.session.commit()
    page = admin_client.get(f"/settings/channels/{channel.id}/edit")
    assert page.status_code == 200
    assert "Saved — leave empty to keep it" not in page.get_data(as_text=True)
    response = admin_client.post(f"/settings/channels/{channel.id}/edit",
                                 data={"name": "旧钥匙", "config.msgtype": "post"})
    assert response.status_code == 422
    assert 'data-field-error="config.secret"' in response.get_data(as_text=True)
    adapter = channel_service.build_adapter(channel, "test-secret-key")
    with pytest.raises(PermanentError) as info:
        adapter.publish(OutgoingPost(post_id=1, piece_id=1, version=1, title="t",
                                     body_markdown="b"), "k")
    assert "settings are incomplete" in str(info.value)
