"""`wecom_robot` (企业微信群机器人): POST {webhook_url} = /cgi-bin/webhook/send?key=…

Message types and limits as WeCom counts them (UTF-8 bytes): text ≤ 2048, markdown ≤ 4096,
news 1–8 articles with title ≤ 128 and description ≤ 512 bytes. 20 messages a minute per robot.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import N_
from ..rendering import markdown_to_text, plain_excerpt
from ._robot import (
    WECOM_MD,
    ErrorRule,
    RobotAdapter,
    fit_finding,
    join_fitting,
    more_line,
    robot_markdown_blocks,
    split_list,
    title_of,
)
from .base import (
    Capabilities,
    ConfigField,
    Finding,
    OutgoingPost,
    cut_bytes,
    limit_finding,
    text_bytes,
)

TEXT_BYTES = 2048
MARKDOWN_BYTES = 4096
NEWS_TITLE_BYTES = 128
NEWS_DESCRIPTION_BYTES = 512
NEWS_ARTICLES = 8
_IMAGE = re.compile(r"!\[[^\]]*\]\((https?://[^)\s]+)")

ERRORS: dict[int, ErrorRule] = {
    45009: ErrorRule(True, N_("WeCom limits a group robot to 20 messages a minute; the post "
                              "will be sent again in a minute."), retry_after=60),
    -1: ErrorRule(True, N_("WeCom is busy right now; the post will be sent again shortly.")),
    93000: ErrorRule(False, N_("WeCom does not accept this robot's key: the webhook URL is wrong "
                               "or the robot was removed from the group.")),
    40008: ErrorRule(False, N_("WeCom does not accept this message type (%(reason)s).")),
    44004: ErrorRule(False, N_("WeCom refused an empty message.")),
    40058: ErrorRule(False, N_("WeCom refused the message format (%(reason)s).")),
    45002: ErrorRule(False, N_("WeCom says the message is too long (%(reason)s).")),
}


class WeComRobotAdapter(RobotAdapter):
    kind = "wecom_robot"
    label = N_("WeCom group robot")
    service = "WeCom"
    errors = ERRORS
    config_fields = (
        ConfigField("webhook_url", N_("Webhook URL"), "url", required=True, secret=True,
                    help=N_("The robot's address exactly as WeCom shows it "
                            "(…/cgi-bin/webhook/send?key=…).")),
        ConfigField("msgtype", N_("Message type"), "choice", default="markdown",
                    choices=("text", "markdown", "news")),
        ConfigField("mentions", N_("Mention"), "text",
                    help=N_("WeCom user ids to @, separated by commas; @all for everyone.")),
        ConfigField("mention_mobiles", N_("Mention by mobile number"), "text",
                    help=N_("Mobile numbers to @, separated by commas (text messages only).")),
        ConfigField("picurl", N_("Cover image URL"), "url",
                    help=N_("For news cards when the text has no image.")),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=60),
    )
    capabilities = Capabilities(per_minute=20, limits={
        "text_bytes": TEXT_BYTES, "markdown_bytes": MARKDOWN_BYTES,
        "news_title_bytes": NEWS_TITLE_BYTES, "news_description_bytes": NEWS_DESCRIPTION_BYTES,
        "news_articles_items": NEWS_ARTICLES})

    @property
    def msgtype(self) -> str:
        return self.config.get("msgtype") or "markdown"

    # --- rendering ------------------------------------------------------------------------

    def _text_content(self, post: OutgoingPost, limit: int | None = TEXT_BYTES) -> str:
        blocks = [title_of(post), *markdown_to_text(post.body_markdown).split("\n\n")]
        return join_fitting(blocks, limit or 10**9, more_line(post, markdown=False))

    def _markdown_content(self, post: OutgoingPost, limit: int | None = MARKDOWN_BYTES) -> str:
        blocks = [f"## {title_of(post)}", *robot_markdown_blocks(post.body_markdown, WECOM_MD)]
        mentions = " ".join(f"<@{m.lstrip('@')}>" if m.lower() not in ("@all", "all")
                            else "<@all>" for m in split_list(self.config.get("mentions")))
        return join_fitting(blocks, limit or 10**9, more_line(post, markdown=True),
                            tail=mentions)

    def _article(self, post: OutgoingPost) -> dict[str, Any]:
        description = post.summary.strip() or plain_excerpt(post.body_markdown, 200)
        article = {"title": title_of(post),
                   "description": cut_bytes(description, NEWS_DESCRIPTION_BYTES),
                   "url": post.public_url or ""}
        image = _IMAGE.search(post.body_markdown or "")
        picurl = image.group(1) if image else self.config.get("picurl")
        if picurl:
            article["picurl"] = picurl
        return article

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        if self.msgtype == "news":
            return {"msgtype": "news", "news": {"articles": [self._article(post)]}}
        if self.msgtype == "text":
            text: dict[str, Any] = {"content": self._text_content(post)}
            mentions = split_list(self.config.get("mentions"))
            mobiles = split_list(self.config.get("mention_mobiles"))
            if mentions:
                text["mentioned_list"] = ["@all" if m.lower() in ("@all", "all") else m
                                          for m in mentions]
            if mobiles:
                text["mentioned_mobile_list"] = mobiles
            return {"msgtype": "text", "text": text}
        return {"msgtype": "markdown", "markdown": {"content": self._markdown_content(post)}}

    def test_payload(self) -> dict[str, Any]:
        return {"msgtype": "text", "text": {"content": "ContentOps：连接测试 / connection test"}}

    # --- validation -----------------------------------------------------------------------

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        if self.msgtype == "news":
            size = text_bytes(title_of(post))
            if size > NEWS_TITLE_BYTES:
                findings.append(limit_finding("news_title_too_long", "title", size,
                                              NEWS_TITLE_BYTES, "bytes"))
            if not post.public_url:
                findings.append(Finding(
                    "news_needs_link", "error",
                    N_("A WeCom news card links to the full text: also publish this piece on "
                       "a web channel, or choose the text or markdown message type."),
                    field="channels"))
            return findings
        if self.msgtype == "text":
            size, limit = text_bytes(self._text_content(post, None)), TEXT_BYTES
        else:
            size, limit = text_bytes(self._markdown_content(post, None)), MARKDOWN_BYTES
        finding = fit_finding(post, size, limit, f"{self.msgtype}_too_long")
        if finding:
            findings.append(finding)
        return findings
