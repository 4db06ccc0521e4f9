"""Fake Feishu custom bot: POST /open-apis/bot/v2/hook/<id>, timestamp and sign in the body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from werkzeug.wrappers import Request

from .server import FakeService

MESSAGES = {
    0: "success",
    19021: "sign match fail or timestamp is not within one hour from current time",
    11232: "frequency limited psm[lark.oapi.app_platform_runtime]appID[1234]",
    19022: "Ip Not Allowed",
    19024: "Key Words Not Found",
    9499: "Bad Request",
    19001: "param invalid: incoming webhook access token invalid",
}
BODY_LIMIT = 20 * 1024


class FakeFeishu(FakeService):
    per_minute = 100

    def __init__(self, hooks: dict[str, str] | None = None) -> None:
        super().__init__()
        self.hooks = hooks or {"feishu-hook-123": "feishu-secret-456"}  # hook id → secret
        self.keywords: tuple[str, ...] = ()

    def webhook_url(self, hook: str = "feishu-hook-123") -> str:
        return f"{self.base}/open-apis/bot/v2/hook/{hook}"

    def _err(self, code: int, status: int = 200) -> tuple[dict[str, Any], int]:
        return {"code": code, "msg": MESSAGES.get(code, "error"), "data": {}}, status

    @staticmethod
    def expected_sign(secret: str, timestamp: str) -> str:
        key = f"{timestamp}\n{secret}".encode()
        return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        prefix = "/open-apis/bot/v2/hook/"
        if request.method != "POST" or not request.path.startswith(prefix):
            return {"code": 404, "msg": "not found"}, 404
        hook = request.path[len(prefix):]
        if hook not in self.hooks:
            return self._err(19001, 400)
        body = request.get_data()
        if len(body) > BODY_LIMIT:
            return self._err(9499, 400)
        try:
            msg = json.loads(body)
        except ValueError:
            return self._err(9499, 400)
        timestamp = str(msg.get("timestamp", ""))
        if not timestamp.isdigit() or abs(int(timestamp) - self.clock()) > 3600 or \
                not hmac.compare_digest(str(msg.get("sign", "")),
                                        self.expected_sign(self.hooks[hook], timestamp)):
            return self._err(19021)
        forced = self.next_failure()
        if forced is not None:
            return self._err(forced)
        if not self.rate_ok(hook):
            return self._err(11232)
        if self.keywords and not any(k in json.dumps(msg, ensure_ascii=False)
                                     for k in self.keywords):
            return self._err(19024)
        kind = msg.get("msg_type")
        if kind == "text":
            ok = bool((msg.get("content") or {}).get("text"))
        elif kind == "post":
            post = ((msg.get("content") or {}).get("post") or {})
            ok = bool(post) and all(isinstance(v.get("content"), list) for v in post.values())
        elif kind == "interactive":
            ok = isinstance(msg.get("card"), dict)
        else:
            ok = kind in ("image", "share_chat")
        if not ok:
            return self._err(9499, 400)
        self.accept(msg)
        return self._err(0)
