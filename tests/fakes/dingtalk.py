"""Fake DingTalk custom robot: POST /robot/send?access_token=…&timestamp=…&sign=…"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from werkzeug.wrappers import Request

from .server import FakeService

MESSAGES = {
    0: "ok",
    -1: "系统繁忙",
    130101: "send too fast, exceed 20 times per minute",
    300001: "token is not exist",
    460101: "message too long, exceed 20000 bytes",
    40035: "缺少参数 json",
}
SIGN_MISMATCH = "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
KEYWORDS_MISSING = "keywords not in content, more: [https://ding-doc.dingtalk.com/doc]"
IP_REFUSED = "ip 127.0.0.1 not in whitelist, more: [https://ding-doc.dingtalk.com/doc]"
TIMESTAMP_INVALID = "invalid timestamp, more: [https://ding-doc.dingtalk.com/doc]"


class FakeDingTalk(FakeService):
    per_minute = 20

    def __init__(self, robots: dict[str, str] | None = None) -> None:
        super().__init__()
        self.robots = robots or {"ding-token-123": "SECtest-secret-456"}  # token → secret
        self.keywords: tuple[str, ...] = ()
        self.ip_refused = False
        self.throttled_until: dict[str, float] = {}

    def webhook_url(self, token: str = "ding-token-123") -> str:
        return f"{self.base}/robot/send?access_token={token}"

    def _err(self, code: int, msg: str | None = None) -> tuple[dict[str, Any], int]:
        return {"errcode": code, "errmsg": msg or MESSAGES.get(code, "error")}, 200

    @staticmethod
    def expected_sign(secret: str, timestamp: str) -> str:
        digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                          hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        if request.method != "POST" or request.path != "/robot/send":
            return {"errcode": 404, "errmsg": "not found"}, 404
        token = request.args.get("access_token", "")
        if token not in self.robots:
            return self._err(300001)
        # werkzeug URL-decodes the query: `sign` is compared as the plain base64 value,
        # so a sender that forgot to URL-encode it ("+" → " ") fails just as with DingTalk.
        timestamp = request.args.get("timestamp", "")
        given = request.args.get("sign", "")
        if not timestamp.isdigit() or abs(int(timestamp) / 1000 - self.clock()) > 3600:
            return self._err(310000, TIMESTAMP_INVALID)
        if not hmac.compare_digest(given, self.expected_sign(self.robots[token], timestamp)):
            return self._err(310000, SIGN_MISMATCH)
        if self.ip_refused:
            return self._err(310000, IP_REFUSED)
        forced = self.next_failure()
        if forced is not None:
            return self._err(forced, SIGN_MISMATCH if forced == 310000 else None)
        now = self.clock()
        if self.throttled_until.get(token, 0) > now:
            return self._err(130101)
        if not self.rate_ok(token):
            self.throttled_until[token] = now + 600  # DingTalk pauses the robot 10 minutes
            return self._err(130101)
        body = request.get_data()
        if len(body) > 20000:
            return self._err(460101)
        try:
            msg = json.loads(body)
        except ValueError:
            return self._err(40035)
        if self.keywords and not any(k in json.dumps(msg, ensure_ascii=False)
                                     for k in self.keywords):
            return self._err(310000, KEYWORDS_MISSING)
        kind = msg.get("msgtype")
        part = msg.get(kind) if isinstance(kind, str) else None
        if kind not in ("text", "markdown", "link", "actionCard", "feedCard") or \
                not isinstance(part, dict):
            return self._err(40035)
        if kind == "text" and not part.get("content"):
            return self._err(40035)
        if kind == "markdown" and not (part.get("title") and part.get("text")):
            return self._err(40035)
        if kind == "link" and not (part.get("title") and part.get("messageUrl")):
            return self._err(40035)
        self.accept(msg)
        return self._err(0)
