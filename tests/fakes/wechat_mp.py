"""Fake 微信公众号 API (api.weixin.qq.com) for the `wechat_mp` channel: stable_token, image and
cover uploads, 草稿箱 draft/add, 发布 freepublish/submit + get, 群发 mass/sendall + get + preview.

Paths, fields and errcodes follow developers.weixin.qq.com/doc/offiaccount/ (全局返回码
Getting_Started/Global_Return_Code; Draft_Box/Add_draft; Publish/Publish; Message_Management/
Batch_Sends_and_Originality_Checks). Where the docs leave a rule open it is marked "uncertain".

Statistics (datacube/getarticletotaldetail, datacube/getbizsummary) and comments (comment/list):
every sendall or freepublish/submit registers its articles under msg_data_id + index; tests add
running totals (`add_stats`), comments (`add_comment`), close comments (`close_comments`, 88000),
say the figures are late (`delayed`) and set the account summary (`biz`). Articles with fewer
than `omit_below` interactions are left out of the reply, as WeChat is reported to do
(uncertain: not in the docs). `api_per_minute` limits every API call per minute (45011).

Test controls: `verified=False` makes freepublish answer 48001; `protection=True` (群发保护)
holds every mass send in "PROTECTED" until `admin_confirms(msg_id)`; `finish_publish(id,
status)` ends a freepublish; `stall_after_send` holds the sendall reply after the send counted.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from .server import FakeService, byte_len

TOKEN_SECONDS = 7200
MESSAGES = {
    40001: "invalid credential, access_token is invalid or not latest",
    40007: "invalid media_id",
    40003: "invalid openid",
    40013: "invalid appid",
    40125: "invalid appsecret",
    40132: "invalid wxname",
    40164: "invalid ip 203.0.113.9, not in whitelist",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44003: "empty news data",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45028: "has no masssend quota",
    45065: "clientmsgid exist",
    45166: "invalid content",
    47001: "data format error",
    48001: "api unauthorized",
    61500: "date format error",
    61501: "date range error",
    87014: "risky content",
    88000: "without comment privilege",
}
BEIJING = ZoneInfo("Asia/Shanghai")
FIGURES = ("read_user", "share_user", "like_user", "zaikan_user", "comment_count",
           "collection_user")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Err(Exception):
    def __init__(self, code: int, msg: str | None = None, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg or MESSAGES.get(code, "error")
        self.extra = extra


# A 1x1 PNG, served at /img/<name>.png so articles can carry images on loopback.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


class FakeWeChatMP(FakeService):
    per_minute = 10_000

    def __init__(self, app_id: str = "wx-fake-app", secret: str = "mp-secret") -> None:
        super().__init__()
        self.app_id = app_id
        self.secret = secret
        self.verified = True
        self.protection = False
        self.allowed_ip = True
        self.quota = 100  # mass sends left (45028 when 0)
        self.risky_words: set[str] = {"违禁词"}
        self.tokens: dict[str, float] = {}  # token -> expires_at
        self.current_token: str | None = None
        self.token_requests = 0
        self.forced_refreshes = 0
        # Tokens WeChat stopped accepting (40001) while stable_token without force_refresh
        # still hands them out until they expire: the caveat a refresh must handle.
        self.revoked: set[str] = set()
        self.images: set[str] = set()
        self.thumbs: set[str] = set()
        self.drafts: dict[str, list[dict[str, Any]]] = {}
        self.publishes: dict[str, dict[str, Any]] = {}  # publish_id -> state
        self.mass: dict[int, dict[str, Any]] = {}  # msg_id -> state
        self.clientmsgids: dict[str, int] = {}
        self.sends = 0  # real mass sends (not refused duplicates)
        self.previews: list[dict[str, Any]] = []
        # Followers a preview can reach: by 微信号 (towxname) and by openid (touser).
        self.follower_wxnames: set[str] = {"marketer_wx", "approver_wx"}
        self.follower_openids: set[str] = {"oFollower000000000000000001"}
        self.calls: list[str] = []
        self.stall_after_send = False
        self.sent = threading.Event()
        self.release = threading.Event()
        self._ids = itertools.count(1000)
        # Statistics: (msg_data_id, idx from 1) -> article state.
        self.articles: dict[tuple[int, int], dict[str, Any]] = {}
        self.biz: dict[str, dict[str, int]] = {}  # ref_date -> getbizsummary detail
        self.delayed = False
        self.omit_below = 3
        self.api_per_minute: int | None = None
        self._comment_ids = itertools.count(1)

    # --- controls ----------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    def revoke_token(self) -> str | None:
        """The current token is refused from now on (40001), yet stable_token keeps returning
        it unless asked with force_refresh (as when another system fetched a token with
        /cgi-bin/token, which invalidates the stable one)."""
        with self._lock:
            if self.current_token:
                self.revoked.add(self.current_token)
            return self.current_token

    def finish_publish(self, publish_id: str, status: int = 0) -> None:
        with self._lock:
            self.publishes[publish_id]["status"] = status

    def admin_confirms(self, msg_id: int) -> None:
        with self._lock:
            self.mass[int(msg_id)]["status"] = "SEND_SUCCESS"

    def finish_mass(self, msg_id: int, status: str = "SEND_SUCCESS") -> None:
        with self._lock:
            self.mass[int(msg_id)]["status"] = status

    def yesterday(self) -> date:
        """The latest day statistics exist for, in WeChat's own calendar (Beijing)."""
        return datetime.fromtimestamp(self.clock(), BEIJING).date() - timedelta(days=1)

    def add_stats(self, msg_data_id: int, idx: int = 1, stat_date: str | None = None,
                  **figures: int) -> None:
        """Running totals of one article from its publish date to `stat_date`."""
        with self._lock:
            article = self.articles[(int(msg_data_id), idx)]
            day = stat_date or self.yesterday().isoformat()
            article["stats"][day] = {**dict.fromkeys(FIGURES, 0), **figures}

    def add_comment(self, msg_data_id: int, content: str, idx: int = 1,
                    create_time: int | None = None, reply: str | None = None) -> int:
        with self._lock:
            article = self.articles[(int(msg_data_id), idx)]
            cid = next(self._comment_ids)
            comment: dict[str, Any] = {
                "user_comment_id": cid, "create_time": int(create_time or self.clock()),
                "content": content, "comment_type": 0, "openid": f"o-fake-{cid}"}
            if reply:
                comment["reply"] = {"content": reply, "create_time": int(self.clock())}
            article["comments"].append(comment)
            return cid

    def close_comments(self, msg_data_id: int, idx: int = 1) -> None:
        with self._lock:
            self.articles[(int(msg_data_id), idx)]["comments_open"] = False

    def _register(self, msg_data_id: int, media_id: str, publish_type: int) -> None:
        ref_date = datetime.fromtimestamp(self.clock(), BEIJING).date().isoformat()
        for idx, article in enumerate(self.drafts.get(media_id) or [], start=1):
            self.articles[(msg_data_id, idx)] = {
                "title": article.get("title") or "", "ref_date": ref_date,
                "publish_type": publish_type, "stats": {}, "comments": [],
                "comments_open": bool(article.get("need_open_comment")),
                "url": f"https://mp.weixin.qq.com/s?__biz=FAKE&mid={msg_data_id}&idx={idx}"}

    # --- plumbing ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/img/"):
            return Response(PNG, content_type="image/png")(environ, start_response)
        return super().__call__(environ, start_response)

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        routes = {
            "/cgi-bin/stable_token": self._stable_token,
            "/cgi-bin/media/uploadimg": self._uploadimg,
            "/cgi-bin/material/add_material": self._add_material,
            "/cgi-bin/draft/add": self._draft_add,
            "/cgi-bin/freepublish/submit": self._submit,
            "/cgi-bin/freepublish/get": self._publish_get,
            "/cgi-bin/message/mass/sendall": self._sendall,
            "/cgi-bin/message/mass/get": self._mass_get,
            "/cgi-bin/message/mass/preview": self._preview,
            "/datacube/getarticletotaldetail": self._article_total_detail,
            "/datacube/getbizsummary": self._biz_summary,
            "/cgi-bin/comment/list": self._comment_list,
        }
        route = routes.get(request.path)
        if route is None or request.method != "POST":
            return {"errcode": 404, "errmsg": "not found"}, 404
        try:
            try:
                if not self.allowed_ip:
                    raise _Err(40164)
                if request.path != "/cgi-bin/stable_token":
                    self._auth(request)
                    if not self._api_rate_ok():
                        raise _Err(45011)
                forced = self.next_failure()
                if forced is not None:
                    raise _Err(forced)
                with self._lock:
                    self.calls.append(request.path)
                    reply = route(request)
            except _Err as exc:
                return {"errcode": exc.code, "errmsg": exc.msg, **exc.extra}, 200
            if self.stall_after_send and request.path.endswith("sendall"):
                self.sent.set()
                self.release.wait(60)
            return {"errcode": 0, "errmsg": "ok", **reply}, 200
        finally:
            request.close()

    def _api_rate_ok(self) -> bool:
        """`api_per_minute` calls per sliding minute for the whole AppID (45011 beyond)."""
        if self.api_per_minute is None:
            return True
        now = self.clock()
        with self._lock:
            window = self._sent["api"]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.api_per_minute:
                return False
            window.append(now)
            return True

    def _auth(self, request: Request) -> None:
        token = request.args.get("access_token")
        if not token:
            raise _Err(41001)
        expires = self.tokens.get(token)
        if expires is None or token in self.revoked:
            raise _Err(40001)
        if self.clock() >= expires:
            raise _Err(42001)

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise _Err(47001) from None
        if not isinstance(data, dict):
            raise _Err(47001)
        return data

    # --- token and media ---------------------------------------------------------------------

    def _stable_token(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        if body.get("grant_type") != "client_credential":
            raise _Err(40002, "invalid grant_type")
        if body.get("appid") != self.app_id:
            raise _Err(40013)
        if body.get("secret") != self.secret:
            raise _Err(40125)
        self.token_requests += 1
        # Stable token: the same token while valid unless force_refresh (uncertain whether a
        # forced refresh invalidates the old one at once; the docs say it stays 5 minutes).
        # The service's idea of "valid" is its expiry: a revoked token is still handed out.
        force = body.get("force_refresh")
        if force is not None and not isinstance(force, bool):
            raise _Err(47001)
        if force:
            self.forced_refreshes += 1
        current = self.current_token
        if current and self.tokens.get(current, 0) > self.clock() and not force:
            return {"access_token": current,
                    "expires_in": int(self.tokens[current] - self.clock())}
        token = f"mptok-{next(self._ids)}-{int(time.time() * 1000)}"
        self.tokens[token] = self.clock() + TOKEN_SECONDS
        self.current_token = token
        return {"access_token": token, "expires_in": TOKEN_SECONDS}

    @staticmethod
    def _file(request: Request, limit: int) -> bytes:
        upload = request.files.get("media")
        data = upload.read() if upload is not None else b""
        if not data:
            raise _Err(44001, "empty media data")
        if len(data) > limit:
            raise _Err(40009, "invalid image size")
        if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            raise _Err(40005, "invalid file type")
        return data

    def _uploadimg(self, request: Request) -> dict[str, Any]:
        self._file(request, 1024 * 1024)  # "仅支持jpg/png格式，大小必须在1MB以下"
        url = f"http://mmbiz.qpic.cn/fake/{next(self._ids)}/0"
        self.images.add(url)
        return {"url": url}

    def _add_material(self, request: Request) -> dict[str, Any]:
        kind = request.args.get("type")
        if kind not in ("image", "thumb"):
            raise _Err(40004, "invalid media type")
        self._file(request, 64 * 1024 if kind == "thumb" else 10 * 1024 * 1024)
        media_id = f"thumb-{next(self._ids)}"
        self.thumbs.add(media_id)
        return {"media_id": media_id, "url": f"http://mmbiz.qpic.cn/fake/{media_id}"}

    # --- drafts and publishing ---------------------------------------------------------------

    def _draft_add(self, request: Request) -> dict[str, Any]:
        articles = self._json(request).get("articles")
        if not isinstance(articles, list) or not articles:
            raise _Err(44003)
        if len(articles) > 8:
            # 多图文 holds at most 8 articles. The draft/add page does not name the errcode;
            # the global list's 45008 "图文消息超过限制" (article size out of limit) is the
            # documented one for this (uncertain for draft/add: Getting_Started/
            # Global_Return_Code).
            raise _Err(45008)
        for a in articles:
            if not isinstance(a, dict) or not a.get("title") or not a.get("content"):
                raise _Err(44003)
            # Limits from Draft_Box/Add_draft; the errcode for a breach is not documented
            # (uncertain: 45166 "invalid content" is what the service is reported to answer).
            if len(a["title"]) > 32 or len(a.get("author") or "") > 16 or \
                    len(a.get("digest") or "") > 128:
                raise _Err(45166, "invalid content hint: [title/author/digest size]")
            if len(a["content"]) >= 20000 or byte_len(a["content"]) >= 1024 * 1024:
                raise _Err(45166, "invalid content hint: [content size]")
            if "<script" in a["content"].lower():
                raise _Err(45166)
            if a.get("thumb_media_id") not in self.thumbs:
                raise _Err(40007)
            for word in self.risky_words:
                if word in a["title"] or word in a["content"]:
                    raise _Err(87014)
        media_id = f"draft-{next(self._ids)}"
        self.drafts[media_id] = articles
        return {"media_id": media_id}

    def _submit(self, request: Request) -> dict[str, Any]:
        if not self.verified:
            raise _Err(48001)
        media_id = self._json(request).get("media_id")
        if media_id not in self.drafts:
            raise _Err(40007)
        publish_id = str(next(self._ids))
        self.publishes[publish_id] = {"media_id": media_id, "status": 1}
        # 发布 does not notify followers: publish_type 1 (未开启通知) in the statistics.
        self._register(int(publish_id), str(media_id), 1)
        return {"publish_id": publish_id, "msg_data_id": int(publish_id)}

    def _publish_get(self, request: Request) -> dict[str, Any]:
        publish_id = str(self._json(request).get("publish_id") or "")
        state = self.publishes.get(publish_id)
        if state is None:
            raise _Err(40007)
        reply: dict[str, Any] = {"publish_id": publish_id, "publish_status": state["status"]}
        if state["status"] == 0:
            article_id = f"art-{publish_id}"
            reply["article_id"] = article_id
            count = len(self.drafts[state["media_id"]])
            reply["article_detail"] = {"count": count, "item": [
                {"idx": i, "article_url": self.article_url(article_id, i)}
                for i in range(1, count + 1)]}
        return reply

    @staticmethod
    def article_url(article_id: str, idx: int) -> str:
        # The first article keeps the short form existing tests know; the others carry idx
        # as WeChat's long links do (…&idx=2&…).
        base = f"https://mp.weixin.qq.com/s/{article_id}"
        return base if idx == 1 else f"{base}?idx={idx}"

    # --- mass send ---------------------------------------------------------------------------

    def _mpnews(self, body: dict[str, Any]) -> str:
        if body.get("msgtype") != "mpnews":
            raise _Err(40008, "invalid message type")
        media_id = (body.get("mpnews") or {}).get("media_id")
        if media_id not in self.drafts:
            raise _Err(40007)
        return str(media_id)

    def _sendall(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        media_id = self._mpnews(body)
        flt = body.get("filter")
        if not isinstance(flt, dict) or ("is_to_all" not in flt):
            raise _Err(47001)
        if not flt["is_to_all"] and not isinstance(flt.get("tag_id"), int):
            raise _Err(47001)
        clientmsgid = body.get("clientmsgid")
        if clientmsgid is not None:
            if not isinstance(clientmsgid, str) or len(clientmsgid) > 64:
                raise _Err(47001)
            if clientmsgid in self.clientmsgids:
                # "若 clientmsgid 已存在…会返回 45065 以及已存在的 msg_id" (24 hours).
                raise _Err(45065, msg_id=self.clientmsgids[clientmsgid])
        if self.quota <= 0:
            raise _Err(45028)
        self.quota -= 1
        msg_id = next(self._ids)
        self.sends += 1
        self.mass[msg_id] = {"media_id": media_id, "filter": flt,
                             "status": "PROTECTED" if self.protection else "SENDING"}
        if clientmsgid:
            self.clientmsgids[clientmsgid] = msg_id
        self._register(msg_id + 1, media_id, 0)  # 群发 notifies: publish_type 0 (已通知)
        return {"msg_id": msg_id, "msg_data_id": msg_id + 1}

    def _mass_get(self, request: Request) -> dict[str, Any]:
        msg_id = self._json(request).get("msg_id")
        state = self.mass.get(int(msg_id or 0))
        if state is None:
            raise _Err(40007, "invalid msg_id")
        # The documented statuses are SEND_SUCCESS / SENDING / SEND_FAIL / DELETE; what
        # mass/get answers while 群发保护 waits for an admin is not documented (uncertain):
        # the fake says "PROTECTED".
        return {"msg_id": int(msg_id), "msg_status": state["status"]}

    def _preview(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        self._mpnews(body)
        # "touser、towxname二选一", towxname wins when both are given (Batch_Sends 预览接口).
        wxname, openid = body.get("towxname"), body.get("touser")
        if wxname:
            # 微信号 rules: 6–20 letters, digits, - or _, starting with a letter → else 40132
            # 微信号不合法. A valid id that does not follow the account: 43004 需要接收者关注
            # (global return codes; which of the two WeChat answers for an unknown but
            # well-formed id is uncertain — 43004 is modelled).
            if not isinstance(wxname, str) or not _WXNAME.fullmatch(wxname):
                raise _Err(40132)
            if wxname not in self.follower_wxnames:
                raise _Err(43004)
        elif openid:
            if openid not in self.follower_openids:
                raise _Err(40003)
        else:
            raise _Err(40003)
        self.previews.append(body)
        return {"msg_id": next(self._ids)}

    # --- statistics and comments -------------------------------------------------------------

    def _dates(self, request: Request, max_days: int) -> tuple[date, date]:
        """begin_date/end_date as the datacube APIs check them: YYYY-MM-DD (61500), end not
        before begin, not after yesterday (Beijing) and within the API's span (61501)."""
        body = self._json(request)
        values = []
        for name in ("begin_date", "end_date"):
            value = body.get(name)
            if not isinstance(value, str) or not _DATE.match(value):
                raise _Err(61500)
            try:
                values.append(date.fromisoformat(value))
            except ValueError:
                raise _Err(61500) from None
        begin, end = values
        if end < begin or end > self.yesterday() or (end - begin).days >= max_days:
            raise _Err(61501)
        return begin, end

    def _article_total_detail(self, request: Request) -> dict[str, Any]:
        # The largest span this API takes is not documented (uncertain); the older article
        # APIs took one day, and one day is what the fake allows.
        begin, end = self._dates(request, 1)
        last = self.yesterday().isoformat()
        out = []
        for (msg_data_id, idx), article in sorted(self.articles.items()):
            if not begin.isoformat() <= article["ref_date"] <= end.isoformat():
                continue
            days = sorted(d for d in article["stats"] if d <= last)
            latest = article["stats"][days[-1]] if days else dict.fromkeys(FIGURES, 0)
            if sum(latest.values()) < self.omit_below:
                continue  # "fewer than 3 interactions are not counted" (uncertain)
            out.append({
                "ref_date": article["ref_date"], "msgid": f"{msg_data_id}_{idx}",
                # No title or URL: the real reply has only these four fields (a developer's
                # capture, community board, March 2026).
                "publish_type": article["publish_type"],
                "detail_list": [{"stat_date": d, **article["stats"][d],
                                 "read_user_source": [{"user_source": 99999999,
                                                       "read_user": article["stats"][d][
                                                           "read_user"]}]}
                                for d in days]})
        return {"list": out, "is_delay": self.delayed}

    def _biz_summary(self, request: Request) -> dict[str, Any]:
        begin, end = self._dates(request, 30)
        out = []
        day = begin
        while day <= end:
            detail = {**dict.fromkeys(FIGURES, 0), **self.biz.get(day.isoformat(), {})}
            out.append({"ref_date": day.isoformat(), "detail": detail})
            day += timedelta(days=1)
        return {"list": out, "is_delay": self.delayed}

    def _comment_list(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        msg_data_id, index = body.get("msg_data_id"), body.get("index", 0)
        begin, count = body.get("begin"), body.get("count")
        if not all(isinstance(v, int) and not isinstance(v, bool)
                   for v in (msg_data_id, index, begin, count)):
            raise _Err(47001)
        # "获取数目（>=50会被拒绝）": the errcode of the refusal is not documented (uncertain).
        if begin < 0 or not 0 < count < 50 or body.get("type") not in (0, 1, 2):
            raise _Err(47001)
        article = self.articles.get((msg_data_id, index + 1))  # index counts from 0
        if article is None:
            raise _Err(40007, "invalid msg_data_id")  # uncertain errcode
        if not article["comments_open"]:
            raise _Err(88000)
        kind = body["type"]
        comments = [c for c in article["comments"]
                    if kind == 0 or (kind == 2) == bool(c["comment_type"])]
        return {"total": len(comments), "comment": comments[begin:begin + count]}


_WXNAME = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}")
