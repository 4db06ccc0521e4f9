"""Failure and refusal reasons, stored as a message id + params (+ technical detail) so every
reader — the Publishing page, the API, a notification e-mail — gets them in their own language.

Publishing, review and notifications all write or read these; keeping them here (and not in
the engine) is what lets those services import each other without a circle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
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


def nested_reason(text: str | None) -> dict[str, Any]:
    """A stored reason as a param of another one (e.g. "Gave up after %(attempts)s attempts.
    Last error: %(error)s"): kept as message id + params, so `reason_text` renders it in the
    reader's language rather than in the language of the moment it was stored."""
    msg, params, detail = decode_reason(text)
    data: dict[str, Any] = {"msg": msg}
    if params:
        data["params"] = params
    if detail:
        data["detail"] = detail
    return data


def _is_reason(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("msg"), str)


def _render(msg: str, params: Mapping[str, Any],
            translate: Callable[[str, dict], str] | None,
            instant: Callable[[datetime], str] | None = None) -> str:
    # Nested reasons first, in the same language, without their technical detail (the
    # outer reason carries it once); instants in the reader's zone.
    params = readable_params(
        {k: (_render(v["msg"], v.get("params") or {}, translate, instant) if _is_reason(v)
             else v) for k, v in params.items()}, instant)
    if translate is not None:
        return translate(msg, params)
    try:
        return msg % params if params else msg
    except (KeyError, ValueError, TypeError):
        return msg


def reason_detail(text: str | None) -> str | None:
    """The technical detail of a stored reason, or of the innermost reason nested in it."""
    _, params, detail = decode_reason(text)
    while not detail:
        inner = next((v for v in params.values() if _is_reason(v)), None)
        if inner is None:
            return None
        params, detail = inner.get("params") or {}, inner.get("detail")
    return detail


def reason_text(text: str | None, translate: Callable[[str, dict], str] | None = None,
                instant: Callable[[datetime], str] | None = None) -> str:
    """Render a stored reason, translated when a translate(msgid, params) is given; instant
    params (see instant_param) are written by instant(), e.g. in the reader's zone. The
    technical detail is added in brackets unless the text already says it ("HTTP 503")."""
    msg, params, _ = decode_reason(text)
    if not msg:
        return ""
    out = _render(msg, params, translate, instant)
    detail = reason_detail(text)
    return f"{out} ({detail})" if detail and detail not in out else out


# --- instants -------------------------------------------------------------------------------
# A moment in time stored as a param must be shown in each reader's zone, not as the UTC text
# it was written with. It is stored typed, {"instant": "<ISO 8601 UTC>"}, and turned into
# text only when rendered. (Reasons stored before this was added hold plain text and stay so.)

_INSTANT = "instant"


def instant_param(value: datetime) -> dict[str, str]:
    """A reason param for a moment in time: each reader sees it in their zone and language."""
    return {_INSTANT: value.astimezone(UTC).isoformat().replace("+00:00", "Z")}


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def readable_params(params: Mapping[str, Any],
                    instant: Callable[[datetime], str] | None = None) -> dict[str, Any]:
    """The params with each instant written by instant(); without one, in UTC (say so)."""
    out = dict(params)
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {_INSTANT}:
            try:
                moment = datetime.fromisoformat(str(value[_INSTANT]).replace("Z", "+00:00"))
            except ValueError:
                out[key] = str(value[_INSTANT])
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            out[key] = (instant or _utc_text)(moment)
    return out
