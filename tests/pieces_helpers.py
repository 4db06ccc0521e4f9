"""Records a piece needs (audience, style, channels, campaign): a thin wrapper over
tests/builders.py kept for the tests that import it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from contentops.models import Audience, Campaign, Channel, Style

from .builders import Make

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@dataclass
class Taxonomy:
    audience: Audience
    audience2: Audience
    style: Style
    style2: Style
    campaign: Campaign
    web: Channel
    hook: Channel
    off: Channel


def make_taxonomy(session: Session) -> Taxonomy:
    """The records, made through the services by tests/builders.py. Call it before other
    builders: an audience or style that already exists by name is reused as it is."""
    make = Make(session)

    def hook(name: str, path: str, **settings) -> Channel:
        return make.channel("webhook", name=name, config={
            "url": f"http://127.0.0.1:9/{path}", "secret": "s3cret"}, **settings)

    t = Taxonomy(
        audience=make.audience("新会员", description="joined this month"),
        audience2=make.audience("沉睡用户"),
        style=make.style("亲切", guidelines="warm"),
        style2=make.style("专业"),
        campaign=make.campaign("双11 大促"),
        web=hook("Website", "hook", color="#198754"),
        hook=hook("Partner hook", "other", color="#dc3545"),
        off=hook("Old channel", "old", active=False),
    )
    session.commit()
    return t


def piece_data(t: Taxonomy, **overrides) -> dict:
    data = {
        "title": "双11 早鸟提醒",
        "body": "Hello **members**.\n\n- one\n- two",
        "summary": "Early-bird reminder",
        "audience_id": t.audience.id,
        "style_id": t.style.id,
        "channel_ids": [t.web.id, t.hook.id],
        "campaign_id": t.campaign.id,
        "tags": ["双11", "早鸟"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}
