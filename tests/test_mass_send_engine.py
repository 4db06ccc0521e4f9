"""The engine when a 公众号 mass send hits the quota (errcode 45028): the post moves to the next
time the quota allows, stays scheduled, keeps its retry budget, and says so — never failed,
never dropped. Through the real Dispatcher with a small test adapter, one of them talking HTTP
to a loopback stub that answers like api.weixin.qq.com."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contentops.channels.base import (
    ChannelAdapter,
    OutgoingPost,
    PublishResult,
    QuotaExhausted,
    TransientError,
)
from contentops.errors import N_
from contentops.models import Channel, Post, PublishAttempt
from contentops.reasons import decode_reason, reason_text
from contentops.services import publishing

from .engine_support import Clock, make_post, send_json

SH = ZoneInfo("Asia/Shanghai")


class MassSendStub:
    """POST /cgi-bin/message/mass/sendall on loopback: answers {"errcode":0,"msg_id":…} until
    `quota` sends were made today, then errcode 45028 as WeChat does; 40001 without a token."""

    def __init__(self, quota: int = 1) -> None:
        self.quota = quota
        self.sent: list[dict] = []
        self.refused = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if not self.path.startswith("/cgi-bin/message/mass/sendall?access_token="):
                    send_json(self, 200, {"errcode": 40001, "errmsg": "invalid credential"})
                    return
                if len(stub.sent) >= stub.quota:
                    stub.refused += 1
                    send_json(self, 200, {"errcode": 45028,
                                          "errmsg": "has no masssend quota hint"})
                    return
                stub.sent.append(body)
                send_json(self, 200, {"errcode": 0, "errmsg": "send job submission success",
                                      "msg_id": 1000 + len(stub.sent)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MassSendStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class StubMassSendAdapter(ChannelAdapter):
    """Just enough of a wechat_mp mass-send adapter to speak to the stub (the real adapter is
    another branch's work): 45028 becomes QuotaExhausted, as the protocol asks."""

    kind = "wechat_mp"
    label = "WeChat mass send (test)"

    def __init__(self, base_url: str) -> None:
        super().__init__({})
        self.base_url = base_url
        self.http = requests.Session()

    def render(self, post: OutgoingPost) -> dict:
        return {"filter": {"is_to_all": True}, "msgtype": "text",
                "text": {"content": post.title}, "clientmsgid": str(post.post_id)}

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        res = self.http.post(f"{self.base_url}/cgi-bin/message/mass/sendall",
                             params={"access_token": "TOKEN"}, json=self.render(post),
                             timeout=5)
        data = res.json()
        if data.get("errcode") == 45028:
            raise QuotaExhausted(N_("The mass-send quota of this account is used up."),
                                 detail="errcode 45028")
        if data.get("errcode"):
            raise TransientError(N_("WeChat refused the call."),
                                 detail=f"errcode {data.get('errcode')}")
        return PublishResult(external_id=str(data["msg_id"]))


class ScriptedQuotaAdapter(ChannelAdapter):
    """Raises QuotaExhausted (with a given not_before) on the first call, then sends."""

    kind = "wechat_mp"
    label = "Scripted"

    def __init__(self, not_before: datetime | None = None) -> None:
        super().__init__({})
        self.not_before = not_before
        self.calls = 0

    def render(self, post: OutgoingPost) -> str:
        return post.title

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        self.calls += 1
        if self.calls == 1:
            raise QuotaExhausted(N_("The mass-send quota of this account is used up."),
                                 detail="errcode 45028", not_before=self.not_before)
        return PublishResult(external_id=f"msg-{post.post_id}")


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The test adapter stands in for the wechat_mp kind (the claim asks the registry about
    the kind, e.g. whether it uses recipient lists)."""
    from contentops.channels import registry

    monkeypatch.setitem(registry._KINDS, "wechat_mp", StubMassSendAdapter)


@pytest.fixture
def author(make_user):
    return make_user("editor", email="author@example.com")


@pytest.fixture
def factory(db):
    return sessionmaker(bind=db.engine, expire_on_commit=False)


def mp_channel(session, *, account: str = "subscription", name: str = "品牌订阅号") -> Channel:
    channel = Channel(name=name, kind="wechat_mp", color="#07c160",
                      config={"account_type": account, "mode": "mass_send"},
                      conflict_window_minutes=0, grace_minutes=30)
    session.add(channel)
    session.commit()
    return channel


def dispatcher(factory, clock, adapter):
    return publishing.Dispatcher(factory, lambda channel: adapter, node="test-node",
                                 clock=clock, workers=2, rng=random.Random(3),
                                 team_tz="Asia/Shanghai",
                                 policy=publishing.RetryPolicy(base_seconds=10))


def fresh(db, post_id: int) -> Post:
    db.session.expire_all()
    return db.session.get(Post, post_id)


def attempts(db, post_id: int) -> list[PublishAttempt]:
    return list(db.session.scalars(select(PublishAttempt).where(
        PublishAttempt.post_id == post_id).order_by(PublishAttempt.id)))


def test_45028_moves_the_post_to_the_next_free_day_at_the_same_local_time(db, factory, author):
    # 09:00 Shanghai on 11 Nov; the account already mass-sent today from the WeChat website.
    clock = Clock(datetime(2026, 11, 11, 1, 0, tzinfo=UTC))
    channel = mp_channel(db.session)
    post = make_post(db.session, channel, author, clock.now, title="双11 返场")
    # 12 Nov is already planned for another mass send: the post goes to the 13th.
    taken = make_post(db.session, channel, author,
                      datetime(2026, 11, 12, 20, 0, tzinfo=SH), title="明日预告")
    with MassSendStub(quota=0) as stub:
        stats = dispatcher(factory, clock, StubMassSendAdapter(stub.url)).run()
    assert stub.refused == 1 and stub.sent == []
    assert stats.failed == 0 and stats.retrying == 0
    moved = fresh(db, post.id)
    assert moved.status == "scheduled"
    assert moved.scheduled_at == datetime(2026, 11, 13, 9, 0, tzinfo=SH)
    assert moved.claim_token is None and moved.next_attempt_at is None
    assert moved.attempt_count == 0  # the retry budget is untouched
    msg, params, detail = decode_reason(moved.last_error)
    assert msg == "Mass-send quota used up; moved to %(when)s."
    assert params == {"when": "2026-11-13 09:00 (Asia/Shanghai)"} and detail == "errcode 45028"
    assert reason_text(moved.last_error) == ("Mass-send quota used up; moved to 2026-11-13 09:00 "
                                             "(Asia/Shanghai). (errcode 45028)")
    (attempt,) = attempts(db, post.id)
    assert attempt.outcome == "quota"
    assert "quota of this account is used up" in reason_text(attempt.error)
    assert fresh(db, taken.id).status == "scheduled"  # the other post is untouched

    # Not due again before the 13th; at 09:00 that day it goes out.
    clock.now = datetime(2026, 11, 12, 1, 0, tzinfo=UTC)
    with MassSendStub(quota=1) as stub:
        adapter = StubMassSendAdapter(stub.url)
        dispatcher(factory, clock, adapter).run()  # the 12th: only `taken` is due later
        assert stub.sent == []
        clock.now = datetime(2026, 11, 13, 1, 0, 5, tzinfo=UTC)
        dispatcher(factory, clock, adapter).run()
        assert [b["text"]["content"] for b in stub.sent] == ["双11 返场"]
    sent = fresh(db, post.id)
    assert sent.status == "published" and sent.external_id == "1001"
    assert [a.outcome for a in attempts(db, post.id)] == ["quota", "published"]


def test_not_before_from_the_adapter_wins(db, factory, author):
    clock = Clock(datetime(2026, 11, 11, 1, 0, tzinfo=UTC))
    channel = mp_channel(db.session)
    post = make_post(db.session, channel, author, clock.now)
    later = datetime(2026, 11, 15, 10, 30, tzinfo=SH)
    adapter = ScriptedQuotaAdapter(not_before=later)
    dispatcher(factory, clock, adapter).run()
    moved = fresh(db, post.id)
    assert moved.status == "scheduled" and moved.scheduled_at == later
    assert "2026-11-15 10:30" in reason_text(moved.last_error)


def test_service_account_moves_to_the_first_of_next_month(db, factory, author):
    clock = Clock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))  # 20:00 Shanghai
    channel = mp_channel(db.session, account="service")
    post = make_post(db.session, channel, author, clock.now)
    dispatcher(factory, clock, ScriptedQuotaAdapter()).run()
    moved = fresh(db, post.id)
    assert moved.status == "scheduled"
    assert moved.scheduled_at == datetime(2026, 12, 1, 20, 0, tzinfo=SH)


def test_a_retrying_post_keeps_its_planned_time_of_day(db, factory, author):
    # Planned for 09:00, failed transiently, retried at 09:10: moves to 09:00 tomorrow.
    clock = Clock(datetime(2026, 11, 11, 1, 10, tzinfo=UTC))
    channel = mp_channel(db.session)
    post = make_post(db.session, channel, author, datetime(2026, 11, 11, 1, 0, tzinfo=UTC),
                     status="retrying")
    post.next_attempt_at, post.attempt_count = clock.now - timedelta(seconds=1), 1
    db.session.commit()
    dispatcher(factory, clock, ScriptedQuotaAdapter()).run()
    moved = fresh(db, post.id)
    assert moved.status == "scheduled" and moved.attempt_count == 1
    assert moved.scheduled_at == datetime(2026, 11, 12, 9, 0, tzinfo=SH)


def test_the_moved_reason_shows_on_the_publishing_page_in_both_languages(
        app, client, login, db, factory, author):
    clock = Clock(datetime(2026, 11, 11, 1, 0, tzinfo=UTC))
    channel = mp_channel(db.session)
    post = make_post(db.session, channel, author, clock.now, title="双11 返场")
    dispatcher(factory, clock, ScriptedQuotaAdapter()).run()
    login(author)
    page = client.get(f"/publishing/posts/{post.id}").get_data(as_text=True)
    assert "Mass-send quota used up; moved to 2026-11-12 09:00 (Asia/Shanghai)." in page
    assert "alert-warning" in page
    listing = client.get("/posts/").get_data(as_text=True)
    assert "moved to 2026-11-12 09:00" in listing
    zh = client.get(f"/publishing/posts/{post.id}",
                    headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "2026-11-12 09:00 (Asia/Shanghai)" in zh
    # The post list API says it too, rendered (not the stored JSON).
    items = client.get("/api/v1/posts").get_json()["items"]
    (item,) = [i for i in items if i["id"] == post.id]
    assert item["status"] == "scheduled"
    assert item["last_error"].startswith("Mass-send quota used up; moved to 2026-11-12 09:00")


@pytest.mark.postgres
def test_45028_move_on_postgresql_batch_completion(tmp_path, pg_url):
    """PostgreSQL completes a batch in one UPDATE … FROM unnest(…): the moved time, kept
    retry budget and reason must come through that path too, next to a normal send."""
    from contentops.extensions import db as _db
    from contentops.models import User
    from tests.conftest import make_app

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        _db.create_all()
        s = _db.session
        author = User(email="pg@example.com", name="PG", password_hash="x", role="editor",
                      notification_prefs={})
        s.add(author)
        s.commit()
        clock = Clock(datetime(2026, 11, 11, 1, 0, tzinfo=UTC))
        # Two accounts; the stub lets one mass send through, then answers 45028.
        ids = [make_post(s, mp_channel(s, name=f"订阅号{i}"), author, clock.now).id
               for i in range(2)]
        factory = sessionmaker(bind=_db.engine, expire_on_commit=False)
        with MassSendStub(quota=1) as stub:
            dispatcher(factory, clock, StubMassSendAdapter(stub.url)).run()
        s.expire_all()
        posts = sorted((s.get(Post, i) for i in ids), key=lambda p: p.status)
        sent, moved = posts
        assert (sent.status, moved.status) == ("published", "scheduled")
        assert moved.attempt_count == 0 and moved.claim_token is None
        assert moved.scheduled_at == datetime(2026, 11, 12, 9, 0, tzinfo=SH)
        assert "moved to 2026-11-12 09:00" in reason_text(moved.last_error)
        assert [a.outcome for a in s.scalars(select(PublishAttempt).where(
            PublishAttempt.post_id == moved.id))] == ["quota"]
        _db.session.remove()
        _db.engine.dispose()
