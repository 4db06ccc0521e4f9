"""Events WeChat pushes to a 公众号's server URL (服务器配置), here: MASSSENDJOBFINISH, sent when a
mass send finished. It settles the posts of that send at once, with each article's URL — the
`/message/mass/get` polling of handoff.py stays as the fallback (an account without a server
URL, a lost event).

Rules (developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html, 接入概述;
群发接口 Batch_Sends "事件推送群发结果"):
- every request carries `signature`, `timestamp`, `nonce` in the query string, where
  signature = sha1 of the three strings token, timestamp, nonce sorted and joined;
- the first GET (接入验证) also carries `echostr`, answered as is when the signature holds;
- events are XML; the reply "success" (or an empty body) stops WeChat's retries (it tries three
  times within about 15 s), so settling must be idempotent — it is: only posts still handed
  off (publishing / awaiting_staff) change state, a URL is filled once.
Only 明文模式 (plain-text mode) is read; in 安全模式 the body is encrypted (Encrypt) and is
refused with a readable error (兼容模式 carries the plain fields too).

No Flask here: the API view passes the raw query values and body.
"""

from __future__ import annotations

import hashlib
import hmac
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...channels.wechat_mp import article_url
from ...errors import N_, BadRequest, DomainError, NotFound
from ...models import Channel, Post, PublishAttempt
from ...reasons import encode_reason
from . import notices
from .handoff import HANDOFF_STATES

try:  # hardened parser when installed (pyproject lists it)
    from defusedxml.ElementTree import fromstring as _safe_fromstring
except ImportError:  # pragma: no cover - the stdlib below, with DTDs refused outright
    _safe_fromstring = None

MAX_BODY = 64 * 1024  # an event is a few hundred bytes
ARTICLE_HOST = "https://mp.weixin.qq.com/"
NODE = "wechat-event"

# MASSSENDJOBFINISH Status "err(num)": the reason numbers listed on the 群发接口 page (as
# remembered from developers.weixin.qq.com Batch_Sends, 事件推送群发结果 — uncertain where the
# page has since changed; an unknown number is shown as is).
MASS_ERRORS: dict[str, str] = {
    "10001": N_("suspected advertising (涉嫌广告)"),
    "20001": N_("suspected political content (涉嫌政治)"),
    "20002": N_("suspected pornography (涉嫌色情)"),
    "20004": N_("suspected social issues (涉嫌社会)"),
    "20006": N_("suspected crime (涉嫌违法犯罪)"),
    "20008": N_("suspected fraud (涉嫌欺诈)"),
    "20013": N_("suspected copyright infringement (涉嫌版权)"),
    "21000": N_("suspected other reasons (涉嫌其他)"),
    "22000": N_("suspected mutual promotion (涉嫌互推)"),
    "30001": N_("the originality check failed and reprints were not to be sent"),
    "30002": N_("the originality check refused the mass send"),
    "30003": N_("judged a reprint, and reprints were not to be sent"),
    "40001": N_("an administrator refused it (群发保护)"),
    "40002": N_("no administrator confirmed it within 30 minutes (群发保护)"),
}


class BadSignature(DomainError):
    code = "bad_signature"
    status = 401


def signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's request signature: sha1 of token, timestamp and nonce sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


# WeChat's signature covers token, timestamp and nonce, not the body: a captured query string
# (proxy and access logs keep them) would otherwise sign any event forever. Only requests
# whose timestamp is this close to now are taken (WeChat sends the current time).
MAX_SKEW_S = 300


def verify(token: str | None, sig: str | None, timestamp: str | None, nonce: str | None,
           *, now: datetime) -> None:
    """Raise BadSignature unless the query's signature is WeChat's for this token and its
    timestamp is within MAX_SKEW_S of now."""
    if not token:
        raise BadSignature(N_("This channel has no server token (服务器配置 Token) set, so "
                              "WeChat's events cannot be verified. Set it in the channel "
                              "settings, the same as on 微信公众平台 → 设置与开发 → 基本配置."))
    if not (sig and timestamp and nonce) or not hmac.compare_digest(
            signature(token, timestamp, nonce), sig.lower()):
        raise BadSignature(N_("The request is not signed with this channel's server token."))
    try:
        sent = int(timestamp)
    except ValueError:
        sent = None
    if sent is None or abs(now.timestamp() - sent) > MAX_SKEW_S:
        raise BadSignature(N_("The request's timestamp is not current; WeChat signs each "
                              "request anew (check this server's clock)."))


def signed_channel(session: Session, channel_id: int, query: Mapping[str, Any], *,
                   secret_key: str, now: datetime) -> Channel:
    """The 公众号 channel whose server URL was called, once the query's signature holds for
    its server token (NotFound for another kind of channel or none)."""
    from ..channels import full_config

    channel = session.get(Channel, channel_id)
    if channel is None or channel.kind != "wechat_mp":
        raise NotFound(N_("No such object."))
    verify(full_config(channel, secret_key).get("server_token"), query.get("signature"),
           query.get("timestamp"), query.get("nonce"), now=now)
    return channel


