"""`wecom_customer` (企业微信 客户联系): 客户群发 to customers or customer groups, and 朋友圈 tasks.

The company only *creates* these; each staff member sends them from their phone. Publishing
therefore hands the post to the senders (`awaiting_staff`) and `track()` follows N of M:

- single / group: one 企业群发 per sender (`add_msg_template`, doc 92135; for groups the sender
  is required, and one per sender keeps "who sent" exact for customers too). Progress from
  `get_groupmsg_task` (member status 0 pending / 2 sent) and `get_groupmsg_send_result`
  (per customer or group: 1 reached, 2 not a friend any more, 3 already received its share of
  broadcasts this period), docs 96355/93338. Reminders: `remind_groupmsg_send` (doc 97610, at
  most three per broadcast in 24 hours).
- moment: one `add_moment_task` for all senders (visible_range.sender_list) → jobid →
  `get_moment_task_result` → moment_id (doc 96351); per member `get_moment_task`
  (publish_status 0/1) and `get_moment_send_result` for the customers who can see it.

A broadcast "goes to the member who last chatted with the customer" (92135): the platform, not
this app, chooses who of several members reaches a shared customer.

Crash safety: before creating anything, publish looks for an earlier broadcast with the same
text and link in the time window (`get_groupmsg_list_v2` / `get_moment_list`, company-created,
from 10 minutes before the post's time) and reuses it, sender by sender. A re-run of publish is
therefore safe, which is why the channel is declared idempotent. Uncertain: templates created
through the API carry no `creator` in that list (93338), so the sender is read from each
candidate's task list; and whether a template is listed immediately after creation is not
documented (the fake lists it at once).

Secret: the 客户联系 secret, or the secret of a self-built app configured under 客户联系 →
可调用接口的应用. Since 2023-12-01 the 系统应用 secret may no longer call these APIs (96355).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from ..errors import N_
from ..rendering import markdown_to_text, plain_excerpt
from . import _http
from ._robot import join_fitting
from ._wecom_api import LocalTokens, WeComAPI
from .base import (
    Capabilities,
    ChannelAdapter,
    ConfigField,
    Finding,
    OutgoingPost,
    PermanentError,
    PublishResult,
    ReceiveLimit,
    TransientError,
    cut_bytes,
    text_bytes,
)

TEXT_BYTES = 4000            # add_msg_template text.content "最多4000个字节"
ATTACHMENTS = 9              # "最多支持添加9个附件"
LINK_TITLE_BYTES = 128
LINK_DESC_BYTES = 512
MINI_TITLE_BYTES = 64        # miniprogram.title "最长为64字节"
MOMENT_TEXT_CHARS = 2000     # add_moment_task "最多支持传入2000个字(4000个字节)"
MOMENT_TEXT_BYTES = 4000
MOMENT_IMAGES = 9            # 9 images | 1 video | 1 link, one kind per task
MOMENT_LINK_TITLE_BYTES = 64
IMAGE_BYTES = 2 * 1024 * 1024  # uploadimg: JPG/PNG, 5 B – 2 MB
LOOKUP_LEAD_S = 600
MONTH_S = 30 * 24 * 3600     # list queries span at most one month
POLL_S = 120.0               # how often track() looks at the phones' progress
JOB_POLL_S = 15.0            # while a 朋友圈 job is still being created
MORE_LABEL = "阅读全文"
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
_WECOM_CDN = ("qpic.cn",)


class WeComCustomerAdapter(ChannelAdapter):
    kind = "wecom_customer"
    label = N_("WeCom customer contact (客户群发 / 朋友圈)")
    config_fields = (
        ConfigField("corp_id", N_("Corp ID"), "text", required=True,
                    help=N_("我的企业 → 企业信息 → 企业ID in the WeCom admin console.")),
        ConfigField("secret", N_("Secret"), "text", required=True, secret=True,
                    help=N_("The 客户联系 secret (客户联系 → API), or the secret of a self-built "
                            "app listed under 客户联系 → 可调用接口的应用. The 系统应用 secret no "
                            "longer works since 2023-12-01.")),
        ConfigField("agent_id", N_("AgentId of the self-built app"), "text",
                    help=N_("Optional; only for your reference when the secret is an app's.")),
        ConfigField("api_base", N_("API address"), "url",
                    help=N_("Leave empty for WeCom itself (https://qyapi.weixin.qq.com).")),
        ConfigField("kind", N_("What staff send"), "choice", default="single",
                    choices=("single", "group", "moment"),
                    help=N_("single: 客户群发 to customers; group: to the customer groups the "
                            "senders own; moment: a 朋友圈 post.")),
        ConfigField("senders", N_("Senders (WeCom userids)"), "ids", required=True,
                    help=N_("The staff members who confirm on their phones, separated by "
                            "commas. Progress is shown as N of M of them.")),
        ConfigField("tag_filter", N_("Customer tags"), "text",
                    help=N_("Optional WeCom customer tag ids. Commas: any of these tags; a "
                            "semicolon starts another group that must also match.")),
        ConfigField("allow_select", N_("Staff may change the recipients"), "bool",
                    default=False,
                    help=N_("客户群发 only: senders may add or remove customers before "
                            "sending.")),
        ConfigField("deadline_hours", N_("Deadline (hours)"), "int", default=24, min_value=1,
                    max_value=24 * 14,
                    help=N_("When the deadline passes, the post counts as published if at least "
                            "one sender sent it (the others are listed), else as missed.")),
        ConfigField("frequency_rule", N_("Receive limit per customer"), "choice",
                    default="month", choices=("month", "week", "day"),
                    help=N_("As set in 群发助手 → 设置群发规则: month = as many broadcasts as "
                            "the month has days (the default); week = 7 a week; day = 1 a "
                            "day. The calendar warns before a plan exceeds it.")),
        ConfigField("miniprogram_appid", N_("Mini program AppID"), "text",
                    help=N_("客户群发 only: attach a mini program card. The mini program must "
                            "be linked to the company (应用管理 → 小程序).")),
        ConfigField("miniprogram_page", N_("Mini program page"), "text",
                    help=N_("The page the card opens, ending in .html, e.g. "
                            "pages/index/index.html.")),
        ConfigField("miniprogram_cover", N_("Mini program cover image URL"), "url",
                    help=N_("JPG or PNG, uploaded to WeCom (as a three-day media id) each "
                            "time a broadcast is created.")),
        ConfigField("cover_image", N_("Cover image URL"), "url",
                    help=N_("For link cards when the text has no image.")),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=60),
    )
    capabilities = Capabilities(
        idempotent=True, can_find_existing=True, staff_confirm=True,
        limits={"text_bytes": TEXT_BYTES, "attachments_items": ATTACHMENTS,
                "link_title_bytes": LINK_TITLE_BYTES, "link_desc_bytes": LINK_DESC_BYTES,
                "moment_text_chars": MOMENT_TEXT_CHARS, "moment_text_bytes": MOMENT_TEXT_BYTES,
                "moment_images_items": MOMENT_IMAGES})
    # Tests put the service's clock here (seconds since the epoch).
    clock: ClassVar[Any] = staticmethod(time.time)
    tracks: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any], *, tokens: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if tokens is not None or not hasattr(self, "tokens"):
            self.tokens = tokens if tokens is not None else LocalTokens()

    # --- settings -----------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.config.get("kind") or "single"

    @property
    def senders(self) -> list[str]:
        value = self.config.get("senders") or []
        if isinstance(value, str):
            value = [v for v in re.split(r"[\s,;，；]+", value) if v]
        return list(dict.fromkeys(value))

    def tag_groups(self) -> list[list[str]]:
        raw = str(self.config.get("tag_filter") or "")
        groups = [[t for t in re.split(r"[\s,，]+", part) if t]
                  for part in re.split(r"[;；]", raw)]
        return [g for g in groups if g]

    def api(self, *, budgeted: bool = False) -> WeComAPI:
        """The API client; `budgeted` for a publish: all its calls and image downloads share
        one time budget (send_budget_s), so the whole send ends well within the lease."""
        return WeComAPI(corp_id=str(self.setting("corp_id")), secret=str(self.setting("secret")),
                        api_base=self.config.get("api_base"), tokens=self.tokens,
                        http=self.http, timeout=float(self.config.get("timeout_s") or 10),
                        budget=_http.Budget(self.send_budget_s) if budgeted else None)

    @classmethod
    def receive_limit(cls, config: Mapping[str, Any]) -> ReceiveLimit | None:
        """Each customer / customer group receives at most as many company broadcasts a month
        as the month has days; an admin may tighten it to 7 a week or 1 a day (92135). Counted
        per corp, apart for customers and for groups. 朋友圈 posts have no such limit."""
        mode = config.get("kind") or "single"
        if mode == "moment" or not config.get("corp_id"):
            return None
        rule = config.get("frequency_rule") or "month"
        per = {"day": 1, "week": 7}.get(rule)
        return ReceiveLimit(key=f"wecom:{config['corp_id']}:{mode}",
                            period=rule if rule in ("day", "week") else "month",
                            per_period=per)

    # --- rendering ----------------------------------------------------------------------------

    def _images(self, post: OutgoingPost) -> list[str]:
        out: list[str] = []
        for src in _IMAGE.findall(post.body_markdown or ""):
            url = urljoin(post.base_url.rstrip("/") + "/", src) if post.base_url else src
            if url.lower().startswith(("http://", "https://")) and url not in out:
                out.append(url)
        return out

    def _text(self, post: OutgoingPost, limit: int | None, *, unit: str = "bytes") -> str:
        blocks = [post.title.strip(), *markdown_to_text(post.body_markdown).split("\n\n")]
        blocks = [b for b in blocks if b.strip()]
        if limit is None:
            return "\n\n".join(blocks)
        if unit == "chars":
            whole = "\n\n".join(blocks)
            if len(whole) <= limit:
                return whole
            return whole[: limit - 1].rstrip() + "…"
        return join_fitting(blocks, limit)

    def _link(self, post: OutgoingPost, images: list[str]) -> dict[str, Any] | None:
        if not post.public_url:
            return None
        description = post.summary.strip() or plain_excerpt(post.body_markdown, 200)
        link = {"title": cut_bytes(post.title.strip(), LINK_TITLE_BYTES),
                "url": post.public_url}
        if description:
            link["desc"] = cut_bytes(description, LINK_DESC_BYTES)
        picurl = images[0] if images else self.config.get("cover_image")
        if picurl:
            link["picurl"] = picurl
        return link

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        """The request body before images are uploaded (image attachments carry the source
        URL; publish swaps in WeCom's own address or media id)."""
        images = self._images(post)
        if self.mode == "moment":
            return self._render_moment(post, images)
        body: dict[str, Any] = {"chat_type": "group" if self.mode == "group" else "single",
                                "text": {"content": self._text(post, TEXT_BYTES)}}
        attachments: list[dict[str, Any]] = []
        link = self._link(post, images)
        if link:
            attachments.append({"msgtype": "link", "link": link})
        mini = self._miniprogram(post)
        if mini:
            attachments.append({"msgtype": "miniprogram", "miniprogram": mini})
        for src in images[: ATTACHMENTS - len(attachments)]:
            attachments.append({"msgtype": "image", "image": {"pic_url": src}})
        if attachments:
            body["attachments"] = attachments
        groups = self.tag_groups()
        if groups and self.mode == "single":
            body["tag_filter"] = {"group_list": [{"tag_list": g} for g in groups]}
        if self.mode == "single" and self.config.get("allow_select"):
            body["allow_select"] = True
        return body

    def _miniprogram(self, post: OutgoingPost) -> dict[str, Any] | None:
        """The mini-program card (add_msg_template attachments, doc 92135): title ≤ 64 bytes,
        pic_media_id from media/upload (here the cover's URL until publish uploads it), appid
        of a mini program linked to the company, page ending in .html."""
        appid = str(self.config.get("miniprogram_appid") or "").strip()
        page = str(self.config.get("miniprogram_page") or "").strip()
        cover = str(self.config.get("miniprogram_cover") or self.config.get("cover_image")
                    or "").strip()
        if not (appid and page and cover):
            return None
        return {"title": cut_bytes(post.title.strip(), MINI_TITLE_BYTES),
                "pic_media_id": cover, "appid": appid, "page": page}

    def _render_moment(self, post: OutgoingPost, images: list[str]) -> dict[str, Any]:
        text = self._text(post, None)
        attachments: list[dict[str, Any]] = []
        cover = images[0] if images else self.config.get("cover_image")
        if images:
            # One kind per task: images win; the page's address goes into the text.
            attachments = [{"msgtype": "image", "image": {"media_id": src}}
                           for src in images[:MOMENT_IMAGES]]
        elif post.public_url and cover:
            attachments = [{"msgtype": "link", "link": {
                "title": cut_bytes(post.title.strip(), MOMENT_LINK_TITLE_BYTES),
                "url": post.public_url, "media_id": cover}}]
        more = f"{MORE_LABEL}：{post.public_url}" if post.public_url and not (
            attachments and attachments[0]["msgtype"] == "link") else ""
        room = MOMENT_TEXT_CHARS - (len(more) + 2 if more else 0)
        if len(text) > room or text_bytes(text) > MOMENT_TEXT_BYTES - text_bytes(more) - 2:
            text = self._fit_moment_text(text, room, MOMENT_TEXT_BYTES - text_bytes(more) - 2)
        content = f"{text}\n\n{more}" if more else text
        body: dict[str, Any] = {"text": {"content": content}}
        if attachments:
            body["attachments"] = attachments
        visible: dict[str, Any] = {"sender_list": {"user_list": self.senders}}
        tags = [t for g in self.tag_groups() for t in g]
        if tags:
            visible["external_contact_list"] = {"tag_list": tags}
        body["visible_range"] = visible
        return body

    @staticmethod
    def _fit_moment_text(text: str, chars: int, byte_limit: int) -> str:
        text = text[: max(0, chars - 1)]
        return cut_bytes(text, byte_limit - text_bytes("…")).rstrip() + "…"

    # --- validation ---------------------------------------------------------------------------

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        if not self.senders:
            findings.append(Finding("senders_missing", "error",
                                    N_("The channel has no senders; add the staff members' "
                                       "WeCom userids in the channel settings."),
                                    field="channels"))
        images = self._images(post)
        full = self._text(post, None)
        if self.mode == "moment":
            too_long = len(full) > MOMENT_TEXT_CHARS or text_bytes(full) > MOMENT_TEXT_BYTES
            size, limit, unit = len(full), MOMENT_TEXT_CHARS, "characters"
            if len(images) > MOMENT_IMAGES:
                findings.append(Finding(
                    "too_many_images", "warning",
                    N_("A 朋友圈 post shows at most %(limit)s images; only the first %(limit)s "
                       "of %(count)s are attached."),
                    {"limit": MOMENT_IMAGES, "count": len(images)}, field="body"))
        else:
            too_long = text_bytes(full) > TEXT_BYTES
            size, limit, unit = text_bytes(full), TEXT_BYTES, "bytes"
            room = ATTACHMENTS - (1 if post.public_url else 0) - (
                1 if self._miniprogram(post) else 0)
            if len(images) > room:
                findings.append(Finding(
                    "too_many_attachments", "warning",
                    N_("WeCom attaches at most %(limit)s items to a broadcast; only the first "
                       "%(room)s of %(count)s images are attached."),
                    {"limit": ATTACHMENTS, "room": room, "count": len(images)}, field="body"))
        if too_long:
            params = {"size": size, "limit": limit, "unit": unit}
            if post.public_url:
                findings.append(Finding(
                    "text_shortened", "warning",
                    N_("The text is longer than WeCom allows (%(size)s of %(limit)s %(unit)s); "
                       "it will be shortened and the full text linked."), params, field="body"))
            else:
                findings.append(Finding(
                    "text_too_long", "error",
                    N_("The text is too long for WeCom: %(size)s of at most %(limit)s "
                       "%(unit)s. Shorten it, or also publish the piece on a web channel so "
                       "the broadcast can link to the full text."), params, field="body"))
        if self.mode != "moment" and self.config.get("miniprogram_appid"):
            page = str(self.config.get("miniprogram_page") or "")
            if not page.split("?", 1)[0].endswith(".html"):
                findings.append(Finding(
                    "miniprogram_page", "error",
                    N_("The mini program page must end in .html (for example "
                       "pages/index/index.html), or WeChat cannot open it."),
                    field="channels"))
            elif not (self.config.get("miniprogram_cover") or self.config.get("cover_image")):
                findings.append(Finding(
                    "miniprogram_cover", "error",
                    N_("A mini program card needs a cover image; set one in the channel "
                       "settings."), field="channels"))
        if self.mode == "moment" and not images and post.public_url and \
                not self.config.get("cover_image"):
            findings.append(Finding(
                "moment_link_in_text", "warning",
                N_("A 朋友圈 link card needs a cover image; without an image in the text or a "
                   "cover image in the channel settings the link goes into the text."),
                field="body"))
        return findings

    # --- images -------------------------------------------------------------------------------

    def _download(self, url: str, budget: _http.Budget | None = None) -> tuple[bytes, str]:
        """An image to upload. Redirects are followed (image hosts and CDNs use them); the
        download is bounded in time (channel timeout, publish budget) and size."""
        data = _http.download_image(
            self.http, url, timeout=float(self.config.get("timeout_s") or 10), budget=budget,
            max_bytes=IMAGE_BYTES, too_large=PermanentError(
                N_("The image %(url)s is larger than the 2 MB WeCom accepts."),
                {"url": url[:200]}, detail="image too large"))
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return data, "image.png"
        if data.startswith(b"\xff\xd8\xff"):
            return data, "image.jpg"
        raise PermanentError(N_("The image %(url)s is not a JPG or PNG picture, which is all "
                                "WeCom accepts."), {"url": url[:200]}, detail="image type")

    def _upload_images(self, api: WeComAPI, body: dict[str, Any]) -> dict[str, Any]:
        """Replace source URLs by WeCom's own: broadcasts accept only pic_url from uploadimg,
        朋友圈 only media ids from upload_attachment."""
        out = dict(body)
        attachments = []
        for att in body.get("attachments") or []:
            att = {**att}
            if att["msgtype"] == "image" and "pic_url" in att["image"]:
                src = att["image"]["pic_url"]
                if not urlsplit(src).hostname or not urlsplit(src).hostname.endswith(_WECOM_CDN):
                    att["image"] = {"pic_url": api.upload_image_url(
                        *self._download(src, api.budget))}
            elif att["msgtype"] == "image":
                att["image"] = {"media_id": api.upload_moment_image(
                    *self._download(att["image"]["media_id"], api.budget))}
            elif att["msgtype"] == "miniprogram":
                att["miniprogram"] = {**att["miniprogram"], "pic_media_id": api.upload_media_image(
                    *self._download(att["miniprogram"]["pic_media_id"], api.budget))}
            elif att["msgtype"] == "link" and "media_id" in att["link"]:
                att["link"] = {**att["link"], "media_id": api.upload_moment_image(
                    *self._download(att["link"]["media_id"], api.budget))}
            attachments.append(att)
        if attachments:
            out["attachments"] = attachments
        return out

    # --- looking up what an earlier attempt created ------------------------------------------

    def _window(self, post: OutgoingPost) -> tuple[int, int]:
        now = int(self.clock())
        start = now - LOOKUP_LEAD_S
        if post.scheduled_at is not None:
            start = min(start, int(post.scheduled_at.timestamp()) - LOOKUP_LEAD_S)
        return max(start, now + 60 - MONTH_S), now + 60

    @staticmethod
    def _signature(body: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """What identifies our broadcast in a listing: its text and its link URLs (uploaded
        images get a new address on every upload, so they are left out)."""
        text = ((body.get("text") or {}).get("content") or "").strip()
        links = []
        for att in body.get("attachments") or []:
            if isinstance(att, dict) and att.get("msgtype") == "link":
                links.append(str((att.get("link") or {}).get("url") or ""))
        if isinstance(body.get("link"), dict):  # get_moment_list rows
            links.append(str(body["link"].get("url") or ""))
        return text, tuple(links)

    def _existing_templates(self, api: WeComAPI, post: OutgoingPost,
                            body: Mapping[str, Any]) -> dict[str, str]:
        """sender -> msgid of broadcasts an earlier attempt already created."""
        start, end = self._window(post)
        rows = api.pages("/cgi-bin/externalcontact/get_groupmsg_list_v2",
                         {"chat_type": body["chat_type"], "start_time": start, "end_time": end,
                          "filter_type": 0}, "group_msg_list", limit=100)
        wanted = self._signature(body)
        found: dict[str, str] = {}
        senders = set(self.senders)
        for row in rows:
            if self._signature(row) != wanted or not row.get("msgid"):
                continue
            tasks = api.pages("/cgi-bin/externalcontact/get_groupmsg_task",
                              {"msgid": row["msgid"]}, "task_list", limit=1000)
            for task in tasks:
                userid = task.get("userid")
                if userid in senders and userid not in found:
                    found[userid] = row["msgid"]
        return found

    def _existing_moment(self, api: WeComAPI, post: OutgoingPost,
                         body: Mapping[str, Any]) -> str | None:
        start, end = self._window(post)
        rows = api.pages("/cgi-bin/externalcontact/get_moment_list",
                         {"start_time": start, "end_time": end, "filter_type": 0},
                         "moment_list", limit=20)
        wanted_text = self._signature(body)[0]
        wanted_links = tuple(str((a.get("link") or {}).get("url") or "")
                             for a in body.get("attachments") or [] if a["msgtype"] == "link")
        for row in rows:
            text, links = self._signature(row)
            if text == wanted_text and links == wanted_links and row.get("moment_id"):
                return str(row["moment_id"])
        return None

    def find_existing(self, post: OutgoingPost, idempotency_key: str) -> PublishResult | None:
        """The broadcast (every sender's) or 朋友圈 task an earlier attempt created, handed to
        staff as then; None when not all of it exists."""
        api = self.api()
        body = self.render(post)
        if self.mode == "moment":
            moment_id = self._existing_moment(api, post, body)
            if moment_id is None:
                return None
            return self._handed(moment_id, self._staff_entries(), moment_id=moment_id)
        found = self._existing_templates(api, post, body)
        if set(found) != set(self.senders):
            return None
        staff = [{"id": s, "status": "pending", "msgid": found[s]} for s in self.senders]
        return self._handed(staff[0]["msgid"], staff)

    # --- publishing ---------------------------------------------------------------------------

    def _staff_entries(self) -> list[dict[str, Any]]:
        return [{"id": s, "status": "pending"} for s in self.senders]

    def _handed(self, external_id: str, staff: list[dict[str, Any]], **extra: Any
                ) -> PublishResult:
        progress = {"confirmed": 0, "total": len(staff), "staff": staff,
                    "created_at": _iso(self.clock()), **extra}
        return PublishResult(external_id=external_id, status="awaiting_staff",
                             progress=progress,
                             check_after_s=JOB_POLL_S if "jobid" in extra else POLL_S)

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        self.check(post)
        api = self.api(budgeted=True)
        body = self.render(post)
        if self.mode == "moment":
            return self._publish_moment(api, post, body)
        existing = self._existing_templates(api, post, body)
        missing = [s for s in self.senders if s not in existing]
        uploaded = self._upload_images(api, body) if missing else body
        staff: list[dict[str, Any]] = []
        failed = 0
        for sender in self.senders:
            msgid = existing.get(sender)
            if msgid is None:
                reply = api.call("POST", "/cgi-bin/externalcontact/add_msg_template",
                                 body={**uploaded, "sender": sender})
                msgid = str(reply.get("msgid") or "")
                if not msgid:
                    raise TransientError(N_("WeCom accepted the broadcast without an id; it "
                                            "will be looked up and tried again."),
                                         detail="add_msg_template: no msgid")
                failed += len(reply.get("fail_list") or [])
            staff.append({"id": sender, "status": "pending", "msgid": msgid})
        return self._handed(staff[0]["msgid"], staff, **({"failed": failed} if failed else {}))

    def _publish_moment(self, api: WeComAPI, post: OutgoingPost, body: dict[str, Any]
                        ) -> PublishResult:
        moment_id = self._existing_moment(api, post, body)
        if moment_id is not None:
            return self._handed(moment_id, self._staff_entries(), moment_id=moment_id)
        reply = api.call("POST", "/cgi-bin/externalcontact/add_moment_task",
                         body=self._upload_images(api, body))
        jobid = str(reply.get("jobid") or "")
        if not jobid:
            raise TransientError(N_("WeCom accepted the 朋友圈 task without an id; it will be "
                                    "looked up and tried again."),
                                 detail="add_moment_task: no jobid")
        return self._handed(f"job:{jobid}", self._staff_entries(), jobid=jobid)

    # --- tracking -----------------------------------------------------------------------------

    def track(self, post: OutgoingPost, external_id: str, progress: Mapping[str, Any] | None,
              *, final: bool = False) -> PublishResult:
        """Where the staff are: N of M confirmed, customers reached / not friends / already
        received. All sent → published; at the deadline (`final`) published when at least one
        sent (progress lists who did not), else a PermanentError (→ missed)."""
        state = _copy(progress) or {"staff": self._staff_entries()}
        api = self.api()
        if self.mode == "moment":
            external_id = self._track_moment(api, state, external_id)
        else:
            self._track_broadcasts(api, state)
        staff = state["staff"]
        counted = [s for s in staff if s.get("status") != "invalid"]
        state["confirmed"] = sum(1 for s in counted if s.get("status") == "sent")
        state["total"] = len(counted)
        for key in ("reached", "not_friend", "already_received"):
            if any(key in s for s in staff):
                state[key] = sum(int(s.get(key) or 0) for s in staff)
        pending = [s["id"] for s in counted if s.get("status") != "sent"]
        if counted and not pending:
            return PublishResult(external_id=external_id, status="published", progress=state)
        if final:
            # Whoever has not sent is reminded at the deadline (within WeCom's cap), whether
            # the post then counts as published or as missed.
            self._remind(api, state, pending)
            if state["confirmed"] >= 1 and state.get("moment_id", True):
                return PublishResult(external_id=external_id, status="published",
                                     progress=state)
            raise PermanentError(N_("None of the %(total)s senders sent it by the deadline "
                                    "(%(pending)s)."),
                                 {"total": len(counted) or len(staff),
                                  "pending": ", ".join(pending or [s["id"] for s in staff])},
                                 detail="deadline: nobody sent")
        waiting = "jobid" in state and not state.get("moment_id")
        return PublishResult(external_id=external_id, status="awaiting_staff", progress=state,
                             check_after_s=JOB_POLL_S if waiting else POLL_S)

    def _track_broadcasts(self, api: WeComAPI, state: dict[str, Any]) -> None:
        for entry in state["staff"]:
            if entry.get("status") == "sent" or not entry.get("msgid"):
                continue  # a member's results are final once they sent
            tasks = api.pages("/cgi-bin/externalcontact/get_groupmsg_task",
                              {"msgid": entry["msgid"]}, "task_list", limit=1000)
            mine = next((t for t in tasks if t.get("userid") == entry["id"]), None)
            if mine is None or int(mine.get("status") or 0) != 2:
                continue
            entry["status"] = "sent"
            if mine.get("send_time"):
                entry["sent_at"] = _iso(int(mine["send_time"]))
            rows = api.pages("/cgi-bin/externalcontact/get_groupmsg_send_result",
                             {"msgid": entry["msgid"], "userid": entry["id"]}, "send_list",
                             limit=1000)
            statuses = [int(r.get("status") or 0) for r in rows]
            entry["reached"] = statuses.count(1)
            entry["not_friend"] = statuses.count(2)
            entry["already_received"] = statuses.count(3)

    def _track_moment(self, api: WeComAPI, state: dict[str, Any], external_id: str) -> str:
        if not state.get("moment_id"):
            reply = api.call("GET", "/cgi-bin/externalcontact/get_moment_task_result",
                             params={"jobid": state.get("jobid") or external_id.removeprefix(
                                 "job:")})
            if int(reply.get("status") or 0) != 3:
                return external_id  # still being created
            result = reply.get("result") or {}
            if int(result.get("errcode") or 0) != 0:
                raise PermanentError(N_("WeCom could not create the 朋友圈 task (error "
                                        "%(code)s: %(reason)s)."),
                                     {"code": result.get("errcode"),
                                      "reason": str(result.get("errmsg") or "")[:200]},
                                     detail=f"moment job errcode {result.get('errcode')}")
            state["moment_id"] = str(result.get("moment_id") or "")
            invalid = set((result.get("invalid_sender_list") or {}).get("user_list") or [])
            for entry in state["staff"]:
                if entry["id"] in invalid:
                    entry["status"] = "invalid"
            if not state["moment_id"]:
                raise TransientError(N_("WeCom finished the 朋友圈 task without an id; it will "
                                        "be asked again."), detail="moment job: no moment_id")
        moment_id = state["moment_id"]
        tasks = api.pages("/cgi-bin/externalcontact/get_moment_task",
                          {"moment_id": moment_id}, "task_list", limit=1000)
        published = {t.get("userid") for t in tasks if int(t.get("publish_status") or 0) == 1}
        for entry in state["staff"]:
            if entry.get("status") in ("sent", "invalid") or entry["id"] not in published:
                continue
            entry["status"] = "sent"
            entry["sent_at"] = _iso(self.clock())  # first seen; the list carries no time
            rows = api.pages("/cgi-bin/externalcontact/get_moment_send_result",
                             {"moment_id": moment_id, "userid": entry["id"]}, "customer_list",
                             limit=5000)
            entry["reached"] = len(rows)
        return moment_id

    # --- reminders ----------------------------------------------------------------------------

    def remind(self, progress: Mapping[str, Any] | None) -> dict[str, Any]:
        """Ask WeCom to notify the senders who have not sent yet (客户群发 only; at most three
        reminders per broadcast in 24 hours, counted in progress). Returns the new progress."""
        state = _copy(progress) or {"staff": []}
        pending = [s["id"] for s in state.get("staff", []) if s.get("status") == "pending"]
        self._remind(self.api(), state, pending)
        return state

    def _remind(self, api: WeComAPI, state: dict[str, Any], pending: list[str]) -> None:
        if self.mode == "moment":
            return  # WeCom has no reminder call for 朋友圈 tasks
        now = self.clock()
        for entry in state["staff"]:
            if entry["id"] not in pending or not entry.get("msgid"):
                continue
            recent = [t for t in entry.get("reminded", []) if t > now - 24 * 3600]
            if len(recent) >= 3:
                continue
            try:
                api.call("POST", "/cgi-bin/externalcontact/remind_groupmsg_send",
                         body={"msgid": entry["msgid"]})
            except (TransientError, PermanentError):
                continue  # a reminder that does not go out must not change the post's state
            entry["reminded"] = [*recent, now]

    # --- connection test ----------------------------------------------------------------------

    def test_connection(self) -> str:
        api = self.api()
        now = int(self.clock())
        path = ("/cgi-bin/externalcontact/get_moment_list" if self.mode == "moment" else
                "/cgi-bin/externalcontact/get_groupmsg_list_v2")
        body: dict[str, Any] = {"start_time": now - 3600, "end_time": now, "filter_type": 0,
                                "limit": 1}
        if self.mode != "moment":
            body["chat_type"] = "group" if self.mode == "group" else "single"
        api.call("POST", path, body=body)
        return N_("Connected: WeCom accepted the secret and lets it use the 客户联系 API.")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def _copy(progress: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not progress:
        return None
    out = dict(progress)
    out["staff"] = [dict(s) for s in progress.get("staff") or []]
    return out
