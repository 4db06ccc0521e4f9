"""公众号 statistics the day after: per-article totals, the account's daily summary and the
articles' comments, for `WeChatMPAdapter.fetch_daily_stats` (kept apart from the sending side).

Docs (developers.weixin.qq.com/doc/subscription/api/wedata/news/…):
- 获取发表内容发表详细数据 getarticletotaldetail (api_getarticletotaldetail): POST
  {begin_date, end_date} ("结束日期(最大值为昨日)") → {list: [{ref_date (the publish date),
  msgid: "<msg_data_id>_<index>", publish_type (0 已通知 = mass send, 1 未开启通知 =
  freepublish; 2 is seen in replies but not documented), detail_list: [{stat_date,
  read_user, share_user,
  zaikan_user, like_user, comment_count, collection_user, …}]}], is_delay}. Each detail_list
  entry holds what happened from the publish date to its stat_date, for at most 30 days
  ("每篇发表内容在统计周期内(最大30天)"), so the latest stat_date is the running total.
- 获取发表内容概况总数据 getbizsummary (api_getbizsummary): the account's figures per day.
- 查看指定文章的评论数据 comment/list (doc/service/api/leaving/api_listcomment): POST
  {msg_data_id, index (from 0), begin, count (">=50会被拒绝"), type: 0 (all)} → {total,
  comment: [{user_comment_id, create_time, content, comment_type, openid, reply}]}.
- The datacube pages ask to "请在每日8:00后查询昨日数据" (Beijing time).

Uncertain, and how it is handled:
- msgid's index is 1-based ("3表示5个中的第3个") while comment/list's index is 0-based
  ("从0开始"); both read as documented.
- Whether the msg_data_id of freepublish/submit is the msgid of the statistics is not stated
  (the 群发 page says so for sendall). A reply carries no title or URL (a developer's capture
  of March 2026 on the community board shows only ref_date, msgid, publish_type and
  detail_list), so a post without a known id (a 群发 recovered through 45065 learns only
  msg_id) is matched only when its publish date holds exactly one notified (publish_type 0)
  message not claimed by another post — the 订阅号 sends one a day — at the post's article
  index; the id is then written back. Otherwise it is shown as not matched.
- WeChat is reported to leave out articles with fewer than 3 interactions; the docs do not
  say so. An article missing from a complete (is_delay=false) reply is marked
  `reported: false` and the pages say WeChat reported nothing, rather than showing a bare 0.
- The errcode of comment/list for an article whose comments are closed: 88000 ("without
  comment privilege", as developers report it; not in the global return code page). It means
  "no comments to read", not a failure.
- Mapping: reads = read_user (readers, not page views), shares = share_user, likes =
  like_user (拇指赞) + zaikan_user (爱心赞 / 在看): both are a reader's "like" in the 公众号
  UI. Comments come from comment/list, one event per comment (re-pulls count once); the
  statistics' comment_count is used only where WeChat refuses to list them (88000), so the
  two never add up to a double count.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from .base import DailyStats, PostDailyStats, StatsPost

BEIJING = ZoneInfo("Asia/Shanghai")
STATS_DAYS = 30          # getarticletotaldetail counts at most 30 days after publishing
COMMENT_PAGE = 49        # comment/list refuses count >= 50
MAX_COMMENT_PAGES = 40   # at most ~2,000 comments per article and day
COMMENTS_CLOSED = 88000
# Figures of one detail_list entry kept on the post (progress["wx_stats"]).
FIGURES = ("read_user", "share_user", "like_user", "zaikan_user", "comment_count",
           "collection_user")


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def parse_msgid(value: Any) -> tuple[str, int] | None:
    """"2247490098_1" → ("2247490098", 1)."""
    head, _, tail = str(value or "").partition("_")
    if not head.isdigit() or not tail.isdigit():
        return None
    return head, int(tail)


def mid_from_url(url: str | None) -> tuple[str, int] | None:
    """An article URL of the long form carries mid (= msg_data_id) and idx."""
    if not url:
        return None
    query = parse_qs(urlsplit(url).query)
    mid, idx = (query.get("mid") or [""])[0], (query.get("idx") or ["1"])[0]
    if mid.isdigit() and idx.isdigit():
        return mid, int(idx)
    return None


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _article(item: dict[str, Any], day: date) -> dict[str, Any] | None:
    ids = parse_msgid(item.get("msgid"))
    if ids is None:
        return None
    details = [d for d in item.get("detail_list") or []
               if isinstance(d, dict) and str(d.get("stat_date") or "") <= day.isoformat()]
    latest = max(details, key=lambda d: str(d.get("stat_date") or ""), default={})
    figures = {name: _int(latest.get(name)) for name in FIGURES}
    return {"msg_data_id": ids[0], "idx": ids[1],
            "publish_type": _int(item.get("publish_type")),
            "stat_date": str(latest.get("stat_date") or ""), **figures}


def _known_ids(post: StatsPost) -> tuple[str, int] | None:
    msg_data_id = str(post.progress.get("msg_data_id") or "")
    if msg_data_id.isdigit():
        return msg_data_id, _int(post.progress.get("idx")) or 1
    return mid_from_url(post.url)


class DailyStatsMixin:
    """fetch_daily_stats for WeChatMPAdapter (needs its `api()` and `config`)."""

    config: dict[str, Any]

    def fetch_daily_stats(self, posts: list[StatsPost], day: date) -> DailyStats:
        api = self.api()  # type: ignore[attr-defined]
        result = DailyStats(day=day)
        by_date: dict[date, list[StatsPost]] = defaultdict(list)
        for post in posts:
            if day - timedelta(days=STATS_DAYS - 1) <= post.published_on <= day:
                by_date[post.published_on].append(post)
        for ref_date in sorted(by_date):
            iso = ref_date.isoformat()
            # One publish date per call: the doc gives no maximum range for this API.
            reply = api.call("/datacube/getarticletotaldetail",
                             body={"begin_date": iso, "end_date": iso})
            delayed = bool(reply.get("is_delay"))
            result.delayed = result.delayed or delayed
            articles = [a for a in (_article(i, day) for i in reply.get("list") or []
                                    if isinstance(i, dict) and
                                    str(i.get("ref_date") or iso) == iso) if a]
            for post, article, learnt in self._match(by_date[ref_date], articles):
                if article is None:
                    if not delayed:
                        # Not named in a complete reply: WeChat has nothing for it (yet).
                        result.posts[post.post_id] = PostDailyStats(
                            reported=False, progress={"wx_stats": {
                                "reported": False, "day": day.isoformat()}})
                    continue
                result.posts[post.post_id] = self._post_stats(api, article, learnt, day)
        summary = api.call("/datacube/getbizsummary", body={
            "begin_date": day.isoformat(), "end_date": day.isoformat()})
        result.delayed = result.delayed or bool(summary.get("is_delay"))
        for entry in summary.get("list") or []:
            if isinstance(entry, dict) and entry.get("ref_date") == day.isoformat():
                detail = entry.get("detail") or {}
                result.summary = {name: _int(detail.get(name)) for name in FIGURES}
        return result

    @staticmethod
    def _match(posts: list[StatsPost], articles: list[dict[str, Any]]
               ) -> list[tuple[StatsPost, dict[str, Any] | None, bool]]:
        """Pair posts with the articles of their publish date: by msg_data_id + index when
        the post knows them, else (a 群发 recovered through 45065 only learns msg_id) when the
        date holds exactly one unclaimed notified message, at the post's index. `learnt` =
        ids found that way."""
        by_id = {(a["msg_data_id"], a["idx"]): a for a in articles}
        claimed: set[tuple[str, int]] = set()
        out: list[tuple[StatsPost, dict[str, Any] | None, bool]] = []
        unknown: list[StatsPost] = []
        for post in posts:
            ids = _known_ids(post)
            if ids is None:
                unknown.append(post)
                continue
            claimed.add(ids)
            out.append((post, by_id.get(ids), False))
        taken = {msg for msg, _ in claimed}
        notified = {a["msg_data_id"] for a in articles
                    if a["publish_type"] == 0 and a["msg_data_id"] not in taken}
        only = next(iter(notified)) if len(notified) == 1 else None
        for post in unknown:
            idx = _int(post.progress.get("idx")) or 1
            article = by_id.get((only, idx)) if only is not None else None
            if article is not None and (only, idx) not in claimed:
                claimed.add((only, idx))
                out.append((post, article, True))
            else:
                out.append((post, None, False))
        return out

    def _post_stats(self, api: Any, article: dict[str, Any], learnt: bool,
                    day: date) -> PostDailyStats:
        stats = PostDailyStats(totals={
            "reads": article["read_user"], "shares": article["share_user"],
            "likes": article["like_user"] + article["zaikan_user"]})
        wx = {"reported": True, "day": day.isoformat(), "stat_date": article["stat_date"],
              "publish_type": article["publish_type"],
              **{name: article[name] for name in FIGURES}}
        comments = self._comments(api, article["msg_data_id"], article["idx"])
        if comments is None:
            wx["comments_open"] = False
            stats.totals["comments"] = article["comment_count"]
        else:
            stats.comments = comments
        stats.progress = {"wx_stats": wx}
        if learnt:
            stats.progress.update(msg_data_id=article["msg_data_id"], idx=article["idx"])
        return stats

    def _comments(self, api: Any, msg_data_id: str, idx: int) -> list[dict[str, Any]] | None:
        """Every comment of one article as ingest events (None: comments are closed).
        The commenter's openid is not kept: ContentOps does not need to know who it was."""
        app_id = str(self.config.get("app_id") or "")
        events: list[dict[str, Any]] = []
        begin = 0
        for _page in range(MAX_COMMENT_PAGES):
            reply = api.call("/cgi-bin/comment/list", body={
                "msg_data_id": int(msg_data_id), "index": idx - 1, "begin": begin,
                "count": COMMENT_PAGE, "type": 0}, accept=(COMMENTS_CLOSED,))
            if int(reply.get("errcode") or 0) == COMMENTS_CLOSED:
                return None
            page = [c for c in reply.get("comment") or [] if isinstance(c, dict)]
            for c in page:
                cid = c.get("user_comment_id")
                text = str(c.get("content") or "").strip()
                if cid is None or not text:
                    continue
                event = {"event_id": f"wxmp:{app_id}:{msg_data_id}:{idx}:{cid}",
                         "kind": "comment", "text": text[:5000]}
                if _int(c.get("create_time")):
                    event["occurred_at"] = datetime.fromtimestamp(
                        _int(c.get("create_time")), UTC).isoformat()
                events.append(event)
            begin += len(page)
            if not page or begin >= _int(reply.get("total")):
                break
        return events
