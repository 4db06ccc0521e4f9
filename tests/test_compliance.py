"""Compliance checks: Advertising-Law terms (Chinese and English), channel limits, missing
audience/style, insecure links, images without alt, and submit-time blocking/override."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from contentops.channels.base import Capabilities, OutgoingPost, PublishResult
from contentops.channels.registry import adapter_class
from contentops.errors import Forbidden, ValidationError
from contentops.models import AuditEvent, Channel
from contentops.services import app_settings, compliance, review
from contentops.services.compliance import Draft

from .builders import NOW, Make

TOMORROW = NOW + timedelta(days=1)


def piece_of(make: Make, author, *, when=TOMORROW, title="秋季新品上市",
             body="欢迎来店里看看。", **kwargs):
    """A draft piece by `author`, its posts scheduled (tomorrow unless said)."""
    return make.piece(author=author, when=when, title=title, body=body, **kwargs)


def codes(findings) -> list[tuple[str, str, str | None]]:
    return [(f.code, f.severity, f.params.get("term")) for f in findings]


@pytest.fixture
def ids(db, make):
    audience, style = (make.audience(), make.style())
    return {"audience_id": audience.id, "style_id": style.id}


def test_default_terms_are_seeded_once_and_admin_editable(db, make):
    admin = make.user("admin")
    terms = {t.term for t in compliance.list_terms(db.session)}
    assert {"国家级", "最高级", "最佳", "第一", "唯一", "顶级", "首个", "首选", "独家",
            "全网第一", "史无前例", "best"} <= terms
    first = next(t for t in compliance.list_terms(db.session) if t.term == "首选")
    compliance.remove_term(db.session, first.id, actor=admin)
    compliance.add_term(db.session, "秒杀全网", "warning", actor=admin)
    db.session.commit()
    terms = {t.term for t in compliance.list_terms(db.session)}  # not re-seeded
    assert "首选" not in terms and "秒杀全网" in terms
    with pytest.raises(ValidationError):
        compliance.add_term(db.session, "秒杀全网", actor=admin)
    with pytest.raises(ValidationError):
        compliance.add_term(db.session, "  ", actor=admin)
    with pytest.raises(ValidationError):
        compliance.add_term(db.session, "x", "fatal", actor=admin)
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"compliance.term_added", "compliance.term_removed"} <= actions


def test_chinese_absolute_terms_are_errors(db, ids):
    findings = compliance.check(db.session, Draft(
        title="全网第一的面霜", body="史无前例的**独家**配方，国家级品质。", **ids))
    found = codes(findings)
    assert ("ad_law_term", "error", "全网第一") in found
    assert ("ad_law_term", "error", "史无前例") in found
    assert ("ad_law_term", "error", "独家") in found
    assert ("ad_law_term", "error", "国家级") in found
    # "全网第一" is reported once, not again as "第一".
    assert ("ad_law_term", "error", "第一") not in found
    title_hit = next(f for f in findings if f.params.get("term") == "全网第一")
    assert title_hit.field == "title" and title_hit.params["start"] == 0


def test_ordinary_words_are_not_flagged(db, ids):
    findings = compliance.check(db.session, Draft(
        title="第一次来店的新会员", body="第一步：领券。We bestow a gift.", **ids))
    assert [f for f in findings if f.code == "ad_law_term"] == []


def test_english_terms_match_whole_words_case_insensitively(db, ids):
    findings = compliance.check(db.session, Draft(
        title="The BEST serum", body="Our #1 pick, the only one you need.", **ids))
    terms = {f.params["term"] for f in findings if f.code == "ad_law_term"}
    assert terms == {"BEST", "#1", "the only"}


def test_admin_severity_warning_does_not_block(db, ids, make):
    compliance.add_term(db.session, "爆款", "warning", actor=make.user("admin"))
    findings = compliance.check(db.session, Draft(title="爆款来了", body="快来", **ids))
    assert codes(findings) == [("ad_law_term", "warning", "爆款")]
    assert compliance.errors_of(findings) == []


def test_missing_audience_style_links_and_alt(db):
    findings = compliance.check(db.session, Draft(
        title="新品", body="看 [详情](http://shop.example.com/a) 和 ![](https://x.cn/a.png) "
        "![图](https://x.cn/b.png) [安全](https://ok.example.com)"))
    found = [(f.code, f.severity) for f in findings]
    assert ("audience_missing", "error") in found
    assert ("style_missing", "error") in found
    insecure = [f for f in findings if f.code == "insecure_link"]
    assert [f.params["url"] for f in insecure] == ["http://shop.example.com/a"]
    assert insecure[0].severity == "warning"
    alt = [f for f in findings if f.code == "image_alt"]
    assert [f.params["src"] for f in alt] == ["https://x.cn/a.png"]


@pytest.fixture
def limited_kind(monkeypatch):
    """A channel kind declaring limits the way adapters do (capabilities.limits)."""
    from contentops.channels.base import ChannelAdapter

    class Limited(ChannelAdapter):
        kind = "test_limited"
        label = "Limited"
        capabilities = Capabilities(limits={"title_chars": 10, "text_bytes": 60})

        def render(self, post: OutgoingPost) -> str:
            return post.title

        def publish(self, post, idempotency_key) -> PublishResult:
            return PublishResult()

    monkeypatch.setattr(compliance, "adapter_class",
                        lambda kind: Limited if kind == Limited.kind else adapter_class(kind))
    return Limited


def test_channel_limits_in_characters_and_bytes(db, ids, limited_kind, make):
    # A kind only this test knows: the channel service would refuse it, so it is a row.
    ch = Channel(name="小群机器人", kind="test_limited", config={})
    db.session.add(ch)
    db.session.flush()
    ok = compliance.check(db.session, Draft(title="十个字以内的标题", body="短", channels=[ch],
                                            **ids))
    assert [f for f in ok if f.code.startswith("limit_")] == []
    # 11 characters; 20 Chinese characters of body = 60 bytes, plus the title's bytes.
    findings = compliance.check(db.session, Draft(
        title="一二三四五六七八九十一", body="字" * 20, channels=[ch], **ids))
    limits = {f.code: f for f in findings if f.code.startswith("limit_")}
    assert set(limits) == {"limit_title_chars", "limit_text_bytes"}
    assert limits["limit_title_chars"].params == {"channel": "小群机器人", "size": 11,
                                                  "limit": 10}
    assert limits["limit_text_bytes"].params["size"] == 33 + 2 + 60
    assert all(f.severity == "error" for f in limits.values())


def test_adapter_validate_findings_are_included(db, ids, make):
    ch = make.channel(name="Team hook")
    findings = compliance.check(db.session, Draft(title="", body="x", channels=[ch], **ids))
    assert [f.code for f in findings].count("title_missing") == 1


def test_submit_blocks_on_errors_and_admin_override_is_audited(db, make):
    editor, admin = make.user("editor"), make.user("admin")
    piece = piece_of(make, editor, title="全网第一好用")
    with pytest.raises(review.ComplianceBlocked) as info:
        review.submit(db.session, piece, editor, NOW)
    assert info.value.fields["title"]
    assert piece.status == "draft"
    with pytest.raises(Forbidden):
        review.submit(db.session, piece, editor, NOW, override_reason="客户坚持要这样写")
    with pytest.raises(ValidationError):
        review.submit(db.session, piece, admin, NOW, override_reason="ok")
    review.submit(db.session, piece, admin, NOW, override_reason="法务已确认可以使用")
    db.session.commit()
    assert piece.status == "in_review"
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "piece.compliance_override")).one()
    assert event.actor_id == admin.id and event.data["reason"] == "法务已确认可以使用"
    assert event.data["terms"] == ["全网第一"]


def test_admin_setting_lets_editors_override(db, make):
    editor, admin = make.user("editor"), make.user("admin")
    app_settings.put(db.session, "compliance.allow_override", True, actor=admin)
    piece = piece_of(make, editor, title="顶级体验")
    review.submit(db.session, piece, editor, NOW, override_reason="品牌名里就有“顶级”二字")
    assert piece.status == "in_review"


def test_warnings_do_not_block_submission(db, make):
    editor = make.user("editor")
    piece = piece_of(make, editor, body="详见 http://example.com")
    findings = review.submit(db.session, piece, editor, NOW)
    assert piece.status == "in_review"
    assert [f.code for f in findings] == ["insecure_link"]


def test_robot_channel_limits_come_from_the_adapter(db, ids, make):
    robot = make.channel("wecom_robot", name="门店群机器人")
    robot.config = {"msgtype": "text"}
    web = make.channel("web", name="官网")
    long_body = "会员专享福利。" * 120  # 840 Chinese characters ≈ 2520 bytes > 2048
    alone = compliance.check(db.session, Draft(title="周末活动", body=long_body,
                                               channels=[robot], **ids))
    too_long = [f for f in alone if f.params.get("channel") == "门店群机器人"]
    assert [(f.code, f.severity) for f in too_long] == [("text_too_long", "error")]
    assert too_long[0].params["limit"] == 2048 and too_long[0].params["size"] > 2048
    # With the piece also on the web channel the robot shortens it and links the full text.
    both = compliance.check(db.session, Draft(title="周末活动", body=long_body,
                                              channels=[robot, web], **ids))
    assert [(f.code, f.severity) for f in both if f.params.get("channel")] == [
        ("text_too_long_shortened", "warning")]


def test_checks_use_the_defaults_without_writing(db, ids):
    from contentops.models.review import ComplianceTerm

    findings = compliance.check(db.session, Draft(title="最佳选择", body="", **ids))
    assert [f.params["term"] for f in findings if f.code == "ad_law_term"] == ["最佳"]
    assert not db.session.new
    assert db.session.scalars(select(ComplianceTerm)).all() == []
