"""Markdown → sanitised HTML and plain text, in one place (every page and adapter uses this)."""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul", "span",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
    "span": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Raw HTML in Markdown is disabled outright; nh3 then cleans whatever the renderer made.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}
                      ).enable("table").enable("strikethrough")


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def markdown_to_html(text: str | None) -> str:
    """Render Markdown to HTML that is safe to embed in any page or e-mail."""
    if not text:
        return ""
    return sanitize_html(_md().render(text))


_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n{3,}")


def markdown_to_text(text: str | None) -> str:
    """Plain text for robots, e-mail text parts and summaries: no markup, links kept."""
    if not text:
        return ""
    tokens = _md().parse(text)
    out: list[str] = []
    for token in tokens:
        if token.type == "inline" and token.children:
            parts: list[str] = []
            href: str | None = None
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append("\n")
                elif child.type == "link_open":
                    href = child.attrs.get("href")  # type: ignore[assignment]
                elif child.type == "link_close" and href:
                    parts.append(f" ({href})")
                    href = None
                elif child.type == "image":
                    parts.append(child.content or "")
            out.append("".join(parts))
        elif token.type in ("code_block", "fence"):
            out.append(token.content.rstrip("\n") + "\n\n")
        elif token.type in ("paragraph_close", "heading_close") and not token.hidden:
            out.append("\n\n")
        elif token.type == "list_item_open":
            out.append("• " if token.info == "" else f"{token.info}. ")
        elif token.type in ("list_item_close", "hr", "bullet_list_close", "ordered_list_close"):
            out.append("\n")
    text_out = "".join(out)
    text_out = _TAG.sub("", text_out)
    return _BLANKS.sub("\n\n", text_out).strip()


def plain_excerpt(text: str | None, limit: int = 140) -> str:
    plain = " ".join(markdown_to_text(text).split())
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"
