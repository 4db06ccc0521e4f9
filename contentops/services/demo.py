"""Realistic private-domain demo data: audiences, styles, channels, campaigns, ~60 pieces.

Pieces are spread over the previous and the current month (a few run into the next), in every
review state, with posts in the states a real team sees: published posts carry metric totals
so the post list, calendar and analytics have something to show on first start.

Loading is idempotent: taxonomy records are found by name, and the pieces are added only once
(an audit event marks the load); with `only_if_empty` nothing happens when any piece exists.
Future posts that would really go out are only put on channels that stay on this machine (the
web channel, manual tasks), so a demo never sends anything anywhere.
"""

from __future__ import annotations

import calendar
import random
import secrets
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..channels.registry import kinds as channel_kinds
from ..errors import ValidationError
from ..models import (
    AuditEvent,
    Channel,
    ChannelDailyStats,
    ContentPiece,
    PieceRevision,
    Post,
    Tag,
    User,
)
from ..security import hash_password
from ..timeutil import utcnow
from . import audit, taxonomy

MARKER = "demo.loaded"
TEAM_ZONE = "Asia/Shanghai"

AUDIENCES = [
    ("新会员", "近 30 天注册的会员：先建立信任，介绍品牌与会员权益。"),
    ("高价值复购", "近半年复购 3 次以上、客单价高的老客：新品优先、专属福利。"),
    ("沉睡用户", "90 天未下单的会员：唤醒召回，限时券与好物回顾。"),
    ("宝妈社群", "母婴社群里的妈妈们：实用育儿好物、拼团与经验分享。"),
    ("学生党", "预算有限、爱尝鲜：性价比、开学季与宿舍好物。"),
    ("企业客户", "团购与福利采购的 HR、行政：方案、资质与批量价。"),
]

STYLES = [
    ("亲切", "像朋友一样聊天。",
     "用“你”称呼读者；句子短；多用生活场景；一条只讲一件事；结尾给一个轻松的行动建议。"),
    ("专业", "有依据、讲清楚。",
     "先给结论再给依据；数据注明来源；避免夸大用语（最、第一）；术语第一次出现时解释。"),
    ("幽默", "轻松有梗，但不冒犯。",
     "一个梗就够；不拿读者开玩笑；表情符号最多两个；促销信息仍要清楚写出时间和规则。"),
    ("正式", "公告与通知的语气。",
     "称呼“尊敬的会员”；时间、地点、规则逐条列出；不用网络用语；落款写品牌全称。"),
    ("故事化", "用一个真实的人或场景带出产品。",
     "开头三句内出现人物和冲突；产品是解决问题的一部分，不是主角；结尾回到人物。"),
]

TAGS = ["新品", "福利", "会员日", "育儿", "开学季", "团购", "直播", "教程", "节日"]

TITLES = [
    "{season}上新：{product}首发，会员抢先看",
    "一张图看懂{product}怎么选",
    "本周会员日：{product}限时 8 折",
    "好久不见，这份{product}回归礼包留给你",
    "宝妈实测：{product}真的省心吗？",
    "宿舍党必备：百元内的{product}清单",
    "企业福利采购：{product}团购方案",
    "直播预告：周五晚 8 点聊聊{product}",
    "用户故事｜她用{product}找回了周末",
    "{product}保养小课堂：三步延长寿命",
    "新会员专享：首单{product}立减 20 元",
    "{season}穿搭灵感：{product}这样搭",
]
PRODUCTS = ["保温杯", "羊毛围巾", "空气炸锅", "儿童绘本", "降噪耳机", "手冲咖啡套装",
            "护手霜礼盒", "电动牙刷", "瑜伽垫", "香薰蜡烛", "旅行收纳包", "智能台灯"]
SEASONS = ["冬日", "秋冬", "年末", "暖冬"]

