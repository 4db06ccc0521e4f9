"""The XSS corpus, fed through every rendered field of a piece, must not survive anywhere.

Fields: title, Markdown body, summary, per-channel variant title and body, tags, and the
names shown next to a piece (audience, style, campaign, channel, author), plus a channel
colour and a post's external URL (which come from settings and remote services). Every page
that shows them, the live preview, and the API's HTML fields are parsed and checked.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from sqlalchemy import select

from contentops.models import Audience, Campaign, Channel, ContentPiece, Style, User
from contentops.rendering import markdown_to_html, markdown_to_text, sanitize_html
from contentops.services import content as content_service
from contentops.services.users import create_token

from .pieces_helpers import NOW
from .xss_corpus import PAYLOADS, active_content, assert_no_active_content


def test_the_corpus_is_big_and_the_checker_is_not_blind():
    assert len(PAYLOADS) >= 50
    # Rendered by a careless renderer (raw HTML on, no sanitiser) most payloads are caught.
    careless = MarkdownIt("commonmark", {"html": True})
    caught = [p for p in PAYLOADS if active_content(careless.render(p))]
    assert len(caught) >= 35, len(caught)


def test_rendering_neutralises_every_payload():
    for payload in PAYLOADS:
        assert_no_active_content(markdown_to_html(payload), f"markdown {payload!r}")
        assert_no_active_content(sanitize_html(payload), f"sanitize {payload!r}")
        # Even raw HTML handed straight to the sanitiser loses its scripts.
        assert "<script" not in sanitize_html(payload).lower()
        assert "\x00" not in markdown_to_text(payload)


def _names(i: int, payload: str, limit: int) -> str:
    # Names are unique columns: a numeric suffix keeps each payload its own record.
    suffix = f" #{i}"
    return payload[: limit - len(suffix)] + suffix


def test_no_payload_survives_in_any_page_or_api_html_field(app, db, make_user, login):
    editor = make_user("editor", name="<img src=x onerror=alert('XSS')>")
    pieces: list[ContentPiece] = []
    for i, payload in enumerate(PAYLOADS):
        audience = Audience(name=_names(i, payload, 100), description=payload)
        style = Style(name=_names(i, payload, 100), guidelines=payload)
        campaign = Campaign(name=_names(i, payload, 100), goal=payload)
        channel = Channel(name=_names(i, payload, 100), kind="webhook",
                          color=payload[:7] if i % 2 else "#12ab34",
                          config={"url": "http://127.0.0.1:9/x"})
        author = User(email=f"a{i}@example.com", name=payload[:100], role="editor",
                      password_hash="!", active=True, notification_prefs={})
        db.session.add_all([audience, style, campaign, channel, author])
        db.session.flush()
        result = content_service.create_piece(db.session, {
            "title": payload[:200] if payload.strip() else "x",
            "body": payload + "\n\n" + payload.replace("XSS", "body"),
            "summary": payload[:500],
            "audience_id": audience.id, "style_id": style.id, "campaign_id": campaign.id,
            "channel_ids": [channel.id],
            "tags": [payload[:50]],
            "variants": {str(channel.id): {"title": payload[:200], "body": payload}},
        }, author=author, now=NOW)
        post = result.piece.posts[0]
        post.status, post.external_url = "published", "javascript:alert('XSS')"
        pieces.append(result.piece)
        # Switched off afterwards, so each editor page lists its own channel rather than all
        # of them (keeps the test fast; every name still shows on the list and view pages).
        channel.active = False
    db.session.commit()
    assert len(pieces) == len(PAYLOADS)

    client = login(editor)
    checked = 0
    listing = client.get("/pieces/?per_page=100")
    assert listing.status_code == 200
    assert_no_active_content(listing.text, "/pieces/")
    checked += 1
    for piece in pieces:
        for url in (f"/pieces/{piece.id}", f"/pieces/{piece.id}/edit"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert_no_active_content(response.text, url)
            checked += 1
    assert_no_active_content(client.get("/pieces/new").text, "/pieces/new")
    for query in ("q=%3Cscript%3E", "tag=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E",
                  "status=%22%3E%3Cscript%3E"):
        assert_no_active_content(client.get(f"/pieces/?{query}").text, query)
    for payload in PAYLOADS:
        html = client.post("/pieces/preview", json={"body": payload}).get_json()["html"]
        assert_no_active_content(html, f"preview {payload!r}")
        checked += 1

    _, token = create_token(db.session, db.session.scalars(select(User)).first())
    db.session.commit()
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for piece in pieces:
        body = api.get(f"/api/v1/pieces/{piece.id}").get_json()
        assert_no_active_content(body["body_html"], f"api body_html {piece.id}")
        for post in body["posts"]:
            assert_no_active_content(post["body_html"], f"api post body_html {post['id']}")
        checked += 1
    assert checked >= 3 * len(PAYLOADS)


def test_a_failed_form_echoes_payloads_safely(app, db, make_user, login):
    from .pieces_helpers import make_taxonomy

    t = make_taxonomy(db.session)
    client = login(make_user("editor"))
    for payload in PAYLOADS[:20]:
        response = client.post("/pieces/new", data={
            "title": payload, "body": payload, "summary": payload, "tags": payload,
            "audience_id": payload, "style_id": str(t.style.id), "campaign_id": payload,
            "channel_ids": [payload], "scheduled_at": payload,
            f"variant_title_{t.web.id}": payload, f"variant_body_{t.web.id}": payload})
        assert response.status_code == 422
        assert_no_active_content(response.text, f"form echo {payload!r}")


def test_rendering_keeps_useful_markdown_and_strips_the_rest():
    html = markdown_to_html(
        "# Title\n\n**b** *i* ~~s~~ `c`\n\n3. x\n4. y\n\n| l | r |\n|:--|--:|\n| 1 | 2 |\n\n"
        "```python extra words\nprint(1)\n```\n\n![alt](https://img.example/a.png)\n\n"
        "[link](https://example.com \"t\")")
    for fragment in ("<h1>Title</h1>", "<strong>b</strong>", "<em>i</em>", "<s>s</s>",
                     "<code>c</code>", '<ol start="3">', 'style="text-align:left"',
                     'style="text-align:right"', 'class="language-python"',
                     'referrerpolicy="no-referrer"', 'loading="lazy"',
                     'rel="noopener noreferrer nofollow ugc"', 'title="t"'):
        assert fragment in html, fragment
    # Attribute values outside the allow-list are dropped, even from raw HTML.
    cleaned = sanitize_html('<code class="language-js position-fixed">x</code>'
                            '<td style="color:red">y</td><span class="btn">z</span>'
                            '<img src="https://a/b.png" width="100%" onerror="x()">')
    assert "position-fixed" not in cleaned and "color:red" not in cleaned
    assert 'class="btn"' not in cleaned and "100%" not in cleaned and "onerror" not in cleaned
    # Bidi overrides and control characters never reach a page.
    assert "\u202e" not in markdown_to_html("a\u202eb") and "\x07" not in markdown_to_html("\x07")
    # Very long input is cut, not allowed to stall a page.
    assert len(markdown_to_html("x" * 300_000)) < 210_000
