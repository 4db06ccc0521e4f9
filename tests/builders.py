"""One way to build test data: through the services, the way the app builds it.

Tests get a `Make` from the `make` fixture (tests/conftest.py):

    def test_x(make):
        post = make.post(make.channel("webhook"), when=make.now)     # approved, scheduled
        piece = make.piece(channels=[make.channel(name="主号", requires_two_approvals=True)])
        make.submit(piece); make.approve(piece)

Users, audiences, styles, campaigns, channels and pieces are created by the services
(validation, audit events, revisions, posts per channel); approval goes through the review
workflow (submit by the author, approve by an approver), times through `schedule_post` and
feedback through the ingest (`make.feedback`).
Only the engine's own states (publishing, failed, unknown, published …), which no person can
put a post in, are set directly by `make.post(status=...)`; the engine tests drive those for
real.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contentops.models import Audience, Campaign, Channel, ContentPiece, Post, Style, User
from contentops.security import hash_password
from contentops.services import channels as channel_service
from contentops.services import content, review, taxonomy
from contentops.services import users as user_service
from contentops.services.feedback.ingest import ingest
from contentops.services.publishing import schedule_post

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SECRET_KEY = "test-secret-key"
PASSWORD = "correct horse battery"

# Default channel configs per kind: what a valid channel of that kind needs.
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "http://127.0.0.1:9/none", "secret": "s3cret"},
    "manual": {"assignees": ["staff@example.com"]},
    "wecom_robot": {"webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test"},
    "dingtalk_robot": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=test",
                       "secret": "SECtest"},
    "feishu_bot": {"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/test",
                   "secret": "test"},
    "email": {"host": "127.0.0.1", "from_address": "team@example.com"},
    "wecom_customer": {"corp_id": "ww-test", "secret": "contact-secret",
                       "senders": ["zhangsan"]},
    "wechat_mp": {"app_id": "wx-test", "app_secret": "mp-secret",
                  "default_thumb": "https://example.com/cover.png"},
}
_SEQUENCE = itertools.count(1)


def mp_config(**settings: Any) -> dict[str, Any]:
    """A 公众号 channel's config: the default credentials and cover plus `settings`."""
    return {**DEFAULT_CONFIGS["wechat_mp"], **settings}


@functools.lru_cache(maxsize=8)
def cached_hash(password: str) -> str:
    """scrypt is slow on purpose; the builder hashes each password once per run."""
    return hash_password(password)