BODY = """## {title}

{opening}

- **适合谁**：{audience}
- **时间**：{when}
- **怎么参与**：回复「{keyword}」或点击文末链接

{closing}
"""
OPENINGS = {
    "亲切": "天冷了，你是不是也想找点让日子暖一点的小东西？这次我们挑了几样大家问得最多的。",
    "专业": "结论先行：这次推荐的款式在保温时长、重量和清洁难度三项上表现均衡，下面是对比。",
    "幽默": "据不完全统计，冬天起床的难度相当于周一早上开会乘以二。好消息是，我们带来了帮手。",
    "正式": "尊敬的会员：为感谢您一直以来的支持，现将本期会员活动安排通知如下。",
    "故事化": "小林是一家设计公司的项目经理，上个月她连续三周加班，直到她给自己换了一个习惯。",
}
CLOSINGS = ["有问题随时在群里喊我们。", "名额有限，先到先得。", "期待你的反馈，我们每条都看。",
            "下周同一时间，我们再见。"]

# WeCom userids of the demo's staff who confirm 客户群发 on their phones.
DEMO_SENDERS = ("linxiaoyu", "zhangwei", "chenhao")

# Channels the demo creates, by kind; only kinds this installation has are used.
CHANNELS = [
    ("品牌博客", "web", "#198754", {}),
    ("朋友圈", "manual", "#fd7e14", {"deadline_hours": 24}),
    ("宝妈 1 群", "manual", "#d63384", {"deadline_hours": 48}),
    ("CRM Webhook", "webhook", "#0d6efd",
     {"url": "https://hooks.example.com/contentops/demo", "timeout_s": 10}),
    # api_base points at a closed port on this machine: nothing ever leaves it.
    ("企业微信 客户群发", "wecom_customer", "#07c160",
     {"corp_id": "ww-demo-corp", "api_base": "http://127.0.0.1:9", "kind": "single",
      "senders": list(DEMO_SENDERS), "deadline_hours": 24}),
    # 公众号 in mass-send mode, also pointed at the closed local port; its demo history is
    # published posts only, so nothing is ever sent or tracked.
    ("品牌公众号", "wechat_mp", "#2aae67",
     {"app_id": "wx-demo-app", "api_base": "http://127.0.0.1:9", "mode": "mass_send",
      "account_type": "subscription",
      "default_thumb": "http://127.0.0.1:9/demo-cover.png"}),
]
# Kinds whose publishing stays on this machine; only these get future, approved posts.
LOCAL_KINDS = {"web", "manual"}

PIECE_COUNT = 60
LOCAL_HOURS = [(8, 0), (12, 30), (18, 0), (20, 0)]


def _month_start(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def _demo_users(session: Session) -> tuple[User, User]:
    """An editor and an approver who author and approve the demo pieces (they cannot sign
    in until an admin sets a password; the demo does not print one)."""
    people = [("lin.xiaoyu@demo.contentops.example", "林小雨", "editor"),
              ("wang.jing@demo.contentops.example", "王静", "approver")]
    out = []
    for email, name, role in people:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=name, role=role, active=True,
                        password_hash=hash_password(secrets.token_urlsafe(24)),
                        notification_prefs={})
            session.add(user)
            session.flush()
        out.append(user)
    return out[0], out[1]


