"""Multi-article sends (公众号 头条 + 次条): posts of one channel at one time that go out as
one message.

The rule: on a channel whose adapter can send groups (`capabilities.group_max`, 8 for
公众号), posts scheduled at the same instant form one send. The grouping is recorded
explicitly (`Post.send_group`, `Post.group_position`) when a post is scheduled, rather than
derived from equal times at send time, because:

- moving the group (a calendar drop of its event) must move every article together, and a
  derived rule would split them the moment one time is edited;
- the order (which article is the 头条) is the planner's choice and must survive moves;
- the engine claims a group as one unit and must know its members exactly, even while some
  of them are retrying or held.

Scheduling a post at the time of another post of the same channel joins that send (and is
refused beyond `group_max`); moving any member moves the whole send; cancelling or
unscheduling a member takes it out ("send separately" does the same without moving it).

No Flask: the schedule action, the web pages, the API and the calendar call these.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import post_states
from ...errors import N_, DomainError, ValidationError
from ...models import Channel, Post, User
from ...timeutil import as_utc

# Posts at a time that a post scheduled there joins (not yet sent, still going out).
JOINABLE: tuple[str, ...] = ("scheduled", "retrying")
# Members that move with the send when it is rescheduled.
_MOVABLE = set(post_states.sources("schedule")) - {"cancelled", "unscheduled"}

TOO_MANY = N_("%(channel)s sends at most %(max)s articles in one message (头条 + 次条) and "
              "%(time)s would have %(count)s. Choose another time.")


def group_limit(channel: Channel) -> int:
    """How many posts of this channel may go out as one send (0: none are grouped)."""
    from ...channels.registry import adapter_class

    try:
        return int(adapter_class(channel.kind).capabilities.group_max or 0)
    except (KeyError, AttributeError):  # a kind this installation does not have
        return 0


def members(session: Session, key: str | None) -> list[Post]:
    """The posts of a send, 头条 first."""
    if not key:
        return []
    return list(session.scalars(
        select(Post).where(Post.send_group == key, Post.status != "cancelled")
        .order_by(Post.group_position.is_(None), Post.group_position, Post.id)))


def group_of(session: Session, post: Post) -> list[Post]:
    """The post's send in order (just the post when it goes out alone)."""
    return members(session, post.send_group) or [post]


def _renumber(posts: list[Post]) -> None:
    if len(posts) <= 1:
        for p in posts:
            p.send_group = None
            p.group_position = None
        return
    key = next((p.send_group for p in posts if p.send_group), None) or str(uuid.uuid4())
    for i, p in enumerate(posts, start=1):
        p.send_group = key
        p.group_position = i


def joins_a_send(session: Session, post: Post, when: datetime) -> bool:
    """Whether putting `post` at `when` joins another post's send there (same channel, same
    time): it then adds an article, not a send."""
    return bool(_at_time(session, post, when, {post.id} if post.id else set()))


def _at_time(session: Session, post: Post, when: datetime, exclude: set[int]) -> list[Post]:
    rows = session.scalars(
        select(Post).where(Post.channel_id == post.channel_id,
                           Post.scheduled_at == as_utc(when),
                           Post.status.in_(JOINABLE), Post.id.not_in(exclude or {0}))
        .order_by(Post.group_position.is_(None), Post.group_position, Post.id))
    return list(rows)


def place(session: Session, post: Post, when: datetime, *, tz_label: str = "",
          alone: bool = False) -> list[Post]:
    """Work out the send `post` belongs to once it is at `when`, refusing more than the
    channel's `group_max`; returns the other members that move with it (the caller sets
    their time and state). `alone`: the post leaves its send and moves by itself. Nothing
    is written when it refuses."""
    limit = group_limit(post.channel)
    if limit <= 0:
        post.send_group = post.group_position = None
        return []
    moving = [post]
    if post.send_group and alone:
        refuse_too_many(session, post, when, tz_label=tz_label, alone=True)
        leave(session, post)
    elif post.send_group:
        current = members(session, post.send_group)
        others = [p for p in current if p.id != post.id]
        if all(p.status in _MOVABLE for p in others):
            moving = current if post in current else [post, *others]
        else:
            # Part of the send already went out or is under way: this post moves alone.
            _renumber(others)
            post.send_group = post.group_position = None
    ids = {p.id for p in moving if p.id is not None}
    target = _at_time(session, post, when, ids)
    _refuse_over(post, when, moving, target, limit, tz_label)
    if target:
        key = next((p.send_group for p in target if p.send_group), None) or str(uuid.uuid4())
        for p in moving:
            p.send_group = key
        _renumber(target + moving)
    else:
        _renumber(moving)
    return [p for p in moving if p is not post]


def refuse_too_many(session: Session, post: Post, when: datetime, *, tz_label: str = "",
                    alone: bool = False) -> None:
    """Raise as place() would, without changing anything (the calendar's drop check)."""
    limit = group_limit(post.channel)
    if limit <= 0:
        return
    moving = [post] if alone else group_of(session, post)
    target = _at_time(session, post, when, {p.id for p in moving})
    _refuse_over(post, when, moving, target, limit, tz_label)


def _refuse_over(post: Post, when: datetime, moving: list[Post], target: list[Post],
                 limit: int, tz_label: str) -> None:
    count = len(target) + len(moving)
    if target and count > limit or len(moving) > limit:
        raise ValidationError(
            {"scheduled_at": [TOO_MANY]}, message=TOO_MANY,
            params={"channel": post.channel.name, "max": limit, "count": count,
                    "time": tz_label or as_utc(when).strftime("%Y-%m-%d %H:%M UTC")})


IN_DOUBT_LEAVE = N_("This article went out in one message with others and that send may have "
                    "reached WeChat; settle the message first (mark it published, or retry "
                    "it), then change its articles.")


def leave(session: Session, post: Post) -> None:
    """Take the post out of its send (it keeps its time and then goes out on its own —
    after a cancel or unschedule it does not go out at all)."""
    if not post.send_group:
        return
    group = members(session, post.send_group)
    if any(p.status == "unknown" or (p.status == "retrying" and p.attempt_count)
           for p in group):
        # The send may have gone out: its key (see claim.send_key) must stay with every
        # article, or a re-send under another key would publish them again.
        raise DomainError(IN_DOUBT_LEAVE)
    rest = [p for p in group if p.id != post.id]
    post.send_group = post.group_position = None
    _renumber(rest)


def set_position(session: Session, post: Post, position: int, *, actor: User | None = None,
                 now: datetime | None = None) -> list[Post]:
    """Put the post at `position` (1 = 头条) of its send; returns the send in its new order.
    Recorded in the audit log like every other change to a post's plan."""
    group = members(session, post.send_group)
    if len(group) < 2:
        raise DomainError(N_("This post goes out on its own; there is no order to change."),
                          code="not_grouped")
    if any(p.status not in _MOVABLE for p in group):
        raise DomainError(N_("This send is under way or done; its order can no longer "
                             "change."), code="group_sent")
    if position < 1 or position > len(group):
        raise ValidationError({"position": [N_("Choose a position from 1 to %(max)s.")]},
                              params={"max": len(group)})
    group.remove(post)
    group.insert(position - 1, post)
    _renumber(group)
    from .. import audit

    audit.record(session, "post.position", "post", post.id, actor=actor, now=now,
                 data={"position": position, "send_group": post.send_group})
    return group
