"""Markdown → sanitised HTML and plain text, in one place (every page and adapter uses this).

Two layers keep user text from ever becoming markup or script:
1. markdown-it renders with raw HTML disabled, so `<script>` in a body is text, and its own
   link validator drops `javascript:`/`vbscript:`/`file:`/`data:` links;
2. nh3 (ammonia) then cleans whatever the renderer made against a small allow-list of tags,
   attributes, attribute *values* and URL schemes — so a renderer bug or a future plugin
   cannot smuggle in an event handler, a style, a frame or a page-wide CSS class.
Titles, summaries, tags and names are never Markdown: templates escape them as text.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

# Rendering cost grows with input; services cap bodies well below this, and anything longer
# that reaches here (an old row, another caller) is cut rather than allowed to stall a page.
MAX_MARKDOWN_CHARS = 200_000

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul", "span",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"style"},
    "td": {"style"},
    "code": {"class"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Added to every image: no Referer leaks the app's address to an image host, and images
# below the fold do not load until needed.
SET_ATTRIBUTES = {"img": {"loading": "lazy", "referrerpolicy": "no-referrer"}}

# Attribute values are checked too: a free `class` would let a body borrow the page's own
# CSS (e.g. Bootstrap's position-fixed) to paint a fake login box over the app.
_CODE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_ALIGN = re.compile(r"text-align:\s*(left|right|center)\s*;?")
_DIGITS = re.compile(r"\d{1,5}")
# C0 controls (except tab, newline, carriage return), DEL, and the bidi overrides that can make
# a link's visible text read differently from its target.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "code" and attr == "class":
        match = _CODE_CLASS.fullmatch(value.strip())
        return match.group(0) if match else None
    if attr == "style":
        match = _ALIGN.fullmatch(value.strip())
        return f"text-align:{match.group(1)}" if match else None
    if tag == "img" and attr in ("width", "height"):
        return value if _DIGITS.fullmatch(value.strip()) else None
    if tag == "ol" and attr == "start":
        return value if _DIGITS.fullmatch(value.strip()) else None
    return value


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Raw HTML in Markdown is disabled outright; nh3 then cleans whatever the renderer made.
    # The commonmark preset also bounds nesting depth (maxNesting), so "[[[[…" cannot recurse.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}
                      ).enable("table").enable("strikethrough")


def clean_source(text: str | None) -> str:
    """Markdown as stored: control characters removed, length bounded."""
    if not text:
        return ""
    return _CONTROL.sub("", text[:MAX_MARKDOWN_CHARS])


def sanitize_html(html: str) -> str:
    """Clean any HTML fragment down to the allow-list. Safe to call on untrusted input."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        set_tag_attribute_values=SET_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
        strip_comments=True,
    )


def markdown_to_html(text: str | None) -> str:
    """Render Markdown to HTML that is safe to embed in any page or e-mail."""
    if not text:
        return ""
    text = clean_source(text)
    if len(text) <= 20_000:
        return _cached_html(text)
    return sanitize_html(_md().render(text))


@lru_cache(maxsize=1024)
def _cached_html(text: str) -> str:
    # Lists, previews and feeds show the same bodies again and again; render each once.
    return sanitize_html(_md().render(text))


_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"\n{3,}")


def markdown_to_text(text: str | None) -> str:
    """Plain text for robots, e-mail text parts and summaries: no markup, links kept.

    The result is text, not HTML: whoever embeds it in a page must escape it.
    """
    if not text:
        return ""
    tokens = _md().parse(clean_source(text))
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
