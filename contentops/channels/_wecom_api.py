"""A small client for the WeCom server API (qyapi.weixin.qq.com): access tokens shared through
the adapter's token store, one retry with a fresh token on 40014/42001, readable errors, media
uploads. Used by `wecom_customer`; secrets never reach a log or an error text.

Error codes: WeCom global error codes (document/path/90313) and the 客户联系 pages named in
`wecom_customer`. 41xxx are "a required parameter is missing"; 48002 is "api forbidden" (the
secret's app may not call this API).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ..errors import N_
from . import _http
from ._robot import ErrorRule, raise_for_code
from .base import TransientError

log = logging.getLogger(__name__)

API_BASE = "https://qyapi.weixin.qq.com"
SERVICE = "WeCom"
TOKEN_INVALID = (40014, 42001)  # 不合法的access_token / access_token已过期

ERRORS: dict[int, ErrorRule] = {
    -1: ErrorRule(True, N_("WeCom is busy right now; it will be tried again shortly.")),
    45009: ErrorRule(True, N_("WeCom says the API is called too often (45009); it will be "
                              "tried again in a minute."), retry_after=60),
    45033: ErrorRule(True, N_("WeCom refused too many calls at once (45033); it will be tried "
                              "again shortly."), retry_after=10),
    40013: ErrorRule(False, N_("WeCom does not know this corp ID (40013): copy it from 我的企业 → "
                               "企业信息 in the WeCom admin console.")),
    40001: ErrorRule(False, N_("WeCom refused the secret (40001): enter the 客户联系 secret, or "
                               "the secret of a self-built app with 客户联系 permission.")),
    41002: ErrorRule(False, N_("The corp ID is missing (41002); open the channel settings and "
                               "enter it.")),
    41004: ErrorRule(False, N_("The secret is missing (41004); open the channel settings and "
                               "enter it.")),
    48002: ErrorRule(False, N_("WeCom does not let this secret call the 客户联系 API (48002 api "
                               "forbidden). Use the 客户联系 secret or a self-built app listed "
                               "under 客户联系 → 可调用接口的应用; the 系统应用 secret no longer "
                               "works since 2023-12-01.")),
    60011: ErrorRule(False, N_("The app may not act for this member (60011 no privilege): add "
                               "the senders to the app's visible range.")),
    # Global error code page (90313): 84061 "不存在外部联系人的关系" — the customer is not (or
    # no longer) the member's external contact. Uncertain which calls return it rather than
    # listing the customer in fail_list; the fake returns it for a broadcast whose only
    # addressed customers are not the sender's.
    84061: ErrorRule(False, N_("WeCom says the customer is not an external contact of the "
                               "member (84061 no relation): the customer may have deleted "
                               "the sender, or belongs to another member.")),
    84074: ErrorRule(False, N_("The app has no 客户联系 permission (84074).")),
    40003: ErrorRule(False, N_("WeCom does not know a sender (40003 invalid userid): check the "
                               "senders' userids in the channel settings.")),
    40096: ErrorRule(False, N_("WeCom does not know a customer id (40096 invalid external "
                               "userid).")),
    40007: ErrorRule(False, N_("WeCom refused an uploaded image or file (40007 invalid "
                               "media_id).")),
    40005: ErrorRule(False, N_("WeCom does not accept this kind of file (40005); images must "
                               "be JPG or PNG.")),
    40009: ErrorRule(False, N_("WeCom refused the image size (40009); images must be at most "
                               "2 MB.")),
    44004: ErrorRule(False, N_("WeCom refused an empty message (44004).")),
    45002: ErrorRule(False, N_("WeCom says a part of the message is too long (45002: "
                               "%(reason)s).")),
    40058: ErrorRule(False, N_("WeCom refused a parameter (40058: %(reason)s).")),
    40008: ErrorRule(False, N_("WeCom does not accept this attachment type (40008).")),
    90207: ErrorRule(False, N_("WeCom does not accept the mini program's appid (90207): it must "
                               "be linked to the company.")),
}


def _missing_rule(code: int, reason: str) -> ErrorRule | None:
    if 41000 <= code < 42000 and code not in ERRORS:
        return ErrorRule(False, N_("A required field is missing in the request to WeCom (error "
                                   "%(code)s: %(reason)s)."))
    return None


def fingerprint(secret: str) -> str:
    """Identifies a secret in token keys without revealing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class LocalTokens:
    """In-process token cache with the TokenStore interface (tests, previews, and adapters
    built without a shared store)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, fetch: Callable[[], tuple[str, int]], *,
            invalid: str | None = None) -> str:
        with self._lock:
            current = self._tokens.get(key)
            if current and current[0] != invalid and current[1] > time.monotonic():
                return current[0]
            token, expires_in = fetch()
            # Renew five minutes early, as the shared store does.
            self._tokens[key] = (token, time.monotonic() + max(0, int(expires_in) - 300))
            return token


class WeComAPI:
    """Calls for one corp + secret. `tokens` is a TokenStore (get(key, fetch, invalid=))."""

    def __init__(self, *, corp_id: str, secret: str, api_base: str | None, tokens: Any,
                 http: Any = None, timeout: float = 10.0,
                 budget: _http.Budget | None = None) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.api_base = (api_base or API_BASE).rstrip("/")
        self.tokens = tokens
        self.http = http or requests
        self.timeout = timeout
        # Shared by every call (and image download) of one publish: see _http.
        self.budget = budget
        self.key = f"wecom:{corp_id}:{fingerprint(secret)}"

    # --- tokens -------------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, int]:
        reply = self._request("GET", "/cgi-bin/gettoken",
                              params={"corpid": self.corp_id, "corpsecret": self.secret})
        code, reason = _code(reply)
        if code != 0:
            raise_for_code(SERVICE, code, reason, ERRORS, reason_rule=_missing_rule)
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(N_("WeCom answered without an access token; it will be tried "
                                    "again."), detail="gettoken: no access_token")
        return token, int(reply.get("expires_in") or 7200)

    def token(self, invalid: str | None = None) -> str:
        return self.tokens.get(self.key, self._fetch_token, invalid=invalid)

    # --- calls --------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
             params: Mapping[str, Any] | None = None,
             files: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One API call with the current token; a token the service calls invalid or expired
        is replaced (once, in every process sharing the store) and the call repeated."""
        token = self.token()
        for attempt in (1, 2):
            reply = self._request(method, path, params={**(params or {}), "access_token": token},
                                  body=body, files=files)
            code, reason = _code(reply)
            if code in TOKEN_INVALID and attempt == 1:
                token = self.token(invalid=token)
                continue
            if code in TOKEN_INVALID:
                raise TransientError(N_("WeCom refused a fresh access token (error %(code)s); "
                                        "it will be tried again."), {"code": code},
                                     detail=f"errcode {code}: {reason[:200]}")
            if code != 0:
                raise_for_code(SERVICE, code, reason, ERRORS, reason_rule=_missing_rule)
            return reply
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, *, params: Mapping[str, Any],
                 body: Mapping[str, Any] | None = None,
                 files: Mapping[str, Any] | None = None) -> dict[str, Any]:
        url = self.api_base + path
        return _http.service_json(
            self.http, method, url, service=SERVICE, path=path, timeout=self.timeout,
            budget=self.budget, params=params, body=body, files=files,
            bad_address=N_("The WeCom API address in the channel settings is not usable."),
            refused=N_("%(service)s refused the request (HTTP %(status)s); check the API "
                       "address."))

    # --- media --------------------------------------------------------------------------------

    def upload_image_url(self, data: bytes, filename: str) -> str:
        """上传图片 (uploadimg): a permanent URL usable as `pic_url` in broadcasts."""
        reply = self.call("POST", "/cgi-bin/media/uploadimg",
                          files={"media": (filename, data, _mime(filename))})
        url = reply.get("url")
        if not isinstance(url, str) or not url:
            raise TransientError(N_("WeCom did not return the uploaded image's address."),
                                 detail="uploadimg: no url")
        return url

    def upload_media_image(self, data: bytes, filename: str) -> str:
        """上传临时素材 (media/upload, type=image): a media_id valid for three days, which
        mini-program cards need as `pic_media_id` (doc 90253)."""
        reply = self.call("POST", "/cgi-bin/media/upload", params={"type": "image"},
                          files={"media": (filename, data, _mime(filename))})
        media_id = reply.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise TransientError(N_("WeCom did not return the uploaded image's id."),
                                 detail="media/upload: no media_id")
        return media_id

    def upload_moment_image(self, data: bytes, filename: str) -> str:
        """上传附件资源 for 朋友圈 (attachment_type=1): a media_id valid for three days."""
        reply = self.call("POST", "/cgi-bin/media/upload_attachment",
                          params={"media_type": "image", "attachment_type": 1},
                          files={"media": (filename, data, _mime(filename))})
        media_id = reply.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise TransientError(N_("WeCom did not return the uploaded image's id."),
                                 detail="upload_attachment: no media_id")
        return media_id

    def pages(self, path: str, body: Mapping[str, Any], key: str, *, limit: int,
              max_pages: int = 200) -> list[dict[str, Any]]:
        """Every row of a cursor-paged list (next_cursor empty = done)."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(max_pages):
            reply = self.call("POST", path, body={**body, "limit": limit,
                                                  **({"cursor": cursor} if cursor else {})})
            rows.extend(r for r in (reply.get(key) or []) if isinstance(r, dict))
            cursor = str(reply.get("next_cursor") or "")
            if not cursor:
                return rows
        log.warning("%s: stopped after %d pages", path, max_pages)
        return rows


def _code(reply: Mapping[str, Any]) -> tuple[int, str]:
    try:
        code = int(reply.get("errcode", 0))
    except (TypeError, ValueError):
        code = -1
    return code, str(reply.get("errmsg") or "")


def _mime(filename: str) -> str:
    return "image/png" if filename.lower().endswith(".png") else "image/jpeg"
