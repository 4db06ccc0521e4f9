"""`wechat_mp` (微信公众号, WeChat Official Account): articles through 草稿箱 + 发布 (freepublish)
or 群发 (mass send to all followers or one tag).

Docs (developers.weixin.qq.com/doc/offiaccount/…): 获取稳定版接口调用凭据 stable_token
(Basic_Information/getStableAccessToken), 新建草稿 draft/add (Draft_Box/Add_draft), 发布能力
freepublish/submit + freepublish/get (Publish/Publish), 群发 message/mass/sendall, mass/get,
mass/preview (Message_Management/Batch_Sends_and_Originality_Checks), 上传图文消息内的图片
media/uploadimg and 新增永久素材 material/add_material (Asset_Management/Adding_Permanent_Assets),
全局返回码 (Getting_Started/Global_Return_Code).

Token: one stable_token per AppID, shared by every process through the token store (a fetch
with force_refresh=false returns the same token while valid, so two nodes do not invalidate each
other; the store still refreshes one at a time). 40001/40014/42001 mean "this token is no good":
it is replaced once and the call repeated.

Statistics: not every 30 minutes (capabilities.metrics is False) but once a day for yesterday
(capabilities.daily_stats, `fetch_daily_stats` in _wechat_mp_stats.py): getarticletotaldetail,
getbizsummary and comment/list. 45011 (per-minute API limit) and 45009 (daily limit) are
transient: the caller tries again later.

Crash safety of 群发: sendall carries `clientmsgid`, derived from the post's idempotency key;
the service refuses a second send with the same id (45065) within 24 hours and names the first
msg_id — so a re-send after a crash is the proof, and the channel is declared idempotent.
Publish mode: draft/add and freepublish/submit have no idempotency key, so a crash between
submit and its reply can publish twice; find_existing is not offered there (a person decides).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import nh3
import requests

from ..errors import N_
from ..rendering import markdown_to_html, plain_excerpt
from . import _http
from ._robot import ErrorRule, raise_for_code
from ._wechat_mp_stats import DailyStatsMixin
from ._wecom_api import fingerprint
from .base import (
    Capabilities,
    ChannelAdapter,
    ConfigField,
    Finding,
    OutgoingPost,
    PermanentError,
    PublishResult,
    QuotaExhausted,
    TransientError,
    limit_finding,
    text_bytes,
)

API_BASE = "https://api.weixin.qq.com"
SERVICE = "WeChat"
TITLE_CHARS = 32      # draft/add: title "不超过32个字" (Draft_Box/Add_draft)
AUTHOR_CHARS = 16     # author "不超过16个字"
DIGEST_CHARS = 128    # digest "不超过128个字"
CONTENT_CHARS = 20000  # content "必须少于2万字符，且小于1M"
CONTENT_BYTES = 1024 * 1024
# The largest image fetched for an article: 永久素材 images may be up to 10 MB (add_material,
# "图片（image）: 10M"); uploadimg takes 1 MB and the thumb 64 KB, but WeChat itself says so
# with its own error code, which names the rule better than a cut here would.
IMAGE_BYTES = 10 * 1024 * 1024
PUBLISH_POLL_S = 60.0
MASS_POLL_S = 60.0
PROTECTION_DEADLINE_S = 1800.0  # 群发保护: an admin must confirm within 30 minutes
# 多图文: one draft (and so one freepublish or one mass send) holds at most 8 articles, the
# first being the 头条 (公众平台 editor; draft/add takes an array "articles").
ARTICLES_MAX = 8
TOKEN_INVALID = (40001, 40014, 42001)

# freepublish/get publish_status (Publish/Get_status).
PUBLISH_FAILURES = {
    2: N_("WeChat did not publish the article: the originality check failed (publish_status "
          "2 原创失败)."),
    3: N_("WeChat did not publish the article (publish_status 3 常规失败)."),
    4: N_("WeChat's review refused the article (publish_status 4 平台审核不通过)."),
    5: N_("The article was published, then all its articles were deleted by the account "
          "(publish_status 5)."),
    6: N_("The article was published, then WeChat blocked all its articles (publish_status "
          "6 系统封禁)."),
}

ERRORS: dict[int, ErrorRule] = {
    -1: ErrorRule(True, N_("WeChat is busy right now; it will be tried again shortly.")),
    40013: ErrorRule(False, N_("WeChat does not know this AppID (40013 invalid appid): copy it "
                               "from 微信公众平台 → 设置与开发 → 基本配置.")),
    40125: ErrorRule(False, N_("WeChat refused the AppSecret (40125 invalid appsecret): reset "
                               "or copy it in 微信公众平台 → 设置与开发 → 基本配置 and enter it "
                               "again.")),
    40164: ErrorRule(False, N_("WeChat refused the call from this server's IP address (40164: "
                               "%(reason)s). Add the server's public IP to the IP allow list "
                               "(IP白名单) in 微信公众平台 → 设置与开发 → 基本配置.")),
    41001: ErrorRule(False, N_("The request to WeChat had no access token (41001).")),
    44003: ErrorRule(False, N_("WeChat refused an empty article (44003 empty news data).")),
    45009: ErrorRule(True, N_("WeChat says the daily API call limit is reached (45009); it "
                              "will be tried again later."), retry_after=600),
    # "api minute-quota reach limit, must slower, retry next minute" (全局返回码).
    45011: ErrorRule(True, N_("WeChat says too many calls were made this minute (45011); it "
                              "will be tried again shortly."), retry_after=60),
    45166: ErrorRule(False, N_("WeChat refused the article's content (45166 invalid content: "
                               "%(reason)s).")),
    87014: ErrorRule(False, N_("WeChat refused the article as risky content (87014). Change "
                               "the text before sending it again.")),
    48001: ErrorRule(False, N_("WeChat does not let this account use this API (48001 api "
                               "unauthorized). Since July 2025 发布 (freepublish) is only for "
                               "verified accounts (微信认证): verify the account, or switch the "
                               "channel to mass-send mode.")),
    45065: ErrorRule(False, N_("WeChat already has a mass send with this id (45065).")),
    40007: ErrorRule(False, N_("WeChat refused an uploaded image (40007 invalid media_id).")),
    45028: ErrorRule(False, N_("The account has no mass-send quota left (45028).")),
    40132: ErrorRule(False, N_("WeChat does not accept this WeChat id (40132 invalid wxname). "
                               "Enter the 微信号 shown in the person's WeChat profile (6–20 "
                               "letters, digits, - or _, starting with a letter).")),
    43004: ErrorRule(False, N_("This WeChat id does not follow the account (43004 require "
                               "subscribe): it must follow the 公众号 to receive a preview.")),
    40003: ErrorRule(False, N_("WeChat does not know this follower (40003 invalid openid).")),
}


class WeChatAPI:
    """Calls for one AppID + secret; `tokens` is a TokenStore."""

    def __init__(self, *, app_id: str, secret: str, api_base: str | None, tokens: Any,
                 http: Any = None, timeout: float = 10.0,
                 budget: _http.Budget | None = None) -> None:
        self.app_id = app_id
        self.secret = secret
        self.api_base = (api_base or API_BASE).rstrip("/")
        self.tokens = tokens
        self.http = http or requests
        self.timeout = timeout
        # Shared by every call (and image download) of one publish: see _http.
        self.budget = budget
        self.key = f"wechat_mp:{app_id}:{fingerprint(secret)}"

    def _fetch_token(self, force: bool = False) -> tuple[str, int]:
        body: dict[str, Any] = {"grant_type": "client_credential", "appid": self.app_id,
                                "secret": self.secret}
        if force:
            # stable_token hands back the same token while it is valid in WeChat's eyes;
            # a token WeChat just refused (40001: revoked, or replaced by a fetch elsewhere)
            # is only replaced with force_refresh (获取稳定版接口调用凭据, "强制刷新模式").
            # That mode is limited (uncertain: 20 times a day, 30 s apart per the doc page),
            # so it is used only for a refused token, never for a routine renewal.
            body["force_refresh"] = True
        reply = self._request("POST", "/cgi-bin/stable_token", params={}, body=body)
        code, reason = _code(reply)
        if code != 0:
            raise_for_code(SERVICE, code, reason, ERRORS)
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(N_("WeChat answered without an access token; it will be "
                                    "tried again."), detail="stable_token: no access_token")
        return token, int(reply.get("expires_in") or 7200)

    def token(self, invalid: str | None = None, *, force: bool = True) -> str:
        """The shared token; `invalid` is one WeChat refused. Only a revoked or replaced token
        (40001, 40014) needs force_refresh, which WeChat limits; an expired one (42001) is
        replaced by a plain fetch."""
        if invalid is None:
            return self.tokens.get(self.key, self._fetch_token)
        return self.tokens.get(self.key, lambda: self._fetch_token(force=force),
                               invalid=invalid)

    def call(self, path: str, *, body: Mapping[str, Any] | None = None,
             params: Mapping[str, Any] | None = None,
             files: Mapping[str, Any] | None = None,
             accept: tuple[int, ...] = (), once: bool = False) -> dict[str, Any]:
        """One POST with the current token; a refused token is replaced once (in every process
        sharing the store) and the call repeated. Codes in `accept` are returned, not raised.
        `once`: the call has no idempotency key (freepublish/submit), so a request that may
        have reached WeChat without an answer is InDoubt, never simply retried."""
        token = self.token()
        for attempt in (1, 2):
            reply = self._request("POST", path, params={**(params or {}),
                                                         "access_token": token},
                                  body=body, files=files, once=once)
            code, reason = _code(reply)
            if code in TOKEN_INVALID and attempt == 1:
                token = self.token(invalid=token, force=code != 42001)
                continue
            if code in TOKEN_INVALID:
                raise TransientError(N_("WeChat refused a fresh access token (error %(code)s); "
                                        "it will be tried again."), {"code": code},
                                     detail=f"errcode {code}: {reason[:200]}")
            if code == 45028:
                raise QuotaExhausted(ERRORS[45028].message, detail=f"errcode 45028: {reason}")
            if code != 0 and code not in accept:
                raise_for_code(SERVICE, code, reason, ERRORS)
            return reply
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, *, params: Mapping[str, Any],
                 body: Mapping[str, Any] | None = None,
                 files: Mapping[str, Any] | None = None, once: bool = False
                 ) -> dict[str, Any]:
        return _http.service_json(
            self.http, method, self.api_base + path, service=SERVICE, path=path,
            timeout=self.timeout, budget=self.budget, once=once, params=params, body=body,
            files=files,
            bad_address=N_("The WeChat API address in the channel settings is not usable."))


def _code(reply: Mapping[str, Any]) -> tuple[int, str]:
    try:
        code = int(reply.get("errcode", 0))
    except (TypeError, ValueError):
        code = -1
    return code, str(reply.get("errmsg") or "")


# Inline styles for the article body: 公众号 strips <style> and classes, keeps style="".
_STYLES = {
    "p": "margin:0 0 1em;line-height:1.75;font-size:16px;",
    "h1": "font-size:22px;font-weight:bold;margin:1em 0 .5em;",
    "h2": "font-size:20px;font-weight:bold;margin:1em 0 .5em;",
    "h3": "font-size:18px;font-weight:bold;margin:1em 0 .5em;",
    "blockquote": "margin:0 0 1em;padding:.5em 1em;border-left:3px solid #07c160;color:#555;",
    "ul": "margin:0 0 1em;padding-left:1.5em;",
    "ol": "margin:0 0 1em;padding-left:1.5em;",
    "li": "margin:.25em 0;line-height:1.75;",
    "img": "max-width:100%;height:auto;",
    "a": "color:#576b95;",
    "code": "font-family:Menlo,monospace;background:#f6f6f6;padding:0 .2em;",
    "pre": "background:#f6f6f6;padding:.75em;overflow-x:auto;font-size:14px;",
}
_TAGS = set(_STYLES) | {"strong", "em", "br", "hr", "table", "thead", "tbody", "tr", "th", "td",
                        "span", "section"}
_IMG_SRC = re.compile(r'<img\b[^>]*?\bsrc="([^"]+)"')


def article_html(markdown: str) -> str:
    """Markdown → 公众号 article HTML: only inline styles, no scripts, nothing but the tags
    the editor keeps (sanitised with nh3)."""
    html = markdown_to_html(markdown)

    def style(tag: str, name: str, value: str) -> str | None:
        if name == "style":
            return None  # our own styles only
        return value

    clean = nh3.clean(html, tags=_TAGS, attributes={"a": {"href"}, "img": {"src", "alt"}},
                      attribute_filter=style, url_schemes={"http", "https"},
                      link_rel=None)
    for tag, css in _STYLES.items():
        clean = re.sub(rf"<{tag}(?=[\s>/])", f'<{tag} style="{css}"', clean)
    return clean


class WeChatMPAdapter(DailyStatsMixin, ChannelAdapter):
    kind = "wechat_mp"
    label = N_("WeChat Official Account (公众号)")
    preview_address = "wxname"
    config_fields = (
        ConfigField("app_id", N_("AppID"), "text", required=True,
                    help=N_("微信公众平台 → 设置与开发 → 基本配置 (开发者ID).")),
        ConfigField("app_secret", N_("AppSecret"), "text", required=True, secret=True,
                    help=N_("Same page; reset it there if nobody has it. Add this server's "
                            "IP to the IP allow list (IP白名单) on that page too.")),
        ConfigField("account_type", N_("Account type"), "choice", default="subscription",
                    choices=("subscription", "service"),
                    help=N_("subscription: 订阅号 (one mass send a day); service: 服务号 (four "
                            "a month).")),
        ConfigField("mode", N_("How articles go out"), "choice", default="publish",
                    choices=("publish", "mass_send"),
                    help=N_("publish: 发布 (not pushed to followers; verified accounts only "
                            "since July 2025); mass_send: 群发 to all followers or one tag.")),
        ConfigField("api_base", N_("API address"), "url",
                    help=N_("Leave empty for WeChat itself (https://api.weixin.qq.com).")),
        ConfigField("default_thumb", N_("Default cover image URL"), "url",
                    help=N_("Used when the text has no image; an article needs a cover.")),
        ConfigField("tag_id", N_("Follower tag id"), "int", min_value=0,
                    help=N_("Mass send only: send to followers with this tag; empty = all.")),
        ConfigField("author", N_("Author shown on articles"), "text",
                    help=N_("At most 16 characters; empty = none.")),
        ConfigField("need_open_comment", N_("Open comments"), "bool", default=False),
        ConfigField("server_token", N_("Server token (服务器配置 Token)"), "text", secret=True,
                    help=N_("Optional. The Token entered under 服务器配置 on 微信公众平台 → 设置与"
                            "开发 → 基本配置, with this channel's event URL as the server URL "
                            "(shown on the channel page): mass sends are then settled as soon "
                            "as WeChat reports them.")),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=60),
    )
    capabilities = Capabilities(
        idempotent=True, tracks=True, daily_stats=True, group_max=ARTICLES_MAX,
        # 群发: "60 calls a minute" for sendall (Batch_Sends_and_Originality_Checks).
        per_minute=60,
        limits={"title_chars": TITLE_CHARS, "summary_chars": DIGEST_CHARS,
                "body_chars": CONTENT_CHARS, "body_bytes": CONTENT_BYTES})

    def __init__(self, config: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.mode != "mass_send":
            # freepublish has no idempotency key: a re-send could publish twice.
            self.capabilities = Capabilities(
                tracks=True, daily_stats=True, group_max=ARTICLES_MAX,
                limits=type(self).capabilities.limits)

    @property
    def mode(self) -> str:
        return self.config.get("mode") or "publish"

    def api(self, *, budgeted: bool = False) -> WeChatAPI:
        """The API client; `budgeted` for a publish: all its calls and image downloads share
        one time budget (send_budget_s), so the whole send ends well within the lease."""
        return WeChatAPI(app_id=str(self.setting("app_id")),
                         secret=str(self.setting("app_secret")),
                         api_base=self.config.get("api_base"), tokens=self.tokens,
                         http=self.http, timeout=float(self.config.get("timeout_s") or 10),
                         budget=_http.Budget(self.send_budget_s) if budgeted else None)

    # --- rendering and limits ----------------------------------------------------------------

    def _digest(self, post: OutgoingPost) -> str:
        return post.summary.strip() or plain_excerpt(post.body_markdown, DIGEST_CHARS - 1)

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        """The draft article before images are uploaded (thumb_media_id is filled then)."""
        title = post.title.strip()
        if post.preview:
            title = ("【预览】" + title)[:TITLE_CHARS]
        article: dict[str, Any] = {
            "title": title, "author": str(self.config.get("author") or "")[:AUTHOR_CHARS],
            "digest": self._digest(post), "content": article_html(post.body_markdown),
            "content_source_url": post.public_url or "",
            "need_open_comment": 1 if self.config.get("need_open_comment") else 0,
            "only_fans_can_comment": 0}
        return article

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        title = post.title.strip()
        if len(title) > TITLE_CHARS:
            findings.append(limit_finding("title_too_long", "title", len(title), TITLE_CHARS,
                                          "chars"))
        if post.summary and len(post.summary.strip()) > DIGEST_CHARS:
            findings.append(limit_finding("summary_too_long", "summary",
                                          len(post.summary.strip()), DIGEST_CHARS, "chars"))
        content = article_html(post.body_markdown)
        if len(content) >= CONTENT_CHARS:
            findings.append(limit_finding("body_too_long", "body", len(content),
                                          CONTENT_CHARS - 1, "chars"))
        elif text_bytes(content) >= CONTENT_BYTES:
            findings.append(limit_finding("body_too_large", "body", text_bytes(content),
                                          CONTENT_BYTES - 1, "bytes"))
        if not post.body_markdown.strip():
            findings.append(Finding("body_missing", "error",
                                    N_("The article has no text; WeChat refuses empty "
                                       "articles."), field="body"))
        if not _IMG_SRC.search(article_html(post.body_markdown)) and \
                not self.config.get("default_thumb"):
            findings.append(Finding("cover_missing", "error",
                                    N_("A 公众号 article needs a cover image: put an image in "
                                       "the text or set a default cover in the channel "
                                       "settings."), field="body"))
        return findings

    # --- images ------------------------------------------------------------------------------

    def _download(self, url: str, budget: _http.Budget | None = None) -> tuple[bytes, str]:
        """An image of the article. Redirects are followed (image hosts and CDNs use them);
        the download is bounded in time (channel timeout, publish budget) and size."""
        data = _http.download_image(
            self.http, url, timeout=float(self.config.get("timeout_s") or 10), budget=budget,
            max_bytes=IMAGE_BYTES, too_large=PermanentError(
                N_("The image %(url)s is larger than the %(size)s MB WeChat accepts."),
                {"url": url[:200], "size": IMAGE_BYTES // (1024 * 1024)},
                detail="image too large"))
        name = "image.png" if data.startswith(b"\x89PNG") else "image.jpg"
        return data, name

    def _prepare(self, api: WeChatAPI, post: OutgoingPost) -> dict[str, Any]:
        """Upload the images (uploadimg) and the cover (add_material type=thumb) and return
        the article ready for draft/add."""
        article = self.render(post)
        sources = list(dict.fromkeys(_IMG_SRC.findall(article["content"])))
        mapping: dict[str, str] = {}
        for src in sources:
            data, name = self._download(_absolute(src, post.base_url), api.budget)
            reply = api.call("/cgi-bin/media/uploadimg",
                             files={"media": (name, data, _mime(name))})
            mapping[src] = str(reply.get("url") or "")
        content = article["content"]
        for src, url in mapping.items():
            content = content.replace(f'src="{src}"', f'src="{url}"')
        article["content"] = content
        cover = sources[0] if sources else self.config.get("default_thumb")
        data, name = self._download(_absolute(str(cover), post.base_url), api.budget)
        reply = api.call("/cgi-bin/material/add_material", params={"type": "thumb"},
                         files={"media": (name, data, _mime(name))})
        article["thumb_media_id"] = str(reply.get("media_id") or "")
        return article

    def _draft(self, api: WeChatAPI, post: OutgoingPost) -> str:
        return self._draft_many(api, [post])

    def _draft_many(self, api: WeChatAPI, posts: list[OutgoingPost]) -> str:
        articles = [self._prepare(api, post) for post in posts]
        if len(articles) > 1:
            # "digest: 仅有单图文消息才有摘要，多图文此处为空" (Draft_Box/Add_draft).
            for article in articles:
                article["digest"] = ""
        reply = api.call("/cgi-bin/draft/add", body={"articles": articles})
        media_id = str(reply.get("media_id") or "")
        if not media_id:
            raise TransientError(N_("WeChat saved the draft without an id; it will be tried "
                                    "again."), detail="draft/add: no media_id")
        return media_id

    # --- publishing --------------------------------------------------------------------------

    @staticmethod
    def clientmsgid(idempotency_key: str) -> str:
        """Stable per post (sendall allows at most 64 characters)."""
        return "co" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        return self.publish_group([post], idempotency_key)[0]

    def publish_group(self, posts: list[OutgoingPost], idempotency_key: str
                      ) -> list[PublishResult]:
        """头条 + 次条: one draft with every article, then one freepublish/submit or one
        sendall (one mass-send quota unit). Each post's result carries its article's place
        (`idx`, 1-based as WeChat counts) so its own URL can be found later."""
        if not posts:
            return []
        if len(posts) > ARTICLES_MAX:
            raise PermanentError(N_("A 公众号 message holds at most %(max)s articles; this "
                                    "send has %(count)s."),
                                 {"max": ARTICLES_MAX, "count": len(posts)},
                                 detail=f"group of {len(posts)}")
        for post in posts:
            self.check(post)
        api = self.api(budgeted=True)
        media_id = self._draft_many(api, posts)
        if self.mode == "mass_send":
            lead = self._mass_send(api, media_id, idempotency_key)
        else:
            reply = api.call("/cgi-bin/freepublish/submit", body={"media_id": media_id},
                             once=True)
            publish_id = str(reply.get("publish_id") or "")
            if not publish_id:
                raise TransientError(N_("WeChat accepted the article without a publish id."),
                                     detail="freepublish/submit: no publish_id")
            lead = PublishResult(external_id=f"pub:{publish_id}", status="publishing",
                                 progress={"media_id": media_id, "publish_id": publish_id,
                                           # the statistics' and comments' id (see stats)
                                           "msg_data_id": str(reply.get("msg_data_id") or "")},
                                 check_after_s=PUBLISH_POLL_S)
        return [PublishResult(external_id=lead.external_id, url=lead.url, status=lead.status,
                              progress={**(lead.progress or {}), "idx": i,
                                        "articles": len(posts)},
                              check_after_s=lead.check_after_s, deadline_s=lead.deadline_s)
                for i, _post in enumerate(posts, start=1)]

    def _mass_send(self, api: WeChatAPI, media_id: str, key: str) -> PublishResult:
        tag_id = self.config.get("tag_id")
        flt: dict[str, Any] = ({"is_to_all": False, "tag_id": int(tag_id)}
                               if tag_id not in (None, "") else {"is_to_all": True})
        reply = api.call("/cgi-bin/message/mass/sendall", body={
            "filter": flt, "mpnews": {"media_id": media_id}, "msgtype": "mpnews",
            "send_ignore_reprint": 0, "clientmsgid": self.clientmsgid(key)}, accept=(45065,))
        msg_id = str(reply.get("msg_id") or "")
        if not msg_id:
            raise TransientError(N_("WeChat accepted the mass send without an id."),
                                 detail="sendall: no msg_id")
        progress = {"media_id": media_id, "msg_id": msg_id,
                    "msg_data_id": str(reply.get("msg_data_id") or "")}
        return self.track(OutgoingPost(0, 0, 0, "", ""), f"msg:{msg_id}", progress)

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        return None  # mass send re-sends with the same clientmsgid (declared idempotent)

    def track(self, post: OutgoingPost, external_id: str, progress: Mapping[str, Any] | None,
              *, final: bool = False) -> PublishResult:
        state = dict(progress or {})
        api = self.api()
        if external_id.startswith("pub:"):
            return self._track_publish(api, external_id, state)
        msg_id = state.get("msg_id") or external_id.removeprefix("msg:")
        reply = api.call("/cgi-bin/message/mass/get", body={"msg_id": int(msg_id)})
        status = str(reply.get("msg_status") or "")
        state["msg_status"] = status
        if status == "SEND_SUCCESS":
            return PublishResult(external_id=external_id, status="published", progress=state)
        if status in ("SEND_FAIL", "DELETE"):
            raise PermanentError(N_("WeChat did not send the mass message (%(status)s)."),
                                 {"status": status}, detail=f"mass/get {status}")
        if status == "PROTECTED":
            if final:
                raise PermanentError(N_("No admin confirmed the mass send within 30 minutes "
                                        "(群发保护)."), detail="protection expired")
            return PublishResult(external_id=external_id, status="awaiting_staff",
                                 progress={**state, "confirmed": 0, "total": 1},
                                 check_after_s=MASS_POLL_S, deadline_s=PROTECTION_DEADLINE_S)
        return PublishResult(external_id=external_id, status="publishing", progress=state,
                             check_after_s=MASS_POLL_S)

    def _track_publish(self, api: WeChatAPI, external_id: str, state: dict[str, Any]
                       ) -> PublishResult:
        publish_id = state.get("publish_id") or external_id.removeprefix("pub:")
        reply = api.call("/cgi-bin/freepublish/get", body={"publish_id": publish_id})
        status = int(reply.get("publish_status") or 0)
        if status == 0:
            items = ((reply.get("article_detail") or {}).get("item") or [])
            url = article_url(items, state.get("idx"), "idx", "article_url")
            state["article_id"] = str(reply.get("article_id") or "")
            return PublishResult(external_id=external_id, url=url, status="published",
                                 progress=state)
        if status == 1:
            return PublishResult(external_id=external_id, status="publishing", progress=state,
                                 check_after_s=PUBLISH_POLL_S)
        message = PUBLISH_FAILURES.get(status) or N_("WeChat did not publish the article "
                                                     "(publish_status %(status)s).")
        raise PermanentError(message, {"status": status}, detail=f"publish_status {status}")

    # --- preview and connection test ---------------------------------------------------------

    def send_preview(self, post: OutgoingPost, to: str | None = None) -> PublishResult:
        if not to or not to.strip():
            raise PermanentError(N_("Enter the WeChat id (微信号) that should receive the "
                                    "preview; it must follow the account."))
        api = self.api(budgeted=True)
        media_id = self._draft(api, post)
        api.call("/cgi-bin/message/mass/preview", body={
            "towxname": to.strip(), "mpnews": {"media_id": media_id}, "msgtype": "mpnews"})
        return PublishResult(status="published")

    def test_connection(self) -> str:
        self.api().token()
        return N_("Connected: WeChat accepted the AppID and AppSecret.")


def article_url(items: list[Mapping[str, Any]], idx: Any, idx_key: str, url_key: str
                ) -> str | None:
    """The URL of the article at `idx` (1-based) in WeChat's list; a post sent alone (no
    idx recorded, older posts) takes the first URL."""
    try:
        wanted = int(idx) if idx is not None else None
    except (TypeError, ValueError):
        wanted = None
    for item in items:
        try:
            at = int(item.get(idx_key) or 0)
        except (TypeError, ValueError):
            continue
        if (wanted is None or at == wanted) and item.get(url_key):
            return str(item[url_key])
    return None


def _absolute(src: str, base_url: str) -> str:
    if src.startswith(("http://", "https://")) or not base_url:
        return src
    return base_url.rstrip("/") + "/" + src.lstrip("/")


def _mime(filename: str) -> str:
    return "image/png" if filename.endswith(".png") else "image/jpeg"
