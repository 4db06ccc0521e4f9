"""Fake WeCom group robot: POST /cgi-bin/webhook/send?key=… (企业微信群机器人)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request

from .server import FakeService, byte_len

MESSAGES = {
    0: "ok",
    -1: "system busy",
    93000: "invalid webhook url, hint: [1700000000_1_abc], from ip: 127.0.0.1",
    45009: "api freq out of limit, hint: [1700000000_2_abc]",
    40008: "invalid message type, hint: [1700000000_3_abc]",
    44004: "empty content, hint: [1700000000_4_abc]",
    40058: "invalid parameter, hint: [1700000000_5_abc]",
    45002: "content size out of limit, hint: [1700000000_6_abc]",
}


class FakeWeCom(FakeService):
    per_minute = 20

    def __init__(self, keys: tuple[str, ...] = ("wecom-key-123",)) -> None:
        super().__init__()
        self.keys = set(keys)

    def webhook_url(self, key: str = "wecom-key-123") -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={key}"

    def _err(self, code: int) -> tuple[dict[str, Any], int]:
        return {"errcode": code, "errmsg": MESSAGES.get(code, "error")}, 200

    def handle(self, request: Request) -> tuple[dict[str, Any], int]:
        if request.method != "POST" or request.path != "/cgi-bin/webhook/send":
            return {"errcode": 404, "errmsg": "not found"}, 404
        key = request.args.get("key", "")
        if key not in self.keys:
            return self._err(93000)
        forced = self.next_failure()
        if forced is not None:
            return self._err(forced)
        if not self.rate_ok(key):
            return self._err(45009)
        try:
            msg = json.loads(request.get_data())
        except ValueError:
            return self._err(40058)
        error = self.check(msg)
        if error:
            return self._err(error)
        self.accept(msg)
        return self._err(0)

    @staticmethod
    def check(msg: dict[str, Any]) -> int | None:
        """Field rules and byte limits exactly as WeCom enforces them."""
        kind = msg.get("msgtype")
        if kind == "text":
            content = (msg.get("text") or {}).get("content") or ""
            if not content:
                return 44004
            return 45002 if byte_len(content) > 2048 else None
        if kind == "markdown":
            content = (msg.get("markdown") or {}).get("content") or ""
            if not content:
                return 44004
            return 45002 if byte_len(content) > 4096 else None
        if kind == "news":
            articles = (msg.get("news") or {}).get("articles")
            if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
                return 40058
            for article in articles:
                if not article.get("title") or not article.get("url"):
                    return 40058
                if byte_len(article["title"]) > 128 or \
                        byte_len(article.get("description", "")) > 512:
                    return 45002
            return None
        return 40008