def parse(body: bytes) -> dict[str, Any]:
    """The event's fields: top-level tags as text, ArticleUrlResult as a list of
    {ArticleIdx, ArticleUrl}. No DTD or entity is accepted (XML bombs, external entities)."""
    if len(body) > MAX_BODY:
        raise BadRequest(N_("The event is too large."))
    head = body[:2048].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        raise BadRequest(N_("The event is not valid XML."))
    try:
        root = (_safe_fromstring(body, forbid_dtd=True) if _safe_fromstring is not None
                else ElementTree.fromstring(body))
    except Exception:  # noqa: BLE001 - ParseError, defusedxml's refusals: all bad input
        raise BadRequest(N_("The event is not valid XML.")) from None
    if root.tag != "xml":
        raise BadRequest(N_("The event is not valid XML."))
    event: dict[str, Any] = {child.tag: (child.text or "").strip() for child in root
                             if len(child) == 0}
    urls = root.find("ArticleUrlResult/ResultList")
    event["articles"] = [{"ArticleIdx": (item.findtext("ArticleIdx") or "").strip(),
                          "ArticleUrl": (item.findtext("ArticleUrl") or "").strip()}
                         for item in (urls if urls is not None else [])]
    if "Encrypt" in event and "Event" not in event:
        raise BadRequest(N_("The event is encrypted (安全模式). Set 消息加解密方式 to 明文模式 "
                            "or 兼容模式 on 微信公众平台 → 设置与开发 → 基本配置."))
    return event


@dataclass
class Settled:
    published: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)  # already settled: URL or counts added


def _count(event: dict[str, Any], name: str) -> int:
    try:
        return int(event.get(name) or 0)
    except ValueError:
        return 0


def _failure(status: str) -> str:
    if status.startswith("err(") and status.endswith(")"):
        code = status[4:-1]
        return encode_reason(N_("WeChat did not send the mass message: %(why)s (%(status)s)."),
                             {"why": ({"msg": MASS_ERRORS[code]} if code in MASS_ERRORS
                                      else status), "status": status},
                             f"MASSSENDJOBFINISH {status}")
    return encode_reason(N_("WeChat did not send the mass message (%(status)s)."),
                         {"status": status or "?"}, f"MASSSENDJOBFINISH {status}")


def settle_mass_send(session: Session, channel: Channel, event: dict[str, Any], *,
                     now: datetime) -> Settled:
    """Settle the posts of the channel's mass send named by the event's MsgID. The caller
    commits. Events of other kinds are ignored (the account may push many)."""
    done = Settled()
    if event.get("MsgType") != "event" or event.get("Event") != "MASSSENDJOBFINISH":
        return done
    msg_id = event.get("MsgID") or event.get("MsgId") or ""
    if not msg_id.isdigit():
        raise BadRequest(N_("The event has no mass-send id (MsgID)."))
    status = event.get("Status") or ""
    counts = {"total": _count(event, "TotalCount"), "filter": _count(event, "FilterCount"),
              "sent": _count(event, "SentCount"), "errors": _count(event, "ErrorCount"),
              "event_status": status}
    posts = list(session.scalars(select(Post).where(
        Post.channel_id == channel.id, Post.external_id == f"msg:{msg_id}")
        .order_by(Post.id)))
    t0 = _time.perf_counter()
    for post in posts:
        progress = {**(post.progress or {}), **counts}
        url = article_url(event["articles"], progress.get("idx"), "ArticleIdx", "ArticleUrl")
        if url and not url.startswith(ARTICLE_HOST):
            url = None  # an article's address is WeChat's; anything else is not taken
        fence = (Post.id == post.id, Post.status.in_(HANDOFF_STATES))
        if status == "send success":
            values: dict[str, Any] = {
                "status": "published", "published_at": now, "check_at": None,
                "next_attempt_at": None, "last_error": None, "progress": progress,
                "reached": counts["sent"], "updated_at": now}
            if url:
                values["external_url"] = url
            changed = session.execute(update(Post).where(*fence).values(**values)
                                      .execution_options(synchronize_session=False)).rowcount
            outcome = "published"
            error = None
        else:
            error = _failure(status)
            changed = session.execute(update(Post).where(*fence).values(
                status="failed", last_error=error, check_at=None, next_attempt_at=None,
                progress=progress, updated_at=now)
                .execution_options(synchronize_session=False)).rowcount
            outcome = "permanent"
        if changed == 1:
            session.add(PublishAttempt(post_id=post.id, started_at=now, outcome=outcome,
                                       error=error, node=NODE,
                                       duration_ms=int((_time.perf_counter() - t0) * 1000)))
            (done.published if outcome == "published" else done.failed).append(post.id)
        elif post.status == "published" and status == "send success":
            # Settled by the mass/get poll first: add what only the event knows.
            session.execute(update(Post).where(Post.id == post.id).values(
                external_url=post.external_url or url, progress=progress,
                reached=counts["sent"]).execution_options(synchronize_session=False))
            done.updated.append(post.id)
    if done.failed:
        notices.notify_problem(session, done.failed, "failed")
    return done
