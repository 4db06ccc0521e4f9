"""`dingtalk_robot` (钉钉自定义机器人): POST {webhook_url}&timestamp=…&sign=…

The signature is HMAC-SHA256 keyed by the robot's secret over "{timestamp_ms}\\n{secret}",
base64-encoded, then URL-encoded. 20 messages a minute per robot; beyond that DingTalk
throttles the robot for 10 minutes (errcode 130101).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

from ..errors import N_
from ..rendering import markdown_to_text, plain_excerpt
from ._robot import (
    DINGTALK_MD,
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

BODY_BYTES = 20000
THROTTLE_SECONDS = 600

ERRORS: dict[int, ErrorRule] = {
    130101: ErrorRule(True, N_("DingTalk throttles this robot after more than 20 messages a "
                               "minute; the post will be sent again after the 10-minute "
                               "pause."), retry_after=THROTTLE_SECONDS),
    -1: ErrorRule(True, N_("DingTalk is busy right now; the post will be sent again shortly.")),
    310000: ErrorRule(False, N_("DingTalk refused the message because of the robot's security "
                                "settings: %(reason)s.")),
    300001: ErrorRule(False, N_("DingTalk does not know this robot's access token: the webhook "
                                "URL is wrong or the robot was removed.")),
    460101: ErrorRule(False, N_("DingTalk says the message is too long (%(reason)s).")),
}

_SIGN = ErrorRule(False, N_("DingTalk refused the message: the signature does not match. Check "
                            "the robot's secret (加签) in the channel settings, and this "
                            "server's clock."))
_KEYWORD = ErrorRule(False, N_("DingTalk refused the message: it does not contain one of the "
                               "robot's custom keywords (自定义关键词)."))
_IP = ErrorRule(False, N_("DingTalk refused the message: this server's IP address is not on the "
                          "robot's allowed IP list."))


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value, already URL-encoded as DingTalk expects."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


class DingTalkRobotAdapter(RobotAdapter):
    kind = "dingtalk_robot"
    label = N_("DingTalk group robot")
    service = "DingTalk"
    errors = ERRORS
    config_fields = (
        ConfigField("webhook_url", N_("Webhook URL"), "url", required=True, secret=True,
                    help=N_("The robot's address exactly as DingTalk shows it "
                            "(…/robot/send?access_token=…).")),
        ConfigField("secret", N_("Signing secret (加签)"), "text", required=True, secret=True,
                    help=N_("The SEC… secret from the robot's security settings.")),
        ConfigField("msgtype", N_("Message type"), "choice", default="markdown",
                    choices=("text", "markdown", "link", "actionCard")),
        ConfigField("at_mobiles", N_("Mention by mobile number"), "text",
                    help=N_("Mobile numbers to @, separated by commas.")),
        ConfigField("at_all", N_("Mention everyone"), "bool", default=False),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=10, min_value=1,
                    max_value=60),
    )
    capabilities = Capabilities(per_minute=20, limits={"body_bytes": BODY_BYTES})

    clock = staticmethod(time.time)  # tests shift it to check the service's time window

    @property
    def msgtype(self) -> str:
        return self.config.get("msgtype") or "markdown"

    def endpoint(self, body: bytes) -> tuple[str, bytes]:
        url = str(self.setting("webhook_url"))
        timestamp = int(self.clock() * 1000)
        secret = str(self.setting("secret"))
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}timestamp={timestamp}&sign={sign(secret, timestamp)}", body

    def reason_rule(self, code: int, reason: str) -> ErrorRule | None:
        if code != 310000:
            return None
        low = reason.lower()
        if "sign" in low or "timestamp" in low:
            return _SIGN
        if "keyword" in low:
            return _KEYWORD
        if "ip" in low or "whitelist" in low:
            return _IP
        return None

    # --- rendering ------------------------------------------------------------------------

    def _at(self) -> tuple[dict[str, Any], str]:
        mobiles = split_list(self.config.get("at_mobiles"))
        at_all = bool(self.config.get("at_all"))
        # DingTalk only notifies people whose "@mobile" also appears in the text.
        mention_text = " ".join(f"@{m}" for m in mobiles)
        return {"atMobiles": mobiles, "isAtAll": at_all}, mention_text

    def _markdown(self, post: OutgoingPost, limit: int) -> str:
        _, mentions = self._at()
        blocks = [f"### {title_of(post)}", *robot_markdown_blocks(post.body_markdown,
                                                                  DINGTALK_MD)]
        return join_fitting(blocks, limit, more_line(post, markdown=True), tail=mentions)

    def _text(self, post: OutgoingPost, limit: int) -> str:
        _, mentions = self._at()
        blocks = [title_of(post), *markdown_to_text(post.body_markdown).split("\n\n")]
        return join_fitting(blocks, limit, more_line(post, markdown=False), tail=mentions)

    def _render(self, post: OutgoingPost, limit: int) -> dict[str, Any]:
        at, _ = self._at()
        title = title_of(post)
        if self.msgtype == "text":
            return {"msgtype": "text", "text": {"content": self._text(post, limit)}, "at": at}
        if self.msgtype == "link":
            link = {"title": title,
                    "text": post.summary.strip() or plain_excerpt(post.body_markdown, 200),
                    "messageUrl": post.public_url or ""}
            return {"msgtype": "link", "link": link}
        if self.msgtype == "actionCard":
            card = {"title": title, "text": self._markdown(post, limit),
                    "btnOrientation": "0", "singleTitle": MORE,
                    "singleURL": post.public_url or ""}
            return {"msgtype": "actionCard", "actionCard": card}
        return {"msgtype": "markdown",
                "markdown": {"title": title, "text": self._markdown(post, limit)}, "at": at}

    def render(self, post: OutgoingPost) -> dict[str, Any]:
        # The limit counts the whole message, JSON included.
        return render_within(lambda budget: self._render(post, budget), BODY_BYTES)

    def test_payload(self) -> dict[str, Any]:
        return {"msgtype": "text", "text": {"content": "ContentOps：连接测试 / connection test"}}

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        if self.msgtype in ("link", "actionCard") and not post.public_url:
            findings.append(Finding(
                "link_needs_url", "error",
                N_("This DingTalk message type links to the full text: also publish this "
                   "piece on a web channel, or choose the text or markdown message type."),
                field="channels"))
        size = len(dump(self._render(post, 10**9)))
        finding = fit_finding(post, size, BODY_BYTES, "body_too_long")
        if finding:
            findings.append(finding)
        return findings


MORE = "阅读全文"
