"""Fake WeCom 客户联系 API (企业微信 external contact): tokens, 客户群发 and 朋友圈 tasks that staff
confirm on their phones, as strict as the real service where its documentation is clear.

Paths, fields and error codes follow the WeCom server API documentation (developer.work.weixin.
qq.com/document/path/…): gettoken (91039), 上传图片 uploadimg / 上传临时素材 upload (90256, 90253),
上传附件资源 upload_attachment (95098/96347), 创建企业群发 add_msg_template (92135), 提醒成员群发
remind_groupmsg_send (97610), 停止企业群发 cancel_groupmsg_send (97611), 获取企业的全部群发记录
get_groupmsg_list_v2 / get_groupmsg_task / get_groupmsg_send_result (93338/96355), 企业发表内容到
客户的朋友圈 add_moment_task / get_moment_task_result (95094/96351), 获取客户朋友圈企业发表的列表
get_moment_list / get_moment_task / get_moment_send_result (93333). Where the documentation names
a rule but not the error code that enforces it, the code used here is marked "(uncertain)".

Test controls: `staff_confirms(msgid, userid)` is a member pressing "send" in 群发助手;
`staff_publishes_moment(moment_id, userid)` is a member publishing a 朋友圈 task. Customers are
added with `add_customer(userid, external_userid, friend=…, tags=…)`; the per-customer receive
limit ("as many company broadcasts per month as the month has days", tightened by an admin to 7 a
week or 1 a day) is `rule = "month" | "week" | "day"`.
"""

from __future__ import annotations

import calendar
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request

from .server import FakeService, byte_len

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOKEN_SECONDS = 7200
MONTH_SECONDS = 31 * 24 * 3600  # "起止时间间隔不能超过1个月"

MESSAGES = {
    0: "ok",
    -1: "system busy",
    40001: "invalid credential, hint: [fake]",
    40003: "invalid userid, hint: [fake]",
    40005: "invalid file type, hint: [fake]",
    40007: "invalid media_id, hint: [fake]",
    40008: "invalid message type, hint: [fake]",
    40009: "invalid image size, hint: [fake]",
    40013: "invalid corpid, hint: [fake]",
    40014: "invalid access_token, hint: [fake]",
    40058: "invalid parameter, hint: [fake]",
    40096: "invalid external userid, hint: [fake]",
    41001: "access_token missing, hint: [fake]",
    41002: "corpid missing, hint: [fake]",
    41004: "corpsecret missing, hint: [fake]",
    41009: "missing userid, hint: [fake]",
    41010: "url missing, hint: [fake]",
    41016: "missing title, hint: [fake]",
    42001: "access_token expired, hint: [fake]",
    44001: "empty media data, hint: [fake]",
    44004: "empty content, hint: [fake]",
    45002: "content size out of limit, hint: [fake]",
    45009: "api freq out of limit, hint: [fake]",
    48002: "api forbidden, hint: [fake]",
    60011: "no privilege to access/modify contact/party/agent, hint: [fake]",
    84061: "not external contact, hint: [fake]",
    90207: "invalid miniprogram appid, hint: [fake]",
}


