"""E-mail channel: SMTP with aiosmtpd on 127.0.0.1 — content, headers, unsubscribe, tracking,
recipient lists and CSV import."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from contentops.channels.base import PermanentError, TransientError
from contentops.models import Audience, ContentPiece, Post
from contentops.models.recipients import Recipient
from contentops.services import channels as channel_service
from contentops.services import recipients as recipient_service
from contentops.services.recipients import ListRef
from tests.conftest import free_port
from tests.fakes.smtp import FakeSMTP

SECRET = "test-secret-key"
BASE = "http://testserver"
BODY = "亲爱的会员：\n\n双11 **会员专享** 满300减50，[立即查看](https://shop.example.com/d11?a=1&b=2)。"


@pytest.fixture
def smtp(tmp_path):
    server = FakeSMTP(free_port(), tmp_path).start()
    yield server
    server.stop()


def make_channel(db, port: int, **config):
    data = {"name": config.pop("name", "会员邮件"), "kind": "email",
            "config": {"host": "127.0.0.1", "port": port, "security": "none",
                       "from_address": "news@shop.example.com", "from_name": "好店",
                       **config}}
    channel = channel_service.create_channel(db.session, data, secret_key=SECRET)
    db.session.commit()
    return channel


def make_post(db, make_user, channel, *, audience=None, body=BODY, title="双11 会员专享"):
    # One author per test app (password hashing is deliberately slow).
    from contentops.models import User

    author = db.session.scalar(User.__table__.select().with_only_columns(User.id).limit(1))
    author = db.session.get(User, author) if author else make_user("editor")
    piece = ContentPiece(title=title, body=body, summary="", author_id=author.id,
                         audience_id=audience.id if audience else None, status="approved",
                         version=1, approved_version=1)
    db.session.add(piece)
    db.session.flush()
    post = Post(piece_id=piece.id, channel_id=channel.id, status="scheduled",
                scheduled_at=datetime(2026, 11, 11, 12, tzinfo=UTC))
    db.session.add(post)
    db.session.commit()
    return post


def send(db, post, key="post-1"):
    adapter = channel_service.build_adapter(post.channel, SECRET)
    outgoing = channel_service.outgoing_post(db.session, post, base_url=BASE)
    db.session.commit()
    return adapter.publish(outgoing, key)


def parts(msg):
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def test_one_message_per_recipient_with_text_and_html_parts(db, make_user, smtp):
    audience = Audience(name="高价值复购")
    db.session.add(audience)
    db.session.commit()
    channel = make_channel(db, smtp.port, recipients=["boss@example.com"])
    recipient_service.add_recipient(db.session, ListRef(channel_id=channel.id),
                                    "Li.Lei@Example.com", "李雷")
    recipient_service.add_recipient(db.session, ListRef(audience_id=audience.id),
                                    "han.meimei@example.com", "韩梅梅")
    # On both lists: still one message.
    recipient_service.add_recipient(db.session, ListRef(audience_id=audience.id),
                                    "li.lei@example.com")
    post = make_post(db, make_user, channel, audience=audience)
    result = send(db, post, "post-1-key")
    assert result.external_id.endswith(":3/3")
    assert sorted(r[0] for _, r, _ in smtp.messages) == [
        "boss@example.com", "han.meimei@example.com", "li.lei@example.com"]
    _, rcpts, msg = next(m for m in smtp.messages if m[1] == ["li.lei@example.com"])
    assert msg["Subject"] == "双11 会员专享"
    assert msg["From"].addresses[0].addr_spec == "news@shop.example.com"
    assert msg["From"].addresses[0].display_name == "好店"
    assert msg["To"].addresses[0].display_name == "李雷"
    assert msg.get_content_type() == "multipart/alternative"
    assert re.fullmatch(r"<post-1-key\.[0-9a-f]{12}@shop\.example\.com>", msg["Message-ID"])
    token = db.session.scalar(
        Recipient.__table__.select().with_only_columns(Recipient.token)
        .where(Recipient.email == "li.lei@example.com", Recipient.channel_id == channel.id))
    assert msg["List-Unsubscribe"] == f"<{BASE}/u/{token}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(msg)
    assert "会员专享 满300减50" in text and "https://shop.example.com/d11?a=1&b=2" in text
    assert f"Unsubscribe: {BASE}/u/{token}" in text
    assert "<strong>会员专享</strong>" in html
    assert f'src="{BASE}/t/o/{post.id}/{token}.gif"' in html
    assert f"{BASE}/t/c/{post.id}/{token}?u=" in html
    assert "href=\"https://shop.example.com" not in html  # links go through the redirect


def test_unsubscribe_is_honoured_at_the_next_send(app, db, make_user, smtp, client):
    channel = make_channel(db, smtp.port)
    ref = ListRef(channel_id=channel.id)
    a = recipient_service.add_recipient(db.session, ref, "a@example.com")
    recipient_service.add_recipient(db.session, ref, "b@example.com")
    db.session.commit()
    post = make_post(db, make_user, channel)
    send(db, post)
    assert len(smtp.messages) == 2
    unsub = urlsplit(smtp.messages[0][2]["List-Unsubscribe"].strip("<>")).path
    # Opening the page (or a mail scanner following the link) does not unsubscribe …
    page = client.get(f"/u/{a.token}")
    assert page.status_code == 200 and "a@example.com" in page.get_data(as_text=True)
    assert db.session.get(Recipient, a.id).unsubscribed_at is None
    # … the button does (no CSRF token: it comes from an e-mail).
    done = client.post(f"/u/{a.token}", data={"action": "unsubscribe"})
    assert done.status_code == 200 and 'data-status="unsubscribed"' in done.get_data(as_text=True)
    assert db.session.get(Recipient, a.id).unsubscribed_at is not None
    smtp.messages.clear()
    send(db, post, "again")
    assert [m[1] for m in smtp.messages] == [["b@example.com"]]
    # RFC 8058 one-click from the mail provider.
    b_token = urlsplit(smtp.messages[0][2]["List-Unsubscribe"].strip("<>")).path.split("/")[-1]
    one_click = client.post(f"/u/{b_token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 204
    smtp.messages.clear()
    with pytest.raises(PermanentError) as info:
        send(db, post, "third")
    assert "no recipients" in str(info.value)
    assert smtp.messages == []
    # A mistaken click can be undone from the same page.
    client.post(f"/u/{a.token}", data={"action": "resubscribe"})
    send(db, post, "fourth")
    assert [m[1] for m in smtp.messages] == [["a@example.com"]]
    assert unsub.startswith("/u/")
    assert client.get("/u/not-a-real-token-xyz").status_code == 404


def test_unsubscribed_people_stay_unsubscribed_on_import_and_other_lists(db, make_user, smtp):
    channel = make_channel(db, smtp.port)
    other = make_channel(db, smtp.port, name="另一个列表")
    ref = ListRef(channel_id=channel.id)
    r = recipient_service.add_recipient(db.session, ref, "x@example.com")
    recipient_service.unsubscribe(db.session, r.token, now=datetime.now(UTC))
    report = recipient_service.import_csv(db.session, ref, "email,name\nX@example.com,小X\n")
    assert report.kept_unsubscribed == 1
    added = recipient_service.add_recipient(db.session, ListRef(channel_id=other.id),
                                            "x@example.com")
    assert added.unsubscribed_at is not None
    post = make_post(db, make_user, other)
    with pytest.raises(PermanentError):
        send(db, post)


def test_open_pixel_and_click_redirect_feed_the_posts_metrics(app, db, make_user, smtp, client):
    channel = make_channel(db, smtp.port)
    recipient_service.add_recipient(db.session, ListRef(channel_id=channel.id), "a@example.com")
    recipient_service.add_recipient(db.session, ListRef(channel_id=channel.id), "b@example.com")
    post = make_post(db, make_user, channel)
    send(db, post)
    html_a = parts(smtp.messages[0][2])[1]
    pixel = re.search(r'src="(http://testserver/t/o/[^"]+)"', html_a).group(1)
    link = re.search(r'href="(http://testserver/t/c/[^"]+)"', html_a).group(1)
    link = link.replace("&amp;", "&")
    response = client.get(urlsplit(pixel).path)
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.headers["Cache-Control"].startswith("no-store")
    client.get(urlsplit(pixel).path)  # the same person opening again counts once
    db.session.refresh(post)
    assert post.reads == 1
    parts_ = urlsplit(link)
    target = client.get(f"{parts_.path}?{parts_.query}")
    assert target.status_code == 302
    assert target.headers["Location"] == "https://shop.example.com/d11?a=1&b=2"
    client.get(f"{parts_.path}?{parts_.query}")
    db.session.refresh(post)
    assert (post.reads, post.clicks) == (1, 1)
    # The other person's click counts a read (images blocked) and a click.
    html_b = parts(smtp.messages[1][2])[1]
    link_b = urlsplit(re.search(r'href="(http://testserver/t/c/[^"]+)"', html_b).group(1)
                      .replace("&amp;", "&"))
    client.get(f"{link_b.path}?{link_b.query}")
    db.session.refresh(post)
    assert (post.reads, post.clicks) == (2, 2)
    # A tampered target is refused: never an open redirect.
    evil = parts_.query.replace("shop.example.com", "evil.example.com")
    assert client.get(f"{parts_.path}?{evil}").status_code == 404
    assert client.get(f"{parts_.path}?u=https://evil.example.com/").status_code == 404


def test_tracking_can_be_switched_off_per_channel(app, db, make_user, smtp, client):
    channel = make_channel(db, smtp.port, tracking=False)
    r = recipient_service.add_recipient(db.session, ListRef(channel_id=channel.id),
                                        "a@example.com")
    post = make_post(db, make_user, channel)
    send(db, post)
    html = parts(smtp.messages[0][2])[1]
    assert "/t/o/" not in html and "/t/c/" not in html
    assert 'href="https://shop.example.com/d11?a=1&amp;b=2"' in html
    assert "/u/" in html  # unsubscribing never depends on tracking
    client.get(f"/t/o/{post.id}/{r.token}.gif")
    db.session.refresh(post)
    assert post.reads == 0


def test_starttls_with_auth(tmp_path, db, make_user):
    server = FakeSMTP(free_port(), tmp_path, security="starttls",
                      users={"news": "s3cret-pass"}).start()
    try:
        channel = make_channel(db, server.port, security="starttls", username="news",
                               password="s3cret-pass", verify_tls=False,
                               recipients=["a@example.com"])
        assert "password" not in channel.config  # encrypted, not in the plain config
        adapter = channel_service.build_adapter(channel, SECRET)
        assert "accepted the settings" in adapter.test_connection()
        post = make_post(db, make_user, channel)
        send(db, post)
        assert len(server.messages) == 1
        # Certificate checks are on by default: a self-signed server is refused, readably.
        strict = channel_service.build_adapter(channel, SECRET)
        strict.config["verify_tls"] = True
        with pytest.raises(PermanentError) as info:
            strict.test_connection()
        assert "secure connection" in str(info.value)
        wrong = channel_service.build_adapter(channel, SECRET)
        wrong.config["password"] = "nope"
        with pytest.raises(PermanentError) as info:
            wrong.test_connection()
        assert "user name or password" in str(info.value)
    finally:
        server.stop()


def test_implicit_ssl(tmp_path, db, make_user):
    server = FakeSMTP(free_port(), tmp_path, security="ssl").start()
    try:
        channel = make_channel(db, server.port, security="ssl", verify_tls=False,
                               recipients=["a@example.com"])
        send(db, make_post(db, make_user, channel))
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_connection_trouble_is_transient(db, make_user):
    channel = make_channel(db, free_port(), recipients=["a@example.com"])  # nothing listens
    post = make_post(db, make_user, channel)
    with pytest.raises(TransientError) as info:
        send(db, post)
    assert "Could not connect to the mail server" in str(info.value)


def test_refused_addresses_do_not_stop_the_list(db, make_user, smtp):
    smtp.refuse = {"gone@example.com"}
    channel = make_channel(db, smtp.port, recipients=["a@example.com", "gone@example.com",
                                                      "b@example.com"])
    result = send(db, make_post(db, make_user, channel))
    assert result.external_id.endswith(":2/3")
    smtp.refuse = {"a@example.com", "gone@example.com", "b@example.com"}
    with pytest.raises(PermanentError) as info:
        send(db, make_post(db, make_user, channel))
    assert "refused all 3 recipients" in str(info.value)


def test_server_giving_up_mid_list_is_not_retried_blindly(db, make_user, smtp):
    smtp.accept_only = 1
    channel = make_channel(db, smtp.port, recipients=["a@example.com", "b@example.com"])
    with pytest.raises(PermanentError) as info:
        send(db, make_post(db, make_user, channel))
    assert info.value.params == {"sent": 1, "total": 2}
    smtp.accept_only = 0
    smtp.messages.clear()
    with pytest.raises(TransientError):  # nothing went out: safe to retry
        send(db, make_post(db, make_user, channel))


def test_preview_goes_only_to_the_given_address(db, make_user, smtp):
    channel = make_channel(db, smtp.port, recipients=["everyone@example.com"])
    channel_service.send_preview(db.session, channel, secret_key=SECRET, base_url=BASE,
                                 to="me@example.com")
    (_, rcpts, msg), = smtp.messages
    assert rcpts == ["me@example.com"]
    assert msg["Subject"].startswith("[预览 Preview]")
    assert "List-Unsubscribe" not in msg and "/t/o/" not in parts(msg)[1]


def test_subject_limit_is_checked_before_sending(db, make_user, smtp):
    channel = make_channel(db, smtp.port, recipients=["a@example.com"])
    post = make_post(db, make_user, channel, title="长" * 201)
    findings = channel_service.validate_post(db.session, post, secret_key=SECRET,
                                             base_url=BASE)
    assert [f.code for f in findings] == ["subject_too_long"]
    with pytest.raises(PermanentError):
        send(db, post)
    assert smtp.messages == []


def test_csv_import(db, smtp):
    channel = make_channel(db, smtp.port)
    ref = ListRef(channel_id=channel.id)
    data = ("邮箱,姓名\n"
            "wang@example.com,王小明\n"
            "not-an-address,坏行\n"
            "\n"
            "ZHAO@example.com,赵\n"
            "wang@example.com,重复\n").encode("gb18030")
    report = recipient_service.import_csv(db.session, ref, data)
    assert (report.added, report.unchanged) == (2, 1)
    assert report.errors == [(3, "Not a valid e-mail address: %(value)s",
                              {"value": "not-an-address"})]
    rows = {r.email: r.name for r in recipient_service.list_recipients(db.session, ref)}
    assert rows == {"wang@example.com": "王小明", "zhao@example.com": "赵"}
    again = recipient_service.import_csv(db.session, ref, "\ufeffwang@example.com,王小明\n")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)
