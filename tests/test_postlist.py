"""The post list: filters, sorting (every column, each metric), paging, indexes, page and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from contentops.errors import ValidationError
from contentops.models import Audience, Campaign, Channel, ContentPiece, Post, Style
from contentops.services import postlist
from contentops.services import users as user_service

T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def seed(db, author, n: int = 24) -> dict:
    """Two channels, audiences, styles and a campaign; n posts with distinct metrics."""
    aud = [Audience(name="新会员"), Audience(name="沉睡用户")]
    sty = [Style(name="亲切"), Style(name="专业")]
    camp = Campaign(name="双11 大促")
    chans = [Channel(name="Blog", kind="webhook", color="#112233", config={}),
             Channel(name="CRM", kind="webhook", color="#445566", config={})]
    db.session.add_all([*aud, *sty, camp, *chans])
    states = ["published", "scheduled", "failed", "unscheduled"]
    posts = []
    for i in range(n):
        piece = ContentPiece(title=f"Piece {i:02d}", body="x", author_id=author.id,
                             audience=aud[i % 2], style=sty[(i // 2) % 2],
                             campaign=camp if i % 3 == 0 else None)
        status = states[i % 4]
        post = Post(piece=piece, channel=chans[i % 2], status=status,
                    scheduled_at=None if status == "unscheduled" else T0 + timedelta(hours=i),
                    published_at=T0 + timedelta(hours=i, minutes=1)
                    if status == "published" else None,
                    reads=(i * 37) % 101, likes=(i * 13) % 17, comments=i % 5,
                    shares=(i * 7) % 11, clicks=i)
        posts.append(post)
        db.session.add(piece)
    db.session.commit()
    return {"audiences": aud, "styles": sty, "campaign": camp, "channels": chans,
            "posts": posts}


@pytest.fixture
def data(db, make_user):
    return seed(db, make_user("editor"))


def run(db, tz="Asia/Shanghai", **args):
    return postlist.list_posts(db.session, postlist.parse_filters(args, tz))


def test_each_filter_narrows_the_list(db, data):
    everything = run(db, per_page="200")
    assert everything.total == 24 and len(everything.items) == 24
    blog = data["channels"][0]
    assert {p.channel_id for p in run(db, channel_id=str(blog.id)).items} == {blog.id}
    aud = data["audiences"][1]
    got = run(db, audience_id=str(aud.id), per_page="200").items
    assert got and all(p.piece.audience_id == aud.id for p in got) and len(got) == 12
    sty = data["styles"][0]
    assert all(p.piece.style_id == sty.id for p in run(db, style_id=str(sty.id)).items)
    camp = data["campaign"]
    assert run(db, campaign_id=str(camp.id)).total == 8
    assert {p.status for p in run(db, status="failed,scheduled").items} == {"failed",
                                                                           "scheduled"}
    assert run(db, status=["failed", "published"]).total == 12
    assert run(db, q="piece 1").total == 10  # 10..19, case-insensitive
    assert run(db, q="100%").total == 0  # LIKE wildcards are literal
    # Filters combine.
    both = run(db, channel_id=str(blog.id), status="published")
    assert both.total and all(p.channel_id == blog.id and p.status == "published"
                              for p in both.items)


def test_date_range_is_whole_days_in_the_viewers_zone(db, data):
    # T0 + 14h = 2026-11-10 16:00 UTC = 2026-11-11 00:00 Shanghai.
    day = run(db, **{"from": "2026-11-10", "to": "2026-11-10"}, per_page="200")
    hours = sorted(int((p.scheduled_at - T0).total_seconds() // 3600) for p in day.items)
    assert hours and max(hours) == 13 and min(hours) == 0
    utc_day = run(db, tz="UTC", **{"from": "2026-11-10", "to": "2026-11-10"}, per_page="200")
    assert max(int((p.scheduled_at - T0).total_seconds() // 3600)
               for p in utc_day.items) == 21
    exact = run(db, **{"from": "2026-11-10T07:00:00+00:00", "to": "2026-11-10T09:00:00Z"})
    assert sorted(int((p.scheduled_at - T0).total_seconds() // 3600)
                  for p in exact.items) == [5, 6]


def test_sorting_by_every_column(db, data):
    def value(post, key):
        return {
            "title": post.title.lower(), "channel": post.channel.name.lower(),
            "audience": post.piece.audience.name, "style": post.piece.style.name,
            "campaign": post.piece.campaign.name if post.piece.campaign else None,
            "status": post.status, "engagement": post.engagement_rate,
        }.get(key, getattr(post, key, None))

    for key in postlist.SORT_KEYS:
        for descending in (False, True):
            page = run(db, sort=("-" if descending else "") + key, per_page="200")
            values = [value(p, key) for p in page.items]
            present = [v for v in values if v is not None]
            # Empty values come last in both directions; the rest is ordered.
            assert values[:len(present)] == present, (key, descending)
            assert present == sorted(present, reverse=descending), (key, descending)
            # Ties are broken by id in the same direction, so paging is stable.
            for a, b in zip(page.items, page.items[1:], strict=False):
                if value(a, key) == value(b, key):
                    assert (a.id > b.id) if descending else (a.id < b.id), (key, descending)


def test_pages_cover_every_post_once(db, data):
    seen = []
    first = run(db, sort="-reads", per_page="5")
    assert first.total == 24 and first.pages == 5 and not first.has_prev and first.has_next
    for number in range(1, 6):
        seen += [p.id for p in run(db, sort="-reads", per_page="5", page=str(number)).items]
    assert len(seen) == 24 and len(set(seen)) == 24
    assert run(db, page="99").items == []


@pytest.mark.parametrize("args,field", [
    ({"status": "bogus"}, "status"),
    ({"channel_id": "abc"}, "channel_id"),
    ({"audience_id": "-1"}, "audience_id"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-11-10", "to": "2026-11-01"}, "to"),
    ({"sort": "password_hash"}, "sort"),
    ({"page": "0"}, "page"),
    ({"per_page": "100000"}, "per_page"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_filters_are_refused_per_field(args, field):
    with pytest.raises(ValidationError) as info:
        postlist.parse_filters(args, "Asia/Shanghai")
    assert field in info.value.fields


def _plan(db, filters) -> str:
    query = postlist.build_query(filters).limit(50)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("sort,index", [
    ("-reads", "ix_posts_reads"), ("reads", "ix_posts_reads"), ("-likes", "ix_posts_likes"),
    ("-comments", "ix_posts_comments"), ("-shares", "ix_posts_shares"),
    ("-clicks", "ix_posts_clicks"), ("-scheduled_at", "ix_posts_scheduled_at"),
    ("-published_at", "ix_posts_published_at"),
])
def test_sqlite_walks_an_index_instead_of_sorting(db, data, sort, index):
    plan = _plan(db, postlist.PostFilter(sort=sort))
    assert index in plan and "TEMP B-TREE" not in plan, plan


def test_sqlite_uses_indexes_for_channel_and_range_filters(db, data):
    f = postlist.PostFilter(channel_id=data["channels"][0].id, start=T0,
                            end=T0 + timedelta(days=1))
    plan = _plan(db, f)
    assert "ix_posts_channel_scheduled_at" in plan and "TEMP B-TREE" not in plan, plan
    status_plan = _plan(db, postlist.PostFilter(statuses=("failed",)))
    assert "ix_posts_status_scheduled_at" in status_plan, status_plan


@pytest.mark.postgres
def test_postgres_can_page_top_posts_from_the_index(tmp_path, pg_url):
    from flask_migrate import upgrade

    from contentops.extensions import db as _db
    from contentops.models import User

    from .conftest import make_app

    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=pg_url)
    with app.app_context():
        upgrade()
        author = User(email="a@example.com", name="A", role="editor", password_hash="x",
                      notification_prefs={})
        _db.session.add(author)
        _db.session.commit()
        seed(_db, author)
        query = postlist.build_query(postlist.PostFilter(sort="-reads")).limit(50)
        compiled = query.compile(_db.engine, compile_kwargs={"literal_binds": True})
        # Small tables make a sort cheapest; forbid it to prove an index path exists.
        _db.session.execute(text("SET LOCAL enable_sort = off"))
        plan = "\n".join(r[0] for r in _db.session.execute(text(f"EXPLAIN {compiled}")))
        assert "ix_posts_reads" in plan, plan
        page = postlist.list_posts(_db.session, postlist.PostFilter(sort="-reads"))
        assert [p.reads for p in page.items] == sorted((p.reads for p in page.items),
                                                       reverse=True)
        _db.session.rollback()
        _db.engine.dispose()


# --- The /posts page ------------------------------------------------------------------------

def test_page_shows_posts_with_their_columns(client, make_user, login, data):
    login(make_user("viewer"))
    page = client.get("/posts/?sort=-reads")
    assert page.status_code == 200
    html = page.text
    top = max(data["posts"], key=lambda p: (p.reads, p.id))
    first_row = html.split('data-post="', 1)[1].split('"', 1)[0]
    assert first_row == str(top.id)
    for header in ("Title", "Channel", "Audience", "Style", "Status", "Scheduled",
                   "Published", "Reads", "Likes", "Comments", "Shares", "Engagement"):
        assert f">{header}" in html
    assert "background: #112233" in html  # channel colour
    assert 'data-total="24"' in html
    # Scheduled time in the viewer's zone (Asia/Shanghai by default): 10:00, not 02:00.
    first = min((p for p in data["posts"] if p.scheduled_at), key=lambda p: p.scheduled_at)
    assert "10:00" in client.get(f"/posts/?sort=scheduled_at&q={first.piece.title}").text


def test_page_sort_links_and_pagination(client, make_user, login, data):
    login(make_user("viewer"))
    html = client.get("/posts/?per_page=10&sort=-reads").text
    assert 'rel="next"' in html and "page=2" in html
    assert 'aria-sort="descending"' in html
    # The active column's link flips the direction and keeps other filters.
    assert "sort=reads" in html and "per_page=10" in html
    second = client.get("/posts/?per_page=10&sort=-reads&page=3").text
    assert second.count("data-post=") == 4


def test_page_shows_filter_errors_next_to_fields(client, make_user, login, data):
    login(make_user("viewer"))
    html = client.get("/posts/?channel_id=abc&from=soon").text
    assert 'data-field-error="channel_id"' in html and 'data-field-error="from"' in html


def test_empty_state_tells_a_new_user_what_to_do(client, make_user, login):
    login(make_user("admin"))
    html = client.get("/posts/").text
    assert "data-empty-state" in html and "No posts yet" in html
    assert "/settings/" in html


def test_page_in_chinese(client, make_user, login, data, db):
    user = make_user("viewer")
    user.locale = "zh"
    db.session.commit()
    login(user)
    html = client.get("/posts/").text
    assert "已发布" in html and "阅读" in html


# --- GET /api/v1/posts ----------------------------------------------------------------------

@pytest.fixture
def token(db, make_user):
    user = make_user("viewer")
    _t, plain = user_service.create_token(db.session, user, "t")
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def test_api_lists_posts_in_the_documented_shape(client, token, data):
    response = client.get("/api/v1/posts?sort=-reads&per_page=3", headers=token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 24 and len(body["items"]) == 3
    item = body["items"][0]
    assert set(item) >= {"id", "piece_id", "title", "channel", "audience", "style", "status",
                         "scheduled_at", "published_at", "external_url", "metrics"}
    assert set(item["channel"]) >= {"id", "name", "kind"}
    assert set(item["metrics"]) == {"reads", "likes", "comments", "shares", "clicks"}
    reads = [i["metrics"]["reads"] for i in body["items"]]
    assert reads == sorted(reads, reverse=True) and reads[0] == max(
        p.reads for p in data["posts"])
    assert item["audience"]["name"] in {"新会员", "沉睡用户"}
    scheduled = next(i for i in client.get("/api/v1/posts?status=scheduled",
                                           headers=token).get_json()["items"])
    assert scheduled["scheduled_at"].endswith("Z") and scheduled["published_at"] is None


def test_api_filters(client, token, data):
    chan = data["channels"][0]
    body = client.get(f"/api/v1/posts?channel_id={chan.id}&status=published",
                      headers=token).get_json()
    assert body["total"] > 0
    assert all(i["channel"]["id"] == chan.id and i["status"] == "published"
               for i in body["items"])
    ranged = client.get("/api/v1/posts?from=2026-11-10T07:00:00%2B00:00"
                        "&to=2026-11-10T09:00:00Z", headers=token).get_json()
    assert ranged["total"] == 2


def test_api_refuses_bad_filters_and_anonymous_calls(client, token):
    bad = client.get("/api/v1/posts?status=nope&page=x", headers=token)
    assert bad.status_code == 422
    error = bad.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"status", "page"}
    assert client.get("/api/v1/posts").status_code == 401
    zh = client.get("/api/v1/posts?sort=x", headers={**token, "Accept-Language": "zh-CN"})
    assert zh.get_json()["error"]["fields"]["sort"][0] != "Sort by one of the columns."


def test_titles_link_to_the_piece_page(client, make_user, login, data):
    login(make_user("viewer"))
    post = data["posts"][0]
    html = client.get(f"/posts/?q={post.piece.title}").text
    assert f'href="/pieces/{post.piece_id}"' in html
    assert client.get(f"/pieces/{post.piece_id}").status_code == 200