class Make:
    """Builders over the services. `now` is the time every builder acts at (settable)."""

    def __init__(self, session: Session, *, now: datetime = NOW,
                 secret_key: str = SECRET_KEY) -> None:
        self.session = session
        self.now = now
        self.secret_key = secret_key
        # One sequence for the whole run: builders on the same database never collide.
        self._n = _SEQUENCE
        self._author: User | None = None
        self._approvers: list[User] = []

    # --- people ---------------------------------------------------------------------------

    def user(self, role: str = "editor", *, email: str | None = None,
             name: str | None = None, active: bool = True,
             password: str = PASSWORD) -> User:
        n = next(self._n)
        email = email or f"{role}{n}@example.com"
        real_hash = user_service.hash_password
        user_service.hash_password = cached_hash  # the service, minus the slow part
        try:
            user, _ = user_service.create_user(
                self.session, email, role, name=name or f"{role.title()} {n}",
                password=password)
        finally:
            user_service.hash_password = real_hash
        user.active = active
        self.session.commit()
        return user

    @property
    def author(self) -> User:
        """The default author: an editor made on first use."""
        if self._author is None:
            self._author = self.user("editor", name="Author")
        return self._author

    def admin(self) -> User:
        """The team's admin (made once)."""
        existing = self.session.scalar(select(User).where(
            User.active.is_(True), User.role == "admin").order_by(User.id))
        return existing or self.user("admin", name="Admin")

    def approver(self, exclude: Iterable[User] = ()) -> User:
        """An approver who is none of `exclude` (made when there is none yet)."""
        ids = {u.id for u in exclude}
        for user in self._approvers:
            if user.id not in ids:
                return user
        # One the test (or an earlier builder) made.
        for user in self.session.scalars(select(User).where(
                User.active.is_(True), User.role.in_(("approver", "admin")))
                .order_by(User.id)):
            if user.id not in ids and user not in self._approvers:
                self._approvers.append(user)
                return user
        user = self.user("approver", name=f"Approver {len(self._approvers) + 1}")
        self._approvers.append(user)
        return user

    # --- taxonomy and channels ------------------------------------------------------------

    def audience(self, name: str = "新会员", **values: Any) -> Audience:
        return taxonomy.get_or_create(self.session, "audience", name, **values)

    def style(self, name: str = "亲切", **values: Any) -> Style:
        return taxonomy.get_or_create(self.session, "style", name, **values)

    def campaign(self, name: str = "双11 大促", **values: Any) -> Campaign:
        return taxonomy.get_or_create(self.session, "campaign", name, **values)

    def channel(self, kind: str = "webhook", *, name: str | None = None,
                config: dict[str, Any] | None = None, **settings: Any) -> Channel:
        """A channel through the channel service; a name that exists returns that channel."""
        if name is not None:
            existing = self.session.scalar(select(Channel).where(Channel.name == name))
            if existing is not None:
                return existing
        if config is None:
            config = DEFAULT_CONFIGS.get(kind, {})
        channel = channel_service.create_channel(
            self.session, {"name": name or f"{kind}-{next(self._n)}", "kind": kind,
                           "config": config, **settings}, secret_key=self.secret_key)
        self.session.commit()
        return channel

    # --- pieces and review ----------------------------------------------------------------

    def piece(self, *, title: str = "双11 预告", body: str = "**限时** 五折，欢迎来店里看看。",
              summary: str = "", channels: Iterable[Channel] | None = None,
              author: User | None = None, audience: Audience | str | None = None,
              style: Style | str | None = None, campaign: Campaign | str | None = None,
              tags: list[str] | None = None, when: datetime | None = None) -> ContentPiece:
        """A draft piece with one post per channel (scheduled at `when` if given)."""
        if audience is None or isinstance(audience, str):
            audience = self.audience(audience or "新会员")
        if style is None or isinstance(style, str):
            style = self.style(style or "亲切")
        if isinstance(campaign, str):
            campaign = self.campaign(campaign)
        chans = list(channels) if channels is not None else [self.channel(name="Team hook")]
        data: dict[str, Any] = {
            "title": title, "body": body, "summary": summary, "audience_id": audience.id,
            "style_id": style.id, "campaign_id": campaign.id if campaign else None,
            "channel_ids": [c.id for c in chans], "tags": tags or []}
        at = self.now if when is None else min(self.now, when)
        if when is not None:
            data["scheduled_at"] = when
        result = content.create_piece(self.session, data, author=author or self.author,
                                      now=at)
        self.session.commit()
        return result.piece

    def submit(self, piece: ContentPiece, actor: User | None = None, *,
               override: str | None = None) -> ContentPiece:
        """Send to review; `override` is the reason an editor gives to pass compliance
        errors (as the submit form allows)."""
        if actor is None:
            # Only an admin may submit past compliance errors.
            actor = self.admin() if override else piece.author
        review.submit(self.session, piece, actor, self.now, override_reason=override)
        self.session.commit()
        return piece

    def approve(self, piece: ContentPiece, approver: User | None = None, *,
                override: str | None = None) -> ContentPiece:
        """Submit if needed, then approve by `approver` (default: an approver who is not the
        author). Channels that need two approvals get a second, distinct approver."""
        if piece.status in ("draft", "changes_requested"):
            self.submit(piece, override=override)
        first = approver or self.approver(exclude=[piece.author])
        review.approve(self.session, piece, first, self.now, version=piece.version)
        if review.awaiting_second_approval(self.session, piece):
            review.approve(self.session, piece, self.approver(exclude=[piece.author, first]),
                           self.now, version=piece.version)
        self.session.commit()
        return piece

    def edit(self, piece: ContentPiece, actor: User | None = None, *,
             at: datetime | None = None, **changes: Any) -> ContentPiece:
        """Save an edit the way the editor does (a new version; approvals no longer count,
        scheduled posts are held)."""
        content.update_piece(self.session, piece, changes, actor=actor or piece.author,
                             now=at or self.now)
        self.session.commit()
        return piece

    # --- posts ----------------------------------------------------------------------------

    def schedule(self, post: Post, when: datetime) -> Post:
        """Put a post at `when`; a time in the past is scheduled as if it had been done then
        (the engine then finds it due)."""
        schedule_post(self.session, post, when, actor=post.piece.author,
                      now=min(self.now, when))
        self.session.commit()
        return post

    def post(self, channel: Channel | None = None, when: datetime | None = None, *,
             approved: bool = True, status: str | None = None, title: str = "双11 预告",
             body: str = "**限时** 五折，[详情](https://example.com/sale)",
             author: User | None = None, checked: bool = True, override: str | None = None,
             **fields: Any) -> Post:
        """One post on `channel`: its piece approved (or left a draft), scheduled at `when`.

        `checked=False` puts the post at `when` without the schedule-time quota and conflict
        checks, as if it had been scheduled before a quota was lowered: for engine tests of
        what dispatch does then (it checks again).

        `status` other than scheduled/unscheduled is the engine's or a later person's doing
        and is set directly, with any `fields` (external_id, published_at, metrics …)."""
        piece = self.piece(title=title, body=body, author=author,
                           channels=[channel or self.channel()],
                           **{k: fields.pop(k) for k in ("audience", "style", "campaign",
                                                          "tags") if k in fields})
        if approved:
            self.approve(piece, override=override)
        post = piece.posts[0]
        if when is not None:
            if checked:
                self.schedule(post, when)
            else:
                post.status, post.scheduled_at = "scheduled", when
        if status is not None and status != post.status:
            post.status = status
        for name, value in fields.items():
            setattr(post, name, value)
        self.session.commit()
        return post

    def posts(self, channel: Channel, when: datetime, n: int, **kwargs: Any) -> list[int]:
        """Many approved posts at `when` (bursts). One piece per post, as in production."""
        return [self.post(channel, when, title=f"Post {i}", body=f"Body {i}", **kwargs).id
                for i in range(n)]

    def published(self, channel: Channel | None = None, *, at: datetime | None = None,
                  **fields: Any) -> Post:
        """A post that went out at `at` (metrics and ids as keyword fields)."""
        at = at or self.now - timedelta(days=1)
        return self.post(channel, None, status="published", scheduled_at=at,
                         published_at=at, published_version=1, **fields)

    def feedback(self, post: Post, kind: str = "read", count: int = 1, *,
                 at: datetime | None = None, **extra: Any) -> Any:
        """Readers' feedback on a post through the ingest every way in ends at (counted once
        per event id; totals and hourly buckets go up). Returns the IngestResult."""
        event = {"event_id": f"builder-{next(self._n)}", "kind": kind, "count": count,
                 "post_id": post.id, "occurred_at": (at or self.now).isoformat(), **extra}
        result = ingest(self.session, [event], now=max(self.now, at or self.now),
                        source="api")
        assert not result.rejected, result.rejected
        self.session.commit()
        return result

    def claimable_ids(self) -> set[int]:
        """Post ids the dispatcher could claim as far as review goes (claimable states plus
        the review condition), whatever their time."""
        return set(self.session.scalars(select(Post.id).where(
            Post.status.in_(("scheduled", "retrying")), review.claimable_clause())))

    def commit(self) -> None:
        self.session.commit()
