"""Public pages of the web channel (no sign-in): /p/<slug> and an RSS 2.0 / Atom feed per
channel. A page exists only while its post is `published`."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template

from ..extensions import db
from ..models import Channel, Post
from ..rendering import markdown_to_html, markdown_to_text
from ..security import public
from ..services.feedback import pages

bp = Blueprint("public", __name__)

FEED_SIZE = 50


def _published(slug: str) -> Post:
    post = pages.published_by_slug(db.session, slug)
    if post is None:
        abort(404)
    return post


def _summary(post: Post, length: int = 120) -> str:
    text = post.piece.summary or markdown_to_text(post.body)
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


@bp.get("/p/<slug>")
@public
def post_page(slug: str):
    post = _published(slug)
    base = current_app.config.get("CONTENTOPS_BASE_URL", "")
    return render_template("public/post.html", post=post, body_html=markdown_to_html(post.body),
                           summary=_summary(post), canonical=f"{base}/p/{post.slug}",
                           feed_channel=post.channel if post.channel.kind == "web" else None)


def _web_channel(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != "web":
        abort(404)
    return channel


def _feed(channel: Channel):
    from feedgen.feed import FeedGenerator

    base = current_app.config.get("CONTENTOPS_BASE_URL", "")
    posts = pages.feed_posts(db.session, channel, FEED_SIZE)
    fg = FeedGenerator()
    fg.id(f"{base}/c/{channel.id}")
    fg.title(channel.name)
    fg.link(href=f"{base}/c/{channel.id}/atom.xml", rel="self")
    fg.link(href=f"{base}/c/{channel.id}/rss.xml", rel="alternate")
    fg.description(channel.name)
    fg.language("zh-CN")
    if posts:
        fg.updated(posts[0].published_at)
    for post in reversed(posts):  # feedgen prepends entries; newest ends up first
        url = f"{base}/p/{post.slug}"
        entry = fg.add_entry()
        entry.id(url)
        entry.guid(url, permalink=True)
        entry.title(post.title)
        entry.link(href=url)
        entry.published(post.published_at)
        entry.updated(post.published_at)
        entry.summary(_summary(post, 200))
        entry.content(markdown_to_html(post.body), type="CDATA")
        if post.piece.author:
            entry.author(name=post.piece.author.name)
    return fg


@bp.get("/c/<int:channel_id>/rss.xml")
@public
def feed_rss(channel_id: int):
    fg = _feed(_web_channel(channel_id))
    return Response(fg.rss_str(pretty=True), mimetype="application/rss+xml")


@bp.get("/c/<int:channel_id>/atom.xml")
@public
def feed_atom(channel_id: int):
    fg = _feed(_web_channel(channel_id))
    return Response(fg.atom_str(pretty=True), mimetype="application/atom+xml")
