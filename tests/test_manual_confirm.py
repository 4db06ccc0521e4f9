"""The manual channel, N of M: each assignee gets their own signed confirm link by e-mail (real
SMTP on 127.0.0.1), confirms without signing in on a page in their language, once; the post is
published when all have confirmed, and at the deadline by the same rule as WeCom staff."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy.orm import sessionmaker

from contentops.models import Post
from contentops.services import publishing
from contentops.services.channels import build_adapter

from .engine_support import SECRET_KEY, Clock, make_channel, make_post
from .test_notifications import smtp  # noqa: F401 - the SMTP fixture
from .test_staff_progress import messages_of

ASSIGNEES = ["li@example.com", "outside@example.org"]


@pytest.fixture
def li(make_user, db):
    user = make_user("editor", email="li@example.com", name="李雷")
    user.locale = "zh"
    db.session.commit()
    return user


@pytest.fixture
def editor(make_user):
    return make_user("editor", email="editor@example.com")


def hand_over(db, editor, clock, deadline_hours=2):
    channel = make_channel(db.session, "manual", name="朋友圈（手动）",
                           config={"assignees": ASSIGNEES, "deadline_hours": deadline_hours})
    post = make_post(db.session, channel, editor, clock.now, title="周末市集")
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    publishing.Dispatcher(factory, lambda c: build_adapter(c, SECRET_KEY), node="t",
                          clock=clock, workers=1, rng=random.Random(1)).run()
    return post, factory


def fresh(db, post_id) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


CONFIRM = re.compile(r"http://co\.example\.com(/publishing/posts/\d+/confirm/\S+)")


def confirm_mails(smtp, count):  # noqa: F811
    """(recipient, confirm path, message) of the mails carrying a confirm link."""
    for _ in range(50):
        smtp.wait(len(smtp.messages) + 1, timeout=0.1)
        found = [(e[1][0], CONFIRM.search(m.get_content()).group(1), m)
                 for e, m in zip(smtp.envelopes, smtp.messages, strict=True)
                 if CONFIRM.search(m.get_content())]
        if len(found) >= count:
            return found
    raise AssertionError([m.get_content() for m in smtp.messages])


def links_by_recipient(smtp, count):  # noqa: F811
    return {to: (link, message) for to, link, message in confirm_mails(smtp, count)}


def test_each_assignee_confirms_with_their_own_link(db, client, li, editor, smtp):  # noqa: F811
    clock = Clock()
    post, _ = hand_over(db, editor, clock)
    handed = fresh(db, post.id)
    assert handed.status == "awaiting_staff"
    assert (handed.staff_confirmed, handed.staff_total) == (0, 2)
    links = links_by_recipient(smtp, 2)
    assert set(links) == set(ASSIGNEES)  # the outside assignee has no account, still mailed
    li_link, li_mail = links["li@example.com"]
    assert "周末市集" in li_mail.get_content()
    out_link, _ = links["outside@example.org"]
    assert li_link != out_link
    # GET only shows the page (mail scanners must not confirm), in the assignee's language.
    page = client.get(li_link)
    assert page.status_code == 200 and "是的，我已发布" in page.get_data(as_text=True)
    assert fresh(db, post.id).staff_confirmed == 0
    done = client.post(li_link).get_data(as_text=True)
    assert 'data-status="confirmed"' in done
    again = client.post(li_link).get_data(as_text=True)
    assert 'data-status="confirmed"' in again
    half = fresh(db, post.id)
    assert (half.status, half.staff_confirmed, half.staff_total) == ("awaiting_staff", 1, 2)
    assert client.post(out_link, headers={"Accept-Language": "en"}).status_code == 200
    done = fresh(db, post.id)
    assert (done.status, done.staff_confirmed) == ("published", 2)
    assert done.published_at is not None


def test_a_forged_or_foreign_link_is_refused(db, client, li, editor, smtp):  # noqa: F811
    clock = Clock()
    post, _ = hand_over(db, editor, clock)
    link, _ = links_by_recipient(smtp, 2)["li@example.com"]
    token = link.rsplit("/", 1)[1]
    assert client.post(link[:-2] + "xx").status_code == 404
    other = make_post(db.session, post.channel, editor, clock.now)
    assert client.post(f"/publishing/posts/{other.id}/confirm/{token}").status_code == 404
    assert fresh(db, post.id).staff_confirmed == 0


def test_deadline_publishes_when_someone_confirmed_and_names_the_rest(db, client, li, editor,
                                                                      smtp):  # noqa: F811
    clock = Clock()
    post, factory = hand_over(db, editor, clock)
    link, _ = links_by_recipient(smtp, 2)["li@example.com"]
    client.post(link)
    clock.advance(2 * 3600 + 1)
    assert publishing.expire_staff_tasks(factory(), now=clock.now,
                                         signing_key=_signing_key()) == [post.id]
    ended = fresh(db, post.id)
    assert ended.status == "published" and ended.staff_confirmed == 1
    assert any("1 of 2 did not send it (outside@example.org)" in m
               for m in messages_of(db, editor))
    # The outside assignee is told the deadline passed, with their link again.
    late = [m for to, _, m in confirm_mails(smtp, 3) if to == "outside@example.org"][-1]
    assert "deadline" in late.get_content()


def test_deadline_with_nobody_confirmed_is_missed_naming_them(db, client, li, editor):
    clock = Clock()
    post, factory = hand_over(db, editor, clock)
    clock.advance(2 * 3600 + 1)
    assert publishing.expire_staff_tasks(factory(), now=clock.now) == [post.id]
    assert fresh(db, post.id).status == "missed"
    assert any("li@example.com, outside@example.org" in m for m in messages_of(db, editor))


def test_card_and_reminder_for_manual_assignees(db, client, login, li, editor):
    clock = Clock()
    post, _ = hand_over(db, editor, clock)
    login(editor)
    html = client.get(f"/publishing/posts/{post.id}").get_data(as_text=True)
    assert "0 of 2 staff sent" in html and "李雷" in html
    page = client.post(f"/publishing/posts/{post.id}/remind", follow_redirects=True)
    assert "Reminded: li@example.com, outside@example.org" in page.get_data(as_text=True)
    assert any("Reminder" in m for m in messages_of(db, li))


def _signing_key() -> bytes:
    from contentops.services.feedback.email_tracking import tracking_key

    return tracking_key(SECRET_KEY)
