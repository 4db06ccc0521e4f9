"""Demo feedback: hourly history behind the demo posts' totals, and visitor comments.

Demo posts arrive with metric totals already set; without history the charts would be
flat. This spreads each published post's totals over the days after it went out (most
in the first hours, a long tail after), so every chart agrees with the post list.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...models import METRICS, MetricBucket, Post, WebComment
from .pages import visitor_hash

COMMENTS = [
    ("小雨", "内容很实用，已经转给群里的姐妹了！"),
    ("阿杰", "请问活动截止到什么时候？"),
    ("Lily", "这个搭配建议太及时了 👍"),
    ("王阿姨", "上次买的很好用，这次再囤一点。"),
    ("陈先生", "希望多发一些企业团购的信息。"),
    ("momo", "文案好亲切，看完就想下单 😄"),
]


def _weights(hours: int, rng: random.Random) -> list[float]:
    # Attention decays fast after publishing; a little noise keeps curves natural.
    raw = [(0.85 ** (h / 2)) * rng.uniform(0.7, 1.3) for h in range(hours)]
    total = sum(raw)
    return [w / total for w in raw]


def load(session: Session, *, now: datetime, seed: int = 7) -> int:
    """Backfill buckets for published posts that have totals but no history; add a few
    comments on web posts. Safe to run again. Returns the number of posts backfilled."""
    rng = random.Random(seed)
    have_history = set(session.scalars(select(MetricBucket.post_id).distinct()))
    posts = session.scalars(select(Post).where(Post.status == "published",
                                               Post.published_at.is_not(None))).all()
    done = 0
    for post in posts:
        if post.id in have_history or not any(getattr(post, m) for m in METRICS):
            continue
        start = post.published_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        span = max(1, min(14 * 24, int((now - start).total_seconds() // 3600) + 1))
        weights = _weights(span, rng)
        rows: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
        for metric in METRICS:
            total = getattr(post, metric)
            # Largest-remainder split: the buckets add up exactly to the post's total.
            shares = [total * w for w in weights]
            counts = [int(s) for s in shares]
            for i in sorted(range(span), key=lambda i: shares[i] - counts[i],
                            reverse=True)[: total - sum(counts)]:
                counts[i] += 1
            for i, n in enumerate(counts):
                if n:
                    rows[start + timedelta(hours=i)][metric] += n
        for hour, values in rows.items():
            session.add(MetricBucket(post_id=post.id, hour=hour, **values))
        done += 1
    has_comments = session.scalar(select(func.count(WebComment.id))) or 0
    if not has_comments:
        web_posts = [p for p in posts if p.channel.kind == "web"][:6]
        for i, post in enumerate(web_posts):
            author, text = COMMENTS[i % len(COMMENTS)]
            status = "pending" if i % 3 == 2 else "approved"
            session.add(WebComment(
                post_id=post.id, author=author, text=text, status=status,
                visitor=visitor_hash("demo", f"demo-{i}", "comment"),
                created_at=min(now, post.published_at + timedelta(hours=rng.randint(1, 30)))))
    session.flush()
    return done
