"""Records a piece needs (audience, style, channels, campaign), made straight in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from contentops.models import Audience, Campaign, Channel, Style

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
    t = Taxonomy(
        audience=Audience(name="新会员", description="joined this month"),
        audience2=Audience(name="沉睡用户"),
        style=Style(name="亲切", guidelines="warm"),
        style2=Style(name="专业"),
        campaign=Campaign(name="双11 大促"),
        web=Channel(name="Website", kind="webhook", color="#198754",
                    config={"url": "http://127.0.0.1:9/hook"}),
        hook=Channel(name="Partner hook", kind="webhook", color="#dc3545",
                     config={"url": "http://127.0.0.1:9/other"}),
        off=Channel(name="Old channel", kind="webhook", active=False,
                    config={"url": "http://127.0.0.1:9/old"}),
    )
    session.add_all([t.audience, t.audience2, t.style, t.style2, t.campaign, t.web, t.hook,
                     t.off])
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