def _channels(session: Session, secret_key: str | None, editor: User) -> list[Channel]:
    from . import channels as channel_service

    available = channel_kinds()
    out = []
    for name, kind, color, config in CHANNELS:
        if kind not in available:
            continue
        existing = session.scalar(select(Channel).where(Channel.name == name))
        if existing is not None:
            out.append(existing)
            continue
        config = dict(config)
        if kind == "manual":
            # Store staff without an account get their confirm links by e-mail.
            config["assignees"] = [editor.email, "zhou.min@demo.contentops.example",
                                   "he.tao@demo.contentops.example"]
        if kind in ("webhook", "wecom_customer"):
            if not secret_key:
                continue  # the secret must be encrypted with the app's key
            config["secret"] = secrets.token_urlsafe(24)
        if kind == "wechat_mp":
            if not secret_key:
                continue
            config["app_secret"] = secrets.token_urlsafe(24)
        data = {"name": name, "kind": kind, "color": color, "config": config,
                "timezone": TEAM_ZONE}
        if kind == "wechat_mp":
            data["active"] = False  # switched off: the demo never sends to WeChat
        try:
            channel = channel_service.create_channel(session, data, secret_key=secret_key or "")
        except ValidationError:
            # The kind's settings changed shape; try with defaults only.
            try:
                channel = channel_service.create_channel(
                    session, {**data, "config": {}}, secret_key=secret_key or "")
            except ValidationError:
                continue
        out.append(channel)
    return out


def _tags(session: Session) -> list[Tag]:
    out = []
    for name in TAGS:
        tag = session.scalar(select(Tag).where(Tag.name == name))
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
        out.append(tag)
    session.flush()
    return out


def _metrics(rng: random.Random, kind: str, audience: str, style: str) -> dict[str, int]:
    """Plausible totals, with patterns the analytics can find (style × audience fit)."""
    base = {"web": 900, "webhook": 600, "manual": 350}.get(kind, 500)
    fit = {("幽默", "学生党"): 1.8, ("故事化", "宝妈社群"): 1.6, ("专业", "企业客户"): 1.7,
           ("亲切", "新会员"): 1.4, ("正式", "沉睡用户"): 0.6, ("亲切", "沉睡用户"): 1.3,
           ("专业", "高价值复购"): 1.3, ("幽默", "企业客户"): 0.5}.get((style, audience), 1.0)
    reads = max(20, int(rng.gauss(base * fit, base * 0.25)))
    engagement = 0.06 * fit
    return {
        "reads": reads,
        "likes": int(reads * engagement * rng.uniform(0.6, 1.2)),
        "comments": int(reads * engagement * 0.2 * rng.uniform(0.3, 1.5)),
        "shares": int(reads * engagement * 0.35 * rng.uniform(0.4, 1.4)),
        "clicks": int(reads * rng.uniform(0.02, 0.09)),
    }


