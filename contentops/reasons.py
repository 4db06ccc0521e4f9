"""Failure and refusal reasons, stored as a message id + params (+ technical detail) so every
reader — the Publishing page, the API, a notification e-mail — gets them in their own language.

Publishing, review and notifications all write or read these; keeping them here (and not in
the engine) is what lets those services import each other without a circle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


def encode_reason(message: str, params: Mapping[str, Any] | None = None,
                  detail: str | None = None) -> str:
    """A readable reason as stored in posts.last_error / publish_attempts.error."""
    data: dict[str, Any] = {"msg": message}
    if params:
        data["params"] = {k: v for k, v in params.items()}
    if detail:
        data["detail"] = detail[:500]
    return json.dumps(data, ensure_ascii=False)


def decode_reason(text: str | None) -> tuple[str, dict[str, Any], str | None]:
    """(msgid, params, detail); plain text written by anything else comes back as the msgid."""
    if not text:
        return "", {}, None
    if text.startswith("{"):
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("msg"), str):
                return data["msg"], dict(data.get("params") or {}), data.get("detail")
        except ValueError:
            pass
    return text, {}, None


def reason_text(text: str | None, translate: Callable[[str, dict], str] | None = None) -> str:
    """Render a stored reason, translated when a translate(msgid, params) is given."""
    msg, params, detail = decode_reason(text)
    if not msg:
        return ""
    if translate is not None:
        out = translate(msg, params)
    else:
        try:
            out = msg % params if params else msg
        except (KeyError, ValueError, TypeError):
            out = msg
    return f"{out} ({detail})" if detail else out
