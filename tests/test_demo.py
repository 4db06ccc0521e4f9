"""Demo data: realistic, spread over two months, every state, idempotent, safe to publish."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from contentops.models import (
    PIECE_STATES,
    Audience,
    Campaign,
    Channel,
    ContentPiece,
    PieceRevision,
    Post,
    Style,
)
from contentops.services import demo

from .conftest import make_app

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def load(db, **kwargs):
    summary = demo.load_demo(db.session, secret_key="k" * 32, base_url="http://demo.test",
                             now=NOW, **kwargs)
    db.session.commit()
    return summary


def test_demo_data_is_realistic(db):
    summary = load(db)
    assert "60 pieces" in summary
    assert db.session.query(Audience).count() >= 4
    assert db.session.query(Style).count() >= 4
    assert db.session.query(Campaign).count() >= 2
    assert {c.kind for c in db.session.query(Channel)} >= {"webhook"}
    pieces = db.session.query(ContentPiece).all()
    assert len(pieces) == 60
    assert {p.status for p in pieces} >= set(PIECE_STATES) - {"approved"}
    assert any(p.status == "approved" for p in pieces)
    assert all(p.audience and p.style for p in pieces)
    assert db.session.query(PieceRevision).count() == 60
    posts = db.session.query(Post).all()
    states = Counter(p.status for p in posts)
    assert states["published"] >= 20 and states["scheduled"] >= 5
    assert {"missed", "cancelled", "unscheduled"} <= set(states)
    months = {p.scheduled_at.astimezone(UTC).month for p in posts if p.scheduled_at}
    assert {10, 11} <= months
    this_month = [p for p in posts if p.scheduled_at and p.scheduled_at.month == 11]
    assert len(this_month) >= 25
    published = [p for p in posts if p.status == "published"]
    assert all(p.published_at and p.published_version == p.piece.version for p in published)
    assert sum(p.reads for p in published) > 0 and any(p.likes for p in published)
    # Only approved pieces were published, in their approved version (invariant 1).
    assert all(p.piece.status == "approved" and p.piece.approved_version == p.piece.version
               for p in published)
    # Nothing due in the future would be sent off this machine.
    for post in posts:
        if post.status == "scheduled" and post.piece.status == "approved":
            assert post.channel.kind in demo.LOCAL_KINDS
    assert all(p.scheduled_at is None or p.status != "scheduled" or p.scheduled_at > NOW
               for p in posts)


def test_webhook_secret_is_encrypted_not_stored_plain(db):
    load(db)
    channel = db.session.query(Channel).filter_by(kind="webhook").one()
    assert "secret" not in channel.config and channel.secrets


def test_loading_twice_changes_nothing(db):
    load(db)
    counts = (db.session.query(ContentPiece).count(), db.session.query(Post).count(),
              db.session.query(Audience).count(), db.session.query(Channel).count())
    assert "already" in load(db)
    assert "not loaded" in load(db, only_if_empty=True)
    assert counts == (db.session.query(ContentPiece).count(), db.session.query(Post).count(),
                      db.session.query(Audience).count(), db.session.query(Channel).count())


def test_only_if_empty_leaves_a_used_database_alone(db, make_user):
    db.session.add(ContentPiece(title="mine", author_id=make_user().id))
    db.session.commit()
    assert "not loaded" in load(db, only_if_empty=True)
    assert db.session.query(ContentPiece).count() == 1


def test_demo_pages_render(client, make_user, login, db):
    load(db)
    login(make_user("admin"))
    for url in ("/posts/", "/posts/?sort=-reads", "/settings/", "/settings/audiences/",
                "/settings/styles/", "/settings/campaigns/", "/users/"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "新会员" in client.get("/settings/audiences/").text
    top = client.get("/api/v1/posts?sort=-reads&per_page=1").get_json()["items"][0]
    assert top["metrics"]["reads"] > 0 and top["status"] == "published"


def test_cli_demo_if_empty(tmp_path):
    app = make_app(tmp_path)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    first = runner.invoke(args=["demo", "--if-empty"])
    assert first.exit_code == 0 and "Loaded demo data" in first.output
    second = runner.invoke(args=["demo", "--if-empty"])
    assert second.exit_code == 0 and "not loaded" in second.output
    with app.app_context():
        from contentops.extensions import db

        web = db.session.query(Post).join(Channel).filter(Channel.kind == "web",
                                                          Post.status == "published").all()
        assert all(p.external_url == f"http://testserver/p/{p.slug}" for p in web)
        db.engine.dispose()


def test_demo_web_posts_have_live_public_pages(client, db):
    from contentops.channels.registry import kinds

    load(db)
    web = db.session.query(Post).join(Channel).filter(Channel.kind == "web",
                                                      Post.status == "published").all()
    if "web" not in kinds():
        assert web == []  # no web adapter in this installation, so no web channel
        return
    assert web
    for post in web[:3]:
        assert post.external_url == f"http://demo.test/p/{post.slug}"
        page = client.get(f"/p/{post.slug}")
        assert page.status_code == 200 and post.piece.title in page.text


def test_demo_wecom_customer_channel_stays_on_this_machine(db):
    from urllib.parse import urlsplit

    from contentops.models import Channel, Post

    load(db)
    channel = db.session.query(Channel).filter_by(kind="wecom_customer").one()
    assert urlsplit(channel.config["api_base"]).hostname == "127.0.0.1"
    assert "secret" not in channel.config  # encrypted with the other secrets
    posts = db.session.query(Post).filter_by(channel_id=channel.id).all()
    assert posts, "the demo has 客户群发 posts"
    assert all(p.staff_total == 3 for p in posts if p.status in ("published", "awaiting_staff"))
    published = [p for p in posts if p.status == "published"]
    assert published and all(1 <= p.staff_confirmed <= 3 and p.reached > 0 for p in published)
    # Each has per-sender progress the post's card shows, agreeing with the list columns.
    for p in published + [p for p in posts if p.status == "awaiting_staff"]:
        staff = p.progress["staff"]
        assert [s["id"] for s in staff] == list(channel.config["senders"])
        assert sum(s["status"] == "sent" for s in staff) == p.staff_confirmed
        assert sum(s.get("reached", 0) for s in staff) == p.reached
        assert all(s.get("sent_at") for s in staff if s["status"] == "sent")
        assert p.progress["deadline"]
    # Nothing approved is waiting to be sent to it.
    assert not [p for p in posts if p.status in ("scheduled", "retrying")
                and p.piece.status == "approved"]


def test_demo_wechat_mp_channel_never_calls_out_and_has_history(db):
    load(db)
    channel = db.session.query(Channel).filter_by(kind="wechat_mp").one()
    assert channel.config["api_base"].startswith("http://127.0.0.1:9")
    assert "app_secret" not in channel.config and channel.secrets
    posts = db.session.query(Post).filter_by(channel_id=channel.id).all()
    published = [p for p in posts if p.status == "published"]
    assert published and all(p.external_id.startswith("msg:") for p in published)
    assert any(p.reads for p in published)
    # The daily statistics pull's traces: WeChat's figures, and articles it did not report
    # (fewer than 3 interactions) marked so the pages say so.
    stats = [p.progress.get("wx_stats") for p in published if p.progress]
    assert any(s and s["reported"] and s["read_user"] for s in stats)
    assert any(s and s["reported"] is False for s in stats)
    from contentops.models import ChannelDailyStats

    assert db.session.query(ChannelDailyStats).filter_by(channel_id=channel.id).count() == 14
    # Switched off (the engine sends nothing on inactive channels) and nothing handed off
    # that the tracker would ask WeChat about.
    assert channel.active is False
    assert not [p for p in posts if p.status in ("publishing", "awaiting_staff")]