def load_demo(session: Session, only_if_empty: bool = False, *, secret_key: str | None = None,
              base_url: str = "", now: datetime | None = None, seed: int = 11) -> str:
    """Load the demo data; returns a one-line summary for the CLI."""
    if only_if_empty and session.scalar(select(ContentPiece.id).limit(1)) is not None:
        return "Demo data not loaded: there are content pieces already."
    if session.scalar(select(AuditEvent.id).where(AuditEvent.action == MARKER)) is not None:
        return "Demo data is already loaded."
    now = now or utcnow()
    rng = random.Random(seed)
    zone = ZoneInfo(TEAM_ZONE)

    audiences = [taxonomy.get_or_create(session, "audience", n, description=d)
                 for n, d in AUDIENCES]
    styles = [taxonomy.get_or_create(session, "style", n, description=d, guidelines=g)
              for n, d, g in STYLES]
    today = now.astimezone(zone).date()
    prev_month = _month_start(today, -1)
    this_month = _month_start(today, 0)
    next_month = _month_start(today, 1)
    last_day = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    campaigns = [
        taxonomy.get_or_create(
            session, "campaign", "会员日", description="每月的会员专属活动。",
            starts_on=prev_month.isoformat(), ends_on=last_day.isoformat(),
            goal="每期活动带来 500 次以上阅读，沉睡用户回流。", goal_reads=20000),
        taxonomy.get_or_create(
            session, "campaign", "双11 大促", description="年度大促：预热、开门红、返场。",
            starts_on=(this_month + timedelta(days=0)).isoformat(),
            ends_on=(this_month + timedelta(days=15)).isoformat(),
            goal="预热期积累预约，开门红当天转化。", goal_reads=30000),
        taxonomy.get_or_create(
            session, "campaign", "年货节", description="年末囤货与送礼。",
            starts_on=(this_month + timedelta(days=18)).isoformat(),
            ends_on=(next_month + timedelta(days=20)).isoformat(),
            goal="企业客户团购询单 50 个。", goal_reads=None),
    ]
    editor, approver = _demo_users(session)
    channels = _channels(session, secret_key, editor)
    tags = _tags(session)
    if not channels:
        session.flush()
        return "Demo data: taxonomy loaded, but no channel kind is available for posts."

    start = datetime.combine(prev_month, datetime.min.time(), zone)
    end = datetime.combine(next_month + timedelta(days=7), datetime.min.time(), zone)
    span_days = (end - start).days
    local_channels = [c for c in channels if c.kind in LOCAL_KINDS]
    pieces = 0
    created_posts: list[Post] = []
    future_cycle = ["approved", "approved", "in_review", "changes_requested", "draft"]
    for i in range(PIECE_COUNT):
        day = start.date() + timedelta(days=int(i * span_days / PIECE_COUNT))
        hour, minute = LOCAL_HOURS[i % len(LOCAL_HOURS)]
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)
        audience = audiences[i % len(audiences)]
        style = styles[(i * 7 + i // len(audiences)) % len(styles)]
        campaign = None
        for c in campaigns:
            if c.starts_on and c.ends_on and c.starts_on <= day <= c.ends_on and rng.random() < .6:
                campaign = c
                break
        title = TITLES[i % len(TITLES)].format(product=PRODUCTS[(i * 5) % len(PRODUCTS)],
                                               season=SEASONS[i % len(SEASONS)])
        body = BODY.format(title=title, opening=OPENINGS[style.name],
                           audience=audience.name, keyword=PRODUCTS[(i * 5) % len(PRODUCTS)],
                           when=day.strftime("%m-%d"), closing=CLOSINGS[i % len(CLOSINGS)])
        past = when < now - timedelta(hours=1)
        if past:
            status = "approved" if i % 13 != 5 else "in_review"
        else:
            status = future_cycle[i % len(future_cycle)]
            if status == "approved" and not local_channels:
                status = "in_review"  # nothing approved may go out to a real address
        created = min(when, now) - timedelta(days=3, hours=rng.randint(0, 48))
        piece = ContentPiece(
            title=title, body=body, summary=OPENINGS[style.name][:120],
            audience=audience, style=style, campaign=campaign, author=editor, status=status,
            version=1, created_at=created, updated_at=created,
            submitted_at=created + timedelta(hours=2) if status != "draft" else None,
        )
        if status == "approved":
            piece.approved_version = 1
            piece.approved_at = created + timedelta(hours=5)
        piece.tags = rng.sample(tags, k=rng.randint(1, 3))
        session.add(piece)
        session.add(PieceRevision(piece=piece, version=1, title=title, body=body,
                                  summary=piece.summary, author_id=editor.id,
                                  created_at=created))
        pieces += 1
        pool = local_channels if (not past and status == "approved") else channels
        chosen = rng.sample(pool, k=min(len(pool), 1 + (i % 3 == 0)))
        for n, channel in enumerate(chosen):
            post_when = when + timedelta(hours=n)
            post = Post(piece=piece, channel=channel, created_at=created, updated_at=created)
            _post_state(post, piece, channel, post_when, now, past, i, rng, base_url,
                        audience.name, style.name)
            session.add(post)
            created_posts.append(post)
    session.flush()
    posts = len(created_posts)
    for post in created_posts:
        if post.channel.kind == "web" and post.status == "published":
            post.slug = post.external_id = _public_slug(post)
            post.external_url = f"{base_url.rstrip('/')}/p/{post.slug}"
    _wechat_account_days(session, channels, now, rng)
    audit.record(session, MARKER, "demo", None, actor=approver,
                 data={"pieces": pieces, "posts": posts})
    session.flush()
    # Hourly history behind the totals (charts, sparklines) and a few visitor comments.
    from .feedback import demo as feedback_demo

    feedback_demo.load(session, now=now)
    counts = {name: session.scalar(select(func.count()).select_from(model)) for name, model in
              (("audiences", audiences[0].__class__), ("styles", styles[0].__class__),
               ("campaigns", campaigns[0].__class__), ("channels", Channel))}
    return (f"Loaded demo data: {counts['audiences']} audiences, {counts['styles']} styles, "
            f"{counts['channels']} channels, {counts['campaigns']} campaigns, "
            f"{pieces} pieces, {posts} posts.")


def _public_slug(post: Post) -> str:
    """The page address the web adapter gives a post it publishes."""
    try:
        from ..channels.web import public_slug
    except ImportError:  # an installation without the web adapter's helper
        return f"demo-{post.id}"
    return public_slug(post.id, post.piece_id)


def _staff_of(channel: Channel) -> list[str]:
    """Who a staff channel hands its posts to (manual assignees, WeCom senders)."""
    config = channel.config or {}
    if channel.kind == "manual":
        return list(config.get("assignees") or [])
    if channel.kind == "wecom_customer":
        return list(config.get("senders") or [])
    return []


def _demo_progress(post: Post, channel: Channel, staff: list[str], confirmed: int,
                   when: datetime, deadline: timedelta, rng: random.Random, *,
                   now: datetime) -> None:
    """Per-sender progress as the adapters keep it (who sent when, reach, reminders), so the
    post's N-of-M card has something to show; the list columns come from it."""
    from .publishing.handoff import staff_values

    entries = []
    for n, person in enumerate(staff):
        entry: dict = {"id": person, "status": "sent" if n < confirmed else "pending"}
        if n < confirmed:
            sent = min(now, when + timedelta(minutes=rng.randint(3, 240)))
            entry["sent_at"] = sent.isoformat()
        if channel.kind == "wecom_customer":
            entry["msgid"] = f"msgDEMO{rng.randrange(10**8):08d}{n}"
            if n < confirmed:
                entry.update(reached=rng.randint(40, 90), not_friend=rng.randint(0, 3),
                             already_received=rng.randint(0, 5))
            elif rng.random() < 0.5:
                entry["reminded"] = [(when + timedelta(hours=2)).timestamp()]
        entries.append(entry)
    progress: dict = {"confirmed": confirmed, "total": len(staff), "staff": entries,
                      "deadline": (when + deadline).isoformat()}
    if channel.kind == "wecom_customer":
        for key in ("reached", "not_friend", "already_received"):
            progress[key] = sum(e.get(key, 0) for e in entries)
    post.progress = progress
    for column, value in staff_values(progress).items():
        setattr(post, column, value)


def _post_state(post: Post, piece: ContentPiece, channel: Channel, when: datetime,
                now: datetime, past: bool, i: int, rng: random.Random, base_url: str,
                audience: str, style: str) -> None:
    post.scheduled_at = when
    if not past:
        if piece.status == "draft" and i % 2:
            post.scheduled_at = None
            post.status = "unscheduled"
        else:
            post.status = "scheduled"
        return
    if piece.status != "approved":
        post.status = "missed"
        post.last_error = "The time passed before the piece was approved."
        return
    if i % 17 == 3:
        post.status = "cancelled"
        return
    if channel.kind == "webhook" and i % 9 == 4:
        post.status = "failed"
        post.attempt_count = 1
        post.last_error = "The receiver refused the post (HTTP 400)."
        return
    deadline = timedelta(hours=int((channel.config or {}).get("deadline_hours") or 24))
    staff = _staff_of(channel)
    if channel.kind in ("manual", "wecom_customer") and now - when < deadline:
        # Handed to people, some of whom have not confirmed yet, within the deadline.
        post.status = "awaiting_staff"
        post.next_attempt_at = when + deadline
        _demo_progress(post, channel, staff, rng.randint(0, max(0, len(staff) - 1)), when,
                       deadline, rng, now=now)
        return
    if staff:
        _demo_progress(post, channel, staff,
                       len(staff) if i % 4 else rng.randint(1, len(staff)), when, deadline,
                       rng, now=now)
    post.status = "published"
    post.published_version = piece.version
    post.published_at = when + timedelta(seconds=rng.randint(2, 90))
    post.attempt_count = 1
    if channel.kind == "webhook":
        post.external_id = f"crm-{10000 + i}"
    elif channel.kind == "manual":
        post.external_url = "https://mp.weixin.qq.com/s/demo" + str(1000 + i)
    elif channel.kind == "wechat_mp":
        post.external_id = f"msg:{2247480000 + i}"
        post.external_url = f"https://mp.weixin.qq.com/s/demo-mp-{1000 + i}"
    # Totals grow with age: a post published an hour ago has few reads yet.
    age = min(1.0, (now - when).total_seconds() / (3 * 86400))
    for name, value in _metrics(rng, channel.kind, audience, style).items():
        setattr(post, name, int(value * max(age, 0.05)))
    if channel.kind == "wechat_mp":
        _wechat_stats(post, i, now)


def _wechat_stats(post: Post, i: int, now: datetime) -> None:
    """What the daily 公众号 statistics pull leaves on a post: the ids, WeChat's own figures,
    and for some articles the "not reported" mark (WeChat skips articles with fewer than 3
    interactions). WeChat reports a day late, so today's articles have no numbers yet."""
    msg_id = 2247480000 + i
    progress: dict = {"media_id": f"demo-draft-{i}", "msg_id": str(msg_id),
                      "msg_data_id": str(msg_id + 1), "idx": 1, "msg_status": "SEND_SUCCESS"}
    beijing = ZoneInfo("Asia/Shanghai")
    yesterday = now.astimezone(beijing).date() - timedelta(days=1)
    published = post.published_at.astimezone(beijing).date() if post.published_at else yesterday
    post.clicks = 0  # WeChat does not report link clicks
    if published > yesterday or i % 5 == 2:
        post.reads = post.likes = post.comments = post.shares = 0
        if published <= yesterday:
            progress["wx_stats"] = {"reported": False, "day": yesterday.isoformat()}
    else:
        progress["wx_stats"] = {
            "reported": True, "day": yesterday.isoformat(), "publish_type": 0,
            "stat_date": min(yesterday, published + timedelta(days=29)).isoformat(),
            "read_user": post.reads, "share_user": post.shares,
            "like_user": post.likes - post.likes // 3, "zaikan_user": post.likes // 3,
            "comment_count": post.comments, "collection_user": post.shares // 2}
    post.progress = progress


def _wechat_account_days(session: Session, channels: list[Channel], now: datetime,
                         rng: random.Random) -> None:
    """Two weeks of the 公众号 account's own daily figures (getbizsummary)."""
    yesterday = now.astimezone(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
    for channel in channels:
        if channel.kind != "wechat_mp":
            continue
        for back in range(14):
            reads = rng.randint(300, 1500)
            likes, zaikan = int(reads * rng.uniform(0.02, 0.05)), int(reads * 0.01)
            figures = {"read_user": reads, "share_user": int(reads * rng.uniform(0.01, 0.04)),
                       "like_user": likes, "zaikan_user": zaikan,
                       "comment_count": int(reads * 0.005),
                       "collection_user": int(reads * 0.01)}
            session.add(ChannelDailyStats(
                channel_id=channel.id, day=yesterday - timedelta(days=back), reads=reads,
                likes=likes + zaikan, shares=figures["share_user"],
                comments=figures["comment_count"], figures=figures, updated_at=now))
