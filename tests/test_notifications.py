"""Notifications: in-app rows, per-user preferences, mark read, and e-mail over real SMTP
(aiosmtpd on 127.0.0.1), sent only after commit."""

from __future__ import annotations

import email
import time
from datetime import timedelta
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from contentops.models.review import Notification
from contentops.services import notifications, review

from .builders import NOW, Make
from .conftest import free_port

TOMORROW = NOW + timedelta(days=1)


def piece_of(make: Make, author, *, when=TOMORROW, title="秋季新品上市",
             body="欢迎来店里看看。", **kwargs):
    """A draft piece by `author`, its posts scheduled (tomorrow unless said)."""
    return make.piece(author=author, when=when, title=title, body=body, **kwargs)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=default_policy))
        return "250 OK"

    def wait(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            notifications.wait_for_mail(0.2)
            time.sleep(0.02)


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    notifications.configure_mail(f"smtp://127.0.0.1:{controller.port}",
                                 "ContentOps <noreply@example.com>", "http://co.example.com")
    yield inbox
    notifications.wait_for_mail()
    controller.stop()
    notifications.configure_mail("", "")


def test_notify_respects_preferences_and_skips_inactive(db, make):
    on, off, gone = make.user("approver"), make.user("approver"), make.user("approver",
                                                                          active=False)
    notifications.set_preferences(db.session, off, [])
    notifications.notify(db.session, [on, off, gone, on], "submitted", "Hello %(x)s",
                         {"x": 1}, "/review/")
    db.session.commit()
    rows = db.session.scalars(select(Notification)).all()
    assert [(n.user_id, n.kind, n.params) for n in rows] == [(on.id, "submitted", {"x": 1})]
    assert notifications.preferences(off)["submitted"] == {"app": False, "email": False}
    assert notifications.preferences(on)["mention"] == {"app": True, "email": True}


def test_unread_count_and_mark_read(db, make):
    user, other = make.user("editor"), make.user("editor")
    for i in range(3):
        notifications.notify(db.session, [user, other], "comment", "c%(i)s", {"i": i})
    db.session.commit()
    assert notifications.unread_count(db.session, user) == 3
    first = notifications.recent(db.session, user)[-1]
    assert notifications.mark_read(db.session, user, [first.id]) == 1
    # Someone else's notification is never touched.
    theirs = notifications.recent(db.session, other)[0]
    assert notifications.mark_read(db.session, user, [theirs.id]) == 0
    assert notifications.unread_count(db.session, user) == 2
    assert notifications.mark_read(db.session, user) == 2
    assert notifications.unread_count(db.session, user) == 0
    assert notifications.unread_count(db.session, other) == 3


def test_mentions_notify_the_named_user(db, make):
    author = make.user("editor", name="Lin")
    wang = make.user("approver", name="Wang Fang", email="wangfang@example.com")
    zhao = make.user("approver", name="赵敏")
    piece = piece_of(make, author)
    review.add_comment(db.session, piece, "@赵敏 请看第二段，@wangfang 也看看", NOW,
                       author=author)
    db.session.commit()
    mentions = db.session.scalars(select(Notification).where(
        Notification.kind == "mention")).all()
    assert {n.user_id for n in mentions} == {wang.id, zhao.id}
    assert mentions[0].link.startswith(f"/review/pieces/{piece.id}#comment-")


def test_emails_are_sent_after_commit_in_the_readers_language(db, make, smtp):
    author = make.user("editor", email="lin@example.com")
    author.locale = "zh"
    english = make.user("approver", email="wang@example.com")
    quiet = make.user("approver", email="quiet@example.com")
    notifications.set_preferences(db.session, quiet, ["app:submitted"])
    db.session.commit()
    piece = piece_of(make, author, title="双11预告")
    review.submit(db.session, piece, author, NOW)
    notifications.wait_for_mail(0.5)
    assert smtp.messages == []  # nothing before commit
    db.session.commit()
    smtp.wait(1)
    review.approve(db.session, piece, english, NOW)
    db.session.commit()
    smtp.wait(2)
    by_rcpt = {env[1][0]: msg for env, msg in zip(smtp.envelopes, smtp.messages, strict=True)}
    assert set(by_rcpt) == {"wang@example.com", "lin@example.com"}
    to_wang = by_rcpt["wang@example.com"]
    assert "双11预告" in to_wang["Subject"] and "submitted" in to_wang["Subject"]
    assert f"http://co.example.com/review/pieces/{piece.id}" in to_wang.get_content()
    to_lin = by_rcpt["lin@example.com"]
    assert "批准" in to_lin["Subject"]  # the author reads Chinese
    # The quiet approver still got the in-app notification.
    assert db.session.scalar(select(Notification.id).where(
        Notification.user_id == quiet.id)) is not None


def test_rolled_back_actions_send_no_mail(db, make, smtp):
    author = make.user("editor")
    make.user("approver")
    piece = piece_of(make, author)
    review.submit(db.session, piece, author, NOW)
    db.session.rollback()
    db.session.commit()
    notifications.wait_for_mail()
    time.sleep(0.1)
    assert smtp.messages == []


def test_unreachable_smtp_server_is_logged_not_raised(db, make, caplog):
    notifications.configure_mail(f"smtp://127.0.0.1:{free_port()}", "a@example.com")
    try:
        user = make.user("editor")
        notifications.notify(db.session, [user], "comment", "hi")
        db.session.commit()
        notifications.wait_for_mail()
    finally:
        notifications.configure_mail("", "")
    assert "cannot reach SMTP server" in caplog.text
    assert notifications.unread_count(db.session, user) == 1
