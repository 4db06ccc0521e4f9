"""`feishu_bot` (飞书自定义机器人): POST {webhook_url} = /open-apis/bot/v2/hook/<id>

`timestamp` (seconds) and `sign` travel in the JSON body; sign = base64(HMAC-SHA256 keyed by
"{timestamp}\\n{secret}" over an empty message). The request body may be at most 20 KB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

from ..errors import N_
from ..rendering import markdown_to_text
from ._robot import (
    DINGTALK_MD,
    WECOM_MD,
    ErrorRule,
    RobotAdapter,
    dump,
    fit_finding,
    join_fitting,
    more_line,
    render_within,
    robot_markdown_blocks,
    split_list,
    title_of,
)
from .base import Capabilities, ConfigField, Finding, OutgoingPost

BODY_BYTES = 20 * 1024
MORE = "阅读全文"

ERRORS: dict[int, ErrorRule] = {
    11232: ErrorRule(True, N_("Feishu is limiting how fast this robot may send; the post will be "
                              "sent again in a minute."), retry_after=60),
    19021: ErrorRule(False, N_("Feishu refused the message: the signature does not match. Check "
                               "the robot's secret (签名校验) in the channel settings, and this "
                               "server's clock.")),
    19022: ErrorRule(False, N_("Feishu refused the message: this server's IP address is not on "
                               "the robot's allowed IP list.")),
    19024: ErrorRule(False, N_("Feishu refused the message: it does not contain one of the "
                               "robot's custom keywords.")),
    9499: ErrorRule(False, N_("Feishu refused the message as malformed (%(reason)s).")),
}

_LINK = re.compile(r"!?\[([^\]]*)\]\((\S+?)\)")


def sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuBotAdapter(RobotAdapter):
    kind = "feishu_bot"
    label = N_("Feishu group robot")
    service = "Feishu"
    errors = ERRORS
    config_fields = (
        ConfigField("webhook_url", N_("Webhook URL"), "url", required=True, secret=True,
                    help=N_("The robot's address exactly as Feishu shows it "
                            "(…/open-apis/bot/v2/hook/…).")),
        ConfigField("secret", N_("Signing secret (签名校验)"), "text", required=True, secret=True),
        ConfigField("msgtype", N_("Message type"), "choice", default="post",
                    choices=("text", "post", "interactive")),
        ConfigField("at_all", N_("Mention everyone"), "bool", default=False),
        ConfigField("at_user_ids", N_("Mention"), "text",
                    help=N_("Feishu open_ids or user_ids to @, separated by commas.")),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=60),
    )
    # Feishu allows 100 requests a minute and 5 a second per robot.
    capabilities = Capabilities(per_minute=100, limits={"body_bytes": BODY_BYTES})

    clock = staticmethod(time.time)

    @property
    def msgtype(self) -> str:
        return self.config.get("msgtype") or "post"

    def reply_code(self, reply: dict[str, Any]) -> tuple[int, str]:
        # Older hooks answer {"StatusCode": 0, "StatusMessage": "success"}.
        if "code" not in reply and "StatusCode" in reply:
            reply = {"code": reply.get("StatusCode"), "msg": reply.get("StatusMessage")}
        return super().reply_code(reply)

    def endpoint(self, body: bytes) -> tuple[str, bytes]:
        # The signature goes into the body; send() hands us the unsigned body.
        return str(self.setting("webhook_url")), body

    def payload(self, post: OutgoingPost) -> dict[str, Any]:
        return self._signed(self.render(post))

    def _signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        timestamp = int(self.clock())
        return {"timestamp": str(timestamp),
                "sign": sign(str(self.setting("secret")), timestamp), **payload}

    def test_payload(self) -> dict[str, Any]:
        return self._signed({"msg_type": "text",
                             "content": {"text": "ContentOps：连接测试 / connection test"}})

    # --- rendering ------------------------------------------------------------------------

    def _mentions(self) -> list[str]:
        ids = split_list(self.config.get("at_user_ids"))
        return (["all"] if self.config.get("at_all") else []) + ids

    def _paragraph(self, line: str) -> list[dict[str, Any]]:
        """One rich-text line: plain runs and links (images become links: a robot cannot
        upload them, and Feishu's img tag needs an uploaded image_key)."""
        out: list[dict[str, Any]] = []
        pos = 0
        line = line.replace("**", "")
        for m in _LINK.finditer(line):
            if m.start() > pos:
                out.append({"tag": "text", "text": line[pos:m.start()]})
            out.append({"tag": "a", "text": m.group(1) or m.group(2), "href": m.group(2)})
            pos = m.end()
        if pos < len(line):
            out.append({"tag": "text", "text": line[pos:]})
        return out or [{"tag": "text", "text": ""}]

    def _render(self, post: OutgoingPost, budget: int) -> dict[str, Any]:
        title = title_of(post)
        mentions = self._mentions()
        if self.msgtype == "text":
            ats = " ".join(f'<at user_id="{m}">{"所有人" if m == "all" else ""}</at>'
                           for m in mentions)
            blocks = [title, *markdown_to_text(post.body_markdown).split("\n\n")]
            text = join_fitting(blocks, budget, more_line(post, markdown=False), tail=ats)
            return {"msg_type": "text", "content": {"text": text}}
        if self.msgtype == "interactive":
            blocks = [re.sub(r"^#{1,6} (.*)$", r"**\1**", b)
                      for b in robot_markdown_blocks(post.body_markdown, DINGTALK_MD)]
            ats = " ".join(f"<at id={m}></at>" for m in mentions)
            md = join_fitting(blocks, budget, "", tail=ats)
            elements: list[dict[str, Any]] = [{"tag": "div",
                                               "text": {"tag": "lark_md", "content": md}}]
            if post.public_url:
                elements.append({"tag": "action", "actions": [{
                    "tag": "button", "type": "primary", "url": post.public_url,
                    "text": {"tag": "plain_text", "content": MORE}}]})
            return {"msg_type": "interactive", "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": title},
                           "template": "blue"},
                "elements": elements}}
        blocks = robot_markdown_blocks(post.body_markdown, WECOM_MD)
        body = join_fitting(blocks, budget, more_line(post, markdown=True))
        content = [self._paragraph(line) for line in body.split("\n")]
        if mentions:
            content.append([{"tag": "at", "user_id": m} for m in mentions])
        return {"msg_type": "post",
                "content": {"post": {"zh_cn": {"title": title, "content": content}}}}

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        # Room for timestamp and sign, which are added when sending.
        return render_within(lambda budget: self._render(post, budget), BODY_BYTES - 128)

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        size = len(dump(self._render(post, 10**9))) + 128
        finding = fit_finding(post, size, BODY_BYTES, "body_too_long")
        if finding:
            findings.append(finding)
        return findings
