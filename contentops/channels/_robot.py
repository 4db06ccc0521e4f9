"""What the group-robot adapters (WeCom, DingTalk, Feishu) share: one JSON POST with
readable errors, secret-free logs, and Markdown rendered to the robots' Markdown subsets."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import requests

from ..errors import N_
from ..rendering import _md
from . import _http
from ._http import dump, never_sent, redact
from .base import (
    ChannelAdapter,
    Finding,
    InDoubt,
    OutgoingPost,
    PermanentError,
    PublishResult,
    TransientError,
    cut_bytes,
    limit_finding,
    text_bytes,
)

# Robot webhook URLs carry their credential (key=, access_token=, the Feishu hook id) and
# urllib3 logs every request line at DEBUG; blank them out before any handler sees them
# (redact lives in _http, which also blanks them in a redirect's Location).


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_filter = _RedactFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    if _filter not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_filter)

PREVIEW_PREFIX = "【预览 Preview】"


def post_json(adapter: Any, url: str, payload: dict[str, Any] | bytes, *, service: str,
              timeout: float | None = None) -> tuple[int, dict[str, Any]]:
    """POST `payload` as UTF-8 JSON; return (HTTP status, decoded reply object).

    Network trouble and 5xx/429 are transient; a reply that is not JSON is transient too
    (proxies and gateways answer HTML while the service is down). Error texts name the
    service, never the URL (it holds the robot's key).
    """
    body = payload if isinstance(payload, bytes) else dump(payload)
    timeout = float(timeout or adapter.config.get("timeout_s") or 10)
    try:
        response = _http.request(adapter.http, "POST", url, data=body, timeout=timeout,
                                 budget=_http.Budget(adapter.send_budget_s),
                                 headers={"Content-Type": "application/json; charset=utf-8",
                                          "User-Agent": "ContentOps/1"})
    except requests.Timeout as exc:
        # Also the total deadline passing while the reply trickles in (_http): the message
        # went out, so it is in doubt like any read timeout.
        error = TransientError if never_sent(exc) else InDoubt
        raise error(N_("%(service)s did not answer in time."), {"service": service},
                    detail=type(exc).__name__) from None
    except requests.ConnectionError as exc:
        error = TransientError if never_sent(exc) else InDoubt
        raise error(N_("Could not connect to %(service)s (the connection failed or "
                       "was closed)."), {"service": service},
                    detail=type(exc).__name__) from None
    except _http.ReplyTooLarge:
        # The message went out; only its answer was too large to read: in doubt, not failed
        # (a failed post invites a re-send, and robots do not dedupe).
        raise InDoubt(N_("%(service)s answered with a reply too large to read; the message "
                         "may have been sent."), {"service": service},
                      detail="reply too large") from None
    except requests.RequestException as exc:
        raise PermanentError(N_("The address of this %(service)s robot is not usable."),
                             {"service": service}, detail=type(exc).__name__) from None
    status = response.status_code
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        if status == 429 or status >= 500 or status < 300:
            raise TransientError(N_("%(service)s answered with an unexpected reply "
                                    "(HTTP %(status)s)."), {"service": service, "status": status},
                                 detail=f"HTTP {status}")
        raise PermanentError(N_("%(service)s refused the request (HTTP %(status)s); check the "
                                "webhook URL."), {"service": service, "status": status},
                             detail=f"HTTP {status}")
    return status, reply


@dataclass(frozen=True)
class ErrorRule:
    """How one service error code is treated and told to a marketer."""

    transient: bool
    message: str  # msgid; may use %(code)s and %(reason)s (the service's own errmsg)
    retry_after: float | None = None


def raise_for_code(service: str, code: int, reason: str, rules: dict[int, ErrorRule],
                   *, reason_rule: Callable[[int, str], ErrorRule | None] | None = None
                   ) -> None:
    """Raise the mapped error for a non-zero service code; unknown codes are permanent
    (a human should read them) except negative ones, which the services use for "busy"."""
    rule = (reason_rule(code, reason) if reason_rule else None) or rules.get(code)
    params = {"service": service, "code": code, "reason": reason[:300]}
    detail = f"errcode {code}: {reason[:300]}"
    if rule is None:
        if code < 0:
            raise TransientError(N_("%(service)s is busy (error %(code)s: %(reason)s); "
                                    "it will be retried."), params, detail=detail)
        raise PermanentError(N_("%(service)s refused the message (error %(code)s: "
                                "%(reason)s)."), params, detail=detail)
    if rule.transient:
        raise TransientError(rule.message, params, detail=detail, retry_after=rule.retry_after)
    raise PermanentError(rule.message, params, detail=detail)


def split_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else re.split(r"[\s,;，；]+", str(value or ""))
    return [str(i).strip() for i in items if str(i).strip()]


# --- Markdown → robot Markdown -------------------------------------------------------------

@dataclass(frozen=True)
class MarkdownDialect:
    images: bool = True     # ![alt](src) is shown; else it becomes a link
    italic: bool = True     # *em*; else plain text
    code_blocks: bool = False  # ``` fences; else the code as plain lines


WECOM_MD = MarkdownDialect(images=False, italic=False)
DINGTALK_MD = MarkdownDialect(images=True, italic=True)


def _inline(children: list[Any], dialect: MarkdownDialect) -> str:
    out: list[str] = []
    link_stack: list[tuple[int, str]] = []
    for tok in children:
        t = tok.type
        if t == "text":
            out.append(tok.content)
        elif t == "code_inline":
            out.append(f"`{tok.content}`")
        elif t in ("softbreak", "hardbreak"):
            out.append("\n")
        elif t == "strong_open" or t == "strong_close":
            out.append("**")
        elif t in ("em_open", "em_close"):
            out.append("*" if dialect.italic else "")
        elif t == "link_open":
            link_stack.append((len(out), str(tok.attrs.get("href") or "")))
        elif t == "link_close" and link_stack:
            start, href = link_stack.pop()
            label = "".join(out[start:]) or href
            del out[start:]
            out.append(f"[{label}]({href})" if href else label)
        elif t == "image":
            src = str(tok.attrs.get("src") or "")
            alt = tok.content or "image"
            out.append(f"![{alt}]({src})" if dialect.images else f"[{alt}]({src})")
    return "".join(out)


def robot_markdown_blocks(text: str, dialect: MarkdownDialect) -> list[str]:
    """Blocks (paragraphs, headings, list items, quotes, table rows) in the robot's subset."""
    blocks: list[str] = []
    stack: list[str] = []
    lists: list[list[Any]] = []  # [ordered?, next number]
    fresh_item = False  # the next paragraph is the first of a list item: it gets the bullet
    row: list[str] = []
    heading_level = 1
    last_tight = False

    def add(line: str, *, tight: bool = False) -> None:
        # List items and table rows stay on consecutive lines; other blocks are paragraphs.
        nonlocal last_tight
        if tight and last_tight and blocks:
            blocks[-1] += "\n" + line
        else:
            blocks.append(line)
        last_tight = tight

    for tok in _md().parse(text or ""):
        t = tok.type
        if tok.nesting == 1:
            stack.append(t)
        elif tok.nesting == -1 and stack:
            stack.pop()
        if t == "heading_open":
            heading_level = int(tok.tag[1])
        elif t == "bullet_list_open":
            lists.append([False, 0])
        elif t == "ordered_list_open":
            lists.append([True, int(tok.attrs.get("start") or 1)])
        elif t in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                last_tight = False
        elif t == "table_close":
            last_tight = False
        elif t == "list_item_open":
            fresh_item = True
        elif t == "tr_open":
            row = []
        elif t == "tr_close":
            add(" | ".join(row), tight=True)
        elif t == "inline":
            content = _inline(tok.children or [], dialect)
            parent = stack[-1] if stack else ""
            if parent in ("th_open", "td_open"):
                row.append(content)
                continue
            prefix = ""
            if parent == "heading_open":
                prefix = "#" * heading_level + " "
            elif lists and fresh_item:
                ordered, number = lists[-1]
                indent = "  " * (len(lists) - 1)
                prefix = f"{indent}{number}. " if ordered else f"{indent}- "
                if ordered:
                    lists[-1][1] += 1
            in_item = bool(lists) and (fresh_item or "list_item_open" in stack)
            fresh_item = False
            line = prefix + content
            depth = stack.count("blockquote_open")
            if depth:
                line = "\n".join("> " * depth + part for part in line.split("\n"))
            add(line, tight=in_item)
        elif t in ("fence", "code_block"):
            code = tok.content.rstrip("\n")
            add(f"```\n{code}\n```" if dialect.code_blocks else code)
        elif t == "hr":
            add("---" if dialect.images else "————")
    return [b for b in blocks if b.strip()]


def join_fitting(blocks: list[str], limit: int, more: str = "", sep: str = "\n\n",
                 tail: str = "") -> str:
    """Join blocks within `limit` UTF-8 bytes, `tail` (mentions) always last. When the blocks
    do not all fit, keep the whole blocks that do and add `more` (a link to the full text)."""
    end = f"{sep}{tail}" if tail else ""
    whole = sep.join(blocks) + end
    if text_bytes(whole) <= limit:
        return whole
    room = limit - text_bytes(end) - (text_bytes(sep + more) if more else 0)
    kept: list[str] = []
    for block in blocks:
        candidate = sep.join([*kept, block])
        if text_bytes(candidate) > room:
            if not kept:  # a single huge block: cut it at a character boundary
                kept.append(cut_bytes(block, room - text_bytes("…")) + "…")
            break
        kept.append(block)
    return sep.join(kept) + (sep + more if more else "") + end


# --- The shared adapter shape --------------------------------------------------------------

MORE_LABEL = "阅读全文"


class RobotAdapter(ChannelAdapter):
    """A group robot: one JSON POST per post, no message id back, no metrics, not idempotent
    (a crash mid-send cannot be reconciled, so a person decides; DESIGN.md invariant 2)."""

    service: ClassVar[str] = ""
    errors: ClassVar[dict[int, ErrorRule]] = {}

    def endpoint(self, body: bytes) -> tuple[str, bytes]:
        """The URL to POST to and the final body (signing may change either)."""
        return str(self.setting("webhook_url")), body

    def reply_code(self, reply: dict[str, Any]) -> tuple[int, str]:
        code = reply.get("errcode", reply.get("code", 0))
        try:
            code = int(code)
        except (TypeError, ValueError):
            code = -1
        return code, str(reply.get("errmsg") or reply.get("msg") or "")

    def reason_rule(self, code: int, reason: str) -> ErrorRule | None:
        return None

    def payload(self, post: OutgoingPost) -> dict[str, Any]:
        return self.render(post)

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        url, body = self.endpoint(dump(payload))
        status, reply = post_json(self, url, body, service=self.service)
        code, reason = self.reply_code(reply)
        if code != 0:
            raise_for_code(self.service, code, reason, self.errors,
                           reason_rule=self.reason_rule)
        if status >= 400:
            raise_for_status(self.service, status)
        return reply

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        self.check(post)
        self.send(self.payload(post))
        # Robots return no message id; the group has no address of its own to link to.
        return PublishResult(external_id=None, url=None)

    def send_preview(self, post: OutgoingPost, to: str | None = None) -> PublishResult:
        post = replace(post, preview=True)
        self.check(post)
        self.send(self.payload(post))
        return PublishResult()

    def test_connection(self) -> str:
        self.send(self.test_payload())
        return N_("Connected: %(service)s accepted a short test message in the group.")

    def test_payload(self) -> dict[str, Any]:
        raise NotImplementedError


def raise_for_status(service: str, status: int) -> None:
    params = {"service": service, "status": status}
    if status == 429 or status >= 500:
        raise TransientError(N_("%(service)s is busy or failing (HTTP %(status)s)."), params,
                             detail=f"HTTP {status}")
    raise PermanentError(N_("%(service)s refused the request (HTTP %(status)s); check the "
                            "webhook URL."), params, detail=f"HTTP {status}")


def title_of(post: OutgoingPost) -> str:
    return (PREVIEW_PREFIX if post.preview else "") + post.title.strip()


def more_line(post: OutgoingPost, markdown: bool) -> str:
    if not post.public_url:
        return ""
    return f"[{MORE_LABEL}]({post.public_url})" if markdown else f"{MORE_LABEL}：{post.public_url}"


def fit_finding(post: OutgoingPost, size: int, limit: int, code: str,
                unit: str = "bytes") -> Finding | None:
    """Too long: a warning when the text can be shortened with a link to the full text on the
    web channel, else an error (it would be refused)."""
    if size <= limit:
        return None
    if post.public_url:
        return Finding(f"{code}_shortened", "warning",
                       N_("The text is longer than this channel allows (%(size)s of %(limit)s "
                          "bytes); it will be shortened with a link to the full text."),
                       {"size": size, "limit": limit}, field="body")
    return limit_finding(code, "body", size, limit, unit)


def render_within(render: Callable[[int], dict[str, Any]], limit: int) -> dict[str, Any]:
    """Render with a text budget, shrinking it until the JSON body fits `limit` bytes (JSON
    escapes make the body larger than the text, so one pass is not enough)."""
    budget = limit
    payload = render(budget)
    for _ in range(8):
        size = len(dump(payload))
        if size <= limit:
            break
        budget -= size - limit + 64
        payload = render(max(budget, 64))
    return payload