class _Err(Exception):
    def __init__(self, code: int, msg: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg or MESSAGES.get(code, "error")


@dataclass
class Customer:
    external_userid: str
    friend: bool = True  # False: the customer deleted the member (status 2 "not friend")
    tags: set[str] = field(default_factory=set)


@dataclass
class Template:
    msgid: str
    chat_type: str
    sender: str | None
    body: dict[str, Any]
    create_time: int
    # userid -> list of target ids (external_userid for single, chat_id for group)
    targets: dict[str, list[str]]
    tasks: dict[str, dict[str, Any]]  # userid -> {"status": 0|2, "send_time": int}
    results: dict[str, list[dict[str, Any]]]  # userid -> send_list rows
    fail_list: list[str]
    reminders: list[float] = field(default_factory=list)
    cancelled: bool = False


@dataclass
class Moment:
    jobid: str
    body: dict[str, Any]
    create_time: int
    senders: list[str]
    invalid_senders: list[str]
    invalid_tags: list[str]
    polls_left: int
    moment_id: str | None = None
    published: dict[str, int] = field(default_factory=dict)  # userid -> publish time
    visible_tags: list[str] = field(default_factory=list)


class FakeWeComCustomer(FakeService):
    per_minute = 10_000

    def __init__(self, corp_id: str = "ww-fake-corp", secret: str = "contact-secret",
                 *, system_secret: str = "system-app-secret") -> None:
        super().__init__()
        self.corp_id = corp_id
        # secret -> what it may do: "contact" (客户联系 secret or a self-built app with the
        # permission) calls everything; "system" is the old 系统应用 secret, refused with 48002
        # since 2023-12-01 for companies that were not using it before.
        self.secrets: dict[str, str] = {secret: "contact", system_secret: "system"}
        self.tokens: dict[str, tuple[float, str]] = {}  # token -> (expires_at, secret kind)
        self.token_requests = 0
        self.staff: dict[str, dict[str, Customer]] = {}
        self.groups: dict[str, list[str]] = {}  # owner userid -> chat ids (客户群)
        self.templates: dict[str, Template] = {}
        self.moments: dict[str, Moment] = {}  # jobid -> moment
        self.media: dict[str, str] = {}  # media_id -> type
        self.image_urls: set[str] = set()  # URLs uploadimg handed out
        self.attachments: dict[str, str] = {}  # upload_attachment media_id -> type
        self.miniprogram_appids: set[str] = {"wx-fake-miniapp"}
        self.rule = "month"  # per-customer receive limit: month | week | day
        self.received: dict[str, list[int]] = {}  # customer or chat id -> receive times
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (path, body) of API calls
        self.moment_polls = 1  # get_moment_task_result answers "creating" this many times
        # Crash tests: create the template, then hold the reply until released.
        self.stall_after_create = False
        self.created = threading.Event()
        self.release = threading.Event()
        self._ids = itertools.count(1)

    # --- test controls ----------------------------------------------------------------------

    def add_staff(self, *userids: str) -> None:
        for userid in userids:
            self.staff.setdefault(userid, {})

    def add_customer(self, userid: str, external_userid: str, *, friend: bool = True,
                     tags: set[str] | None = None) -> None:
        self.add_staff(userid)
        self.staff[userid][external_userid] = Customer(external_userid, friend, set(tags or ()))

    def add_group(self, owner: str, chat_id: str) -> None:
        self.add_staff(owner)
        self.groups.setdefault(owner, []).append(chat_id)

    def expire_tokens(self) -> None:
        """Every token handed out so far is now past its lifetime (42001)."""
        with self._lock:
            self.tokens = {t: (0.0, kind) for t, (_, kind) in self.tokens.items()}

    def revoke_tokens(self) -> None:
        """Tokens are unknown to the service, as after the secret was reset (40014)."""
        with self._lock:
            self.tokens.clear()

    def staff_confirms(self, msgid: str, userid: str) -> list[dict[str, Any]]:
        """The member presses "send" on the phone: each target is reached, not a friend any
        more (2), or already had its share of broadcasts this period (3)."""
        with self._lock:
            tpl = self.templates[msgid]
            if tpl.cancelled or userid not in tpl.tasks or tpl.tasks[userid]["status"] == 2:
                return []
            now = int(self.clock())
            tpl.tasks[userid] = {"status": 2, "send_time": now}
            rows = []
            for target in tpl.targets.get(userid, []):
                row: dict[str, Any] = {"userid": userid}
                row["external_userid" if tpl.chat_type == "single" else "chat_id"] = target
                customer = self.staff.get(userid, {}).get(target)
                if customer is not None and not customer.friend:
                    row["status"] = 2
                elif self._over_limit(target, now):
                    row["status"] = 3
                else:
                    row.update(status=1, send_time=now)
                    self.received.setdefault(target, []).append(now)
                rows.append(row)
            tpl.results[userid] = rows
            return rows

    def staff_publishes_moment(self, moment_id: str, userid: str) -> None:
        with self._lock:
            moment = self._moment_by_id(moment_id)
            if moment is None or userid not in moment.senders:
                raise KeyError(userid)
            moment.published[userid] = int(self.clock())

    def finish_jobs(self) -> None:
        """Every 朋友圈 job finishes creating (it does so on the service's side, whether or
        not anyone asks for the result)."""
        with self._lock:
            for moment in self.moments.values():
                moment.polls_left = 0
                if moment.moment_id is None:
                    moment.moment_id = self._new_id("mom")

    def template_for(self, sender: str) -> list[Template]:
        return [t for t in self.templates.values() if t.sender == sender]

    # --- limits -------------------------------------------------------------------------------

    def _period_start(self, now: int) -> int:
        local = datetime.fromtimestamp(now, UTC).astimezone(SHANGHAI)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.rule == "day":
            start = day
        elif self.rule == "week":
            start = day - timedelta(days=local.weekday())
        else:
            start = day.replace(day=1)
        return int(start.timestamp())

    def _period_limit(self, now: int) -> int:
        if self.rule == "day":
            return 1
        if self.rule == "week":
            return 7
        local = datetime.fromtimestamp(now, UTC).astimezone(SHANGHAI)
        return calendar.monthrange(local.year, local.month)[1]

    def _over_limit(self, target: str, now: int) -> bool:
        start = self._period_start(now)
        taken = sum(1 for t in self.received.get(target, []) if t >= start)
        return taken >= self._period_limit(now)

    # --- plumbing -----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}GCAAAXtWyujaWJHDDGi0m"

    def _auth(self, request: Request) -> str:
        token = request.args.get("access_token")
        if not token:
            raise _Err(41001)
        entry = self.tokens.get(token)
        if entry is None:
            raise _Err(40014)
        expires_at, kind = entry
        if self.clock() >= expires_at:
            raise _Err(42001)
        return kind

    def _json(self, request: Request) -> dict[str, Any]:
        try:
            data = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise _Err(40058, "invalid parameter, Warning: wrong json format.") from None
        if not isinstance(data, dict):
            raise _Err(40058)
        return data

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        path = request.path
        routes = {
            ("GET", "/cgi-bin/gettoken"): self._gettoken,
            ("POST", "/cgi-bin/media/uploadimg"): self._uploadimg,
            ("POST", "/cgi-bin/media/upload"): self._upload,
            ("POST", "/cgi-bin/media/upload_attachment"): self._upload_attachment,
            ("POST", "/cgi-bin/externalcontact/add_msg_template"): self._add_msg_template,
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_list_v2"): self._groupmsg_list,
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_task"): self._groupmsg_task,
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result"): self._send_result,
            ("POST", "/cgi-bin/externalcontact/remind_groupmsg_send"): self._remind,
            ("POST", "/cgi-bin/externalcontact/cancel_groupmsg_send"): self._cancel,
            ("POST", "/cgi-bin/externalcontact/add_moment_task"): self._add_moment_task,
            ("GET", "/cgi-bin/externalcontact/get_moment_task_result"): self._moment_result,
            ("POST", "/cgi-bin/externalcontact/get_moment_task"): self._moment_task,
            ("POST", "/cgi-bin/externalcontact/get_moment_list"): self._moment_list,
            ("POST", "/cgi-bin/externalcontact/get_moment_send_result"):
                self._moment_send_result,
        }
        route = routes.get((request.method, path))
        if route is None:
            return {"errcode": 404, "errmsg": "not found"}, 404
        try:
            return self._dispatch(request, path, route)
        finally:
            request.close()  # uploaded files are spooled to temporary files

    def _dispatch(self, request: Request, path: str, route: Any) -> tuple[dict[str, Any], int]:
        try:
            if path != "/cgi-bin/gettoken":
                kind = self._auth(request)
                if kind != "contact" and "externalcontact" in path:
                    raise _Err(48002)
            forced = self.next_failure()
            if forced is not None:
                raise _Err(forced)
            with self._lock:
                reply = route(request)
        except _Err as exc:
            return {"errcode": exc.code, "errmsg": exc.msg}, 200
        if self.stall_after_create and path.endswith(("add_msg_template", "add_moment_task")):
            self.created.set()
            self.release.wait(60)  # the caller is killed meanwhile; nobody reads this reply
        return {"errcode": 0, "errmsg": "ok", **reply}, 200

    # --- token and media ----------------------------------------------------------------------

    def _gettoken(self, request: Request) -> dict[str, Any]:
        corpid = request.args.get("corpid")
        secret = request.args.get("corpsecret")
        if not corpid:
            raise _Err(41002)
        if not secret:
            raise _Err(41004)
        if corpid != self.corp_id:
            raise _Err(40013)
        kind = self.secrets.get(secret)
        if kind is None:
            raise _Err(40001)
        self.token_requests += 1
        token = f"tok-{next(self._ids)}-{int(time.time() * 1000)}"
        self.tokens[token] = (self.clock() + TOKEN_SECONDS, kind)
        return {"access_token": token, "expires_in": TOKEN_SECONDS}

    @staticmethod
    def _file(request: Request, limit: int) -> tuple[bytes, str]:
        upload = request.files.get("media")
        if upload is None:
            raise _Err(44001)
        data = upload.read()
        if not data:
            raise _Err(44001)
        if len(data) > limit or len(data) < 5:
            raise _Err(40009)
        return data, upload.filename or ""

    @staticmethod
    def _is_image(data: bytes) -> bool:
        return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))

    def _uploadimg(self, request: Request) -> dict[str, Any]:
        data, _ = self._file(request, 2 * 1024 * 1024)  # "5B ~ 2MB", JPG/PNG only
        if not self._is_image(data):
            raise _Err(40005)
        url = f"{self.base}/wework/{next(self._ids)}/0"
        self.image_urls.add(url)
        return {"url": url}

    def _upload(self, request: Request) -> dict[str, Any]:
        kind = request.args.get("type")
        if kind not in ("image", "voice", "video", "file"):
            raise _Err(40005)
        data, _ = self._file(request, 20 * 1024 * 1024)
        if kind == "image" and not self._is_image(data):
            raise _Err(40005)
        media_id = self._new_id("media")
        self.media[media_id] = kind
        return {"type": kind, "media_id": media_id, "created_at": str(int(self.clock()))}

    def _upload_attachment(self, request: Request) -> dict[str, Any]:
        kind = request.args.get("media_type")
        if kind not in ("image", "video", "file") or request.args.get("attachment_type") not in (
                "1", "2"):
            raise _Err(40058)
        if request.args.get("attachment_type") == "1" and kind == "file":
            raise _Err(40005)  # 朋友圈附件类型，仅支持图片与视频
        data, _ = self._file(request, 10 * 1024 * 1024)
        if kind == "image" and not self._is_image(data):
            raise _Err(40005)
        media_id = self._new_id("att")
        self.attachments[media_id] = kind
        return {"type": kind, "media_id": media_id, "created_at": int(self.clock())}

    # --- 客户群发 -----------------------------------------------------------------------------

    def _check_message(self, body: dict[str, Any]) -> None:
        text = body.get("text")
        content = (text or {}).get("content") if isinstance(text, dict) else None
        attachments = body.get("attachments") or []
        if not isinstance(attachments, list):
            raise _Err(40058)
        if not content and not attachments:
            raise _Err(44004)
        if content is not None and byte_len(content) > 4000:  # "最多4000个字节"
            raise _Err(45002)
        if len(attachments) > 9:  # "最多支持添加9个附件"
            raise _Err(40058, "invalid attachments size, hint: [fake]")
        for att in attachments:
            kind = att.get("msgtype") if isinstance(att, dict) else None
            part = att.get(kind) if kind else None
            if kind not in ("image", "link", "miniprogram", "video", "file") or \
                    not isinstance(part, dict):
                raise _Err(40008)
            if kind == "image":
                if part.get("media_id"):
                    if self.media.get(part["media_id"]) != "image":
                        raise _Err(40007)
                elif part.get("pic_url") not in self.image_urls:
                    # "仅可使用上传图片接口得到的链接"
                    raise _Err(40058, "invalid pic_url, hint: [fake]")
            elif kind == "link":
                if not part.get("title"):
                    raise _Err(41016)
                if not part.get("url"):
                    raise _Err(41010)
                if byte_len(part["title"]) > 128 or byte_len(part.get("desc", "")) > 512 or \
                        byte_len(part["url"]) > 2048 or byte_len(part.get("picurl", "")) > 2048:
                    raise _Err(45002)
            elif kind == "miniprogram":
                if part.get("appid") not in self.miniprogram_appids:
                    raise _Err(90207)
                if not part.get("title") or not part.get("page"):
                    raise _Err(40058)
                if byte_len(part["title"]) > 64:
                    raise _Err(45002)
                if self.media.get(part.get("pic_media_id", "")) != "image":
                    raise _Err(40007)
            elif self.media.get(part.get("media_id", "")) != kind:
                raise _Err(40007)

    @staticmethod
    def _tag_match(customer: Customer, tag_filter: dict[str, Any] | None) -> bool:
        """Tags within a group: any of them; groups: all of them."""
        if not tag_filter:
            return True
        for group in tag_filter.get("group_list") or []:
            if not customer.tags & set(group.get("tag_list") or []):
                return False
        return True

    def _add_msg_template(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        chat_type = body.get("chat_type", "single")
        if chat_type not in ("single", "group"):
            raise _Err(40058)
        sender = body.get("sender")
        if sender is not None and sender not in self.staff:
            raise _Err(40003)
        external = body.get("external_userid")
        tag_filter = body.get("tag_filter")
        if tag_filter is not None:
            groups = tag_filter.get("group_list") if isinstance(tag_filter, dict) else None
            if not isinstance(groups, list) or any(
                    len(g.get("tag_list") or []) > 100 for g in groups):
                raise _Err(40058)
        self._check_message(body)
        targets: dict[str, list[str]] = {}
        fail: list[str] = []
        if chat_type == "group":
            if not sender:
                raise _Err(41009)  # "当类型为发送给客户群时必填" (code uncertain)
            chats = self.groups.get(sender, [])
            wanted = body.get("chat_id_list")
            if wanted is not None:
                if len(wanted) > 2000:
                    raise _Err(40058)
                fail = [c for c in wanted if c not in chats]
                chats = [c for c in chats if c in wanted]
            targets[sender] = list(chats)
        else:
            if external is not None and (not isinstance(external, list) or len(external) > 10000):
                raise _Err(40058)
            if not external and not sender:
                raise _Err(40058)  # "不可与sender同时为空"
            members = [sender] if sender else list(self.staff)
            for member in members:
                customers = self.staff.get(member, {})
                chosen = [c.external_userid for c in customers.values()
                          if (external is None or c.external_userid in external)
                          and self._tag_match(c, tag_filter)]
                if chosen or member == sender:
                    targets[member] = chosen
            if external:
                known = {c for ids in targets.values() for c in ids}
                fail = [e for e in external if e not in known]
                if sender and not known:
                    # None of the addressed customers is the sender's external contact:
                    # 84061 "不存在外部联系人的关系" (global error codes, 90313). Which calls
                    # refuse with it rather than listing them in fail_list is uncertain.
                    raise _Err(84061)
        msgid = self._new_id("msg")
        self.templates[msgid] = Template(
            msgid=msgid, chat_type=chat_type, sender=sender, body=body,
            create_time=int(self.clock()), targets=targets,
            tasks={u: {"status": 0} for u in targets}, results={}, fail_list=fail)
        self.calls.append(("add_msg_template", body))
        return {"fail_list": fail, "msgid": msgid}

    @staticmethod
    def _page(items: list[Any], body: dict[str, Any], default: int, maximum: int
              ) -> tuple[list[Any], str]:
        limit = body.get("limit") or default
        if not isinstance(limit, int) or limit <= 0 or limit > maximum:
            limit = default  # "超过最大值时取默认值"
        try:
            start = int(body.get("cursor") or 0)
        except (TypeError, ValueError):
            raise _Err(40058) from None
        page = items[start:start + limit]
        return page, str(start + limit) if start + limit < len(items) else ""

    def _window(self, body: dict[str, Any]) -> tuple[int, int]:
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int) or end < start:
            raise _Err(40058)
        if end - start > MONTH_SECONDS:
            raise _Err(40058, "invalid time range, hint: [fake]")
        return start, end

    def _groupmsg_list(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        start, end = self._window(body)
        chat_type = body.get("chat_type", "single")
        filter_type = body.get("filter_type", 2)
        creator = body.get("creator")
        rows = []
        for tpl in sorted(self.templates.values(), key=lambda t: t.create_time):
            if tpl.chat_type != chat_type or not start <= tpl.create_time <= end:
                continue
            if filter_type == 1:  # 个人发表: none of these were written by a member
                continue
            if creator:  # templates created through the API have no creator
                continue
            row: dict[str, Any] = {"msgid": tpl.msgid, "create_time": tpl.create_time,
                                   "create_type": 0}
            if "text" in tpl.body:
                row["text"] = tpl.body["text"]
            if tpl.body.get("attachments"):
                row["attachments"] = tpl.body["attachments"]
            rows.append(row)
        page, cursor = self._page(rows, body, 50, 100)
        return {"group_msg_list": page, "next_cursor": cursor}

    def _template(self, body: dict[str, Any]) -> Template:
        tpl = self.templates.get(body.get("msgid") or "")
        if tpl is None:
            raise _Err(40058, "invalid msgid, hint: [fake]")
        if self.clock() - tpl.create_time > MONTH_SECONDS:
            # Results are kept for about a month (uncertain: the documented window applies
            # to the list query; older results are treated as gone here).
            raise _Err(40058, "invalid msgid, hint: [fake]")
        return tpl

    def _groupmsg_task(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        tpl = self._template(body)
        rows = [{"userid": u, **t} for u, t in tpl.tasks.items()]
        page, cursor = self._page(rows, body, 500, 1000)
        return {"task_list": page, "next_cursor": cursor}

    def _send_result(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        tpl = self._template(body)
        userid = body.get("userid")
        if not userid:
            raise _Err(41009)
        if userid not in tpl.targets:
            return {"send_list": [], "next_cursor": ""}
        rows = tpl.results.get(userid)
        if rows is None:  # not confirmed yet: every target is "0 未发送"
            key = "external_userid" if tpl.chat_type == "single" else "chat_id"
            rows = [{key: t, "userid": userid, "status": 0} for t in tpl.targets[userid]]
        page, cursor = self._page(rows, body, 500, 1000)
        return {"send_list": page, "next_cursor": cursor}

    def _remind(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        tpl = self._template(body)
        now = self.clock()
        recent = [t for t in tpl.reminders if t > now - 24 * 3600]
        if len(recent) >= 3:
            # "24小时内每个群发最多触发三次提醒"; the refusing code is not documented.
            raise _Err(45009)
        tpl.reminders.append(now)
        self.calls.append(("remind_groupmsg_send", body))
        return {}

    def _cancel(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        tpl = self._template(body)
        tpl.cancelled = True  # what was already sent stays sent
        self.calls.append(("cancel_groupmsg_send", body))
        return {}

    # --- 朋友圈 -------------------------------------------------------------------------------

    def _moment_by_id(self, moment_id: str) -> Moment | None:
        return next((m for m in self.moments.values() if m.moment_id == moment_id), None)

    def _add_moment_task(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        content = (body.get("text") or {}).get("content") or ""
        attachments = body.get("attachments") or []
        if not content and not attachments:
            raise _Err(44004)
        # "最多支持传入2000个字(4000个字节)，若超出长度报错'invalid text size'" (code uncertain)
        if len(content) > 2000 or byte_len(content) > 4000:
            raise _Err(40058, "invalid text size, hint: [fake]")
        kinds = {a.get("msgtype") for a in attachments if isinstance(a, dict)}
        if len(kinds) > 1:
            raise _Err(40058, "invalid attachments msgtype, hint: [fake]")
        kind = next(iter(kinds), None)
        if kind not in (None, "image", "video", "link"):
            raise _Err(40008)
        if (kind == "image" and len(attachments) > 9) or (
                kind in ("video", "link") and len(attachments) > 1):
            raise _Err(40058, "invalid attachments size, hint: [fake]")
        for att in attachments:
            part = att.get(kind) or {}
            if kind == "link":
                if not part.get("url"):
                    raise _Err(41010)
                if byte_len(part.get("title", "")) > 64:
                    raise _Err(45002)
            wanted = "video" if kind == "video" else "image"
            if (kind in ("image", "video") or part.get("media_id")) and \
                    self.attachments.get(part.get("media_id", "")) != wanted:
                raise _Err(40007)
        visible = body.get("visible_range") or {}
        users = ((visible.get("sender_list") or {}).get("user_list"))
        tags = ((visible.get("external_contact_list") or {}).get("tag_list")) or []
        if users is None:
            users = list(self.staff)  # 未指定: everyone in the app's visible range
        valid = [u for u in users if u in self.staff]
        known_tags = {t for cs in self.staff.values() for c in cs.values() for t in c.tags}
        jobid = self._new_id("job")
        self.moments[jobid] = Moment(
            jobid=jobid, body=body, create_time=int(self.clock()), senders=valid,
            invalid_senders=[u for u in users if u not in self.staff],
            invalid_tags=[t for t in tags if t not in known_tags],
            polls_left=self.moment_polls, visible_tags=[t for t in tags if t in known_tags])
        self.calls.append(("add_moment_task", body))
        return {"jobid": jobid}

    def _moment_result(self, request: Request) -> dict[str, Any]:
        moment = self.moments.get(request.args.get("jobid") or "")
        if moment is None:
            raise _Err(40058, "invalid jobid, hint: [fake]")
        if moment.polls_left > 0:
            moment.polls_left -= 1
            return {"status": 2, "type": "add_moment_task"}
        if moment.moment_id is None:
            moment.moment_id = self._new_id("mom")
        result: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "moment_id": moment.moment_id}
        if moment.invalid_senders:
            result["invalid_sender_list"] = {"user_list": moment.invalid_senders}
        if moment.invalid_tags:
            result["invalid_external_contact_list"] = {"tag_list": moment.invalid_tags}
        return {"status": 3, "type": "add_moment_task", "result": result}

    def _moment_from(self, body: dict[str, Any]) -> Moment:
        moment = self._moment_by_id(body.get("moment_id") or "")
        if moment is None:
            raise _Err(40058, "invalid moment_id, hint: [fake]")
        return moment

    def _moment_task(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        moment = self._moment_from(body)
        rows = [{"userid": u, "publish_status": 1 if u in moment.published else 0}
                for u in moment.senders]
        page, cursor = self._page(rows, body, 500, 1000)
        return {"task_list": page, "next_cursor": cursor}

    def _moment_list(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        start, end = self._window(body)
        if body.get("filter_type", 2) == 1 or body.get("creator"):
            return {"moment_list": [], "next_cursor": ""}
        rows = []
        for moment in sorted(self.moments.values(), key=lambda m: m.create_time):
            if moment.moment_id is None or not start <= moment.create_time <= end:
                continue
            row: dict[str, Any] = {"moment_id": moment.moment_id,
                                   "create_time": moment.create_time, "create_type": 0,
                                   "visible_type": 0 if moment.visible_tags else 1}
            if (moment.body.get("text") or {}).get("content"):
                row["text"] = {"content": moment.body["text"]["content"]}
            atts = moment.body.get("attachments") or []
            images = [a["image"] for a in atts if a.get("msgtype") == "image"]
            if images:
                row["image"] = [{"media_id": i["media_id"]} for i in images]
            links = [a["link"] for a in atts if a.get("msgtype") == "link"]
            if links:
                row["link"] = {"title": links[0].get("title", ""), "url": links[0]["url"]}
            rows.append(row)
        page, cursor = self._page(rows, body, 20, 20)
        return {"moment_list": page, "next_cursor": cursor}

    def _moment_send_result(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        moment = self._moment_from(body)
        userid = body.get("userid")
        if not userid:
            raise _Err(41009)
        if userid not in moment.published:
            return {"customer_list": [], "next_cursor": ""}
        rows = [{"external_userid": c.external_userid}
                for c in self.staff.get(userid, {}).values()
                if c.friend and (not moment.visible_tags or c.tags & set(moment.visible_tags))]
        page, cursor = self._page(rows, body, 500, 5000)
        return {"customer_list": page, "next_cursor": cursor}
