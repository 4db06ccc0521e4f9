"""The one way channel adapters make HTTP calls (publish, metrics, service APIs, images).

Two rules every call keeps:

- **A redirect is not a delivery.** A 3xx answer is never followed: requests would repeat a
  POST as a body-less GET (301/302/303) and a GET that answers 200 would look like a
  published post. The answer is a PermanentError naming the status and the `Location`; the
  operator enters the final address. Only image downloads (`follow_redirects=True`) follow
  them, as CDNs redirect GETs as a matter of course.
- **The timeout bounds the whole call.** requests' timeout bounds each socket read, so a reply
  trickling in one byte at a time can hold a send far past it. Here the call gets a deadline
  (`timeout` from now, never later than the publish's `Budget`); the body is read in chunks
  with the socket timeout cut to what is left before each read. A deadline passed while the
  reply is being read raises `DeadlineExceeded` (a requests.ReadTimeout, so each adapter keeps
  its own classification of timeouts: transient for idempotent senders, in doubt for robots).
  One residue remains: the status line and headers are read by http.client with one socket
  timeout per read (at most what was left when the request went out); a server trickling its
  *headers* could still stretch that phase. The body, where replies can be large, is bounded.

The deadline of one send must stay well below the post's lease (120 s by default), or a live
send could be reaped and re-sent: channels allow `timeout_s` up to 60 s, and a publish of
several calls shares one `Budget` (ChannelAdapter.send_budget_s, which the scheduler lowers
to three quarters of its lease).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error

from ..errors import N_
from .base import InDoubt, PermanentError, TransientError

# A reply larger than this is not an API answer (a proxy's error page at most, or worse).
MAX_REPLY_BYTES = 4 * 1024 * 1024
CHUNK = 64 * 1024

# Robot webhook URLs and API calls carry credentials (key=, access_token=, corpsecret=, the
# Feishu hook id); a Location naming them is blanked before it reaches a reason or a log.
_SECRET_IN_URL = re.compile(
    r"((?:key|access_token|secret|sign|timestamp)=)[^&\s\"']+|(/bot/v2/hook/)[^?\s\"']+",
    re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class Budget:
    """Time allowed for all the calls of one operation (a publish of several API calls and
    image downloads): no call's deadline is later than `ends` (time.monotonic())."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + max(0.0, float(seconds))

    def remaining(self) -> float:
        return self.ends - time.monotonic()


class DeadlineExceeded(requests.ReadTimeout):
    """The call's total deadline passed while its reply was being read. The request went out,
    so it may have been processed (a read timeout, as far as the adapters are concerned)."""


class BudgetSpent(requests.ConnectTimeout):
    """The operation's budget was used up before this call started: nothing was sent."""


class ReplyTooLarge(PermanentError):
    """The reply exceeded the size cap (`limit` bytes); the call was cut off."""

    def __init__(self, limit: int) -> None:
        super().__init__(N_("The reply was larger than %(size)s MB and was cut off."),
                         {"size": max(1, limit // (1024 * 1024))},
                         detail=f"reply over {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Reply:
    """A reply read in full within its deadline."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive (requests' CaseInsensitiveDict)
    content: bytes
    url: str

    def json(self) -> Any:
        """The decoded JSON body; ValueError when it is not JSON."""
        return json.loads(self.content)


def redirect_error(status: int, location: str | None, url: str) -> PermanentError:
    """A readable permanent error for a 3xx answer (never followed)."""
    if location:
        target = redact(urljoin(url, location))[:300]
        return PermanentError(
            N_("The address answered with a redirect (HTTP %(status)s to %(location)s) "
               "instead of taking the request; redirects are not followed. Enter the final "
               "address in the channel settings."),
            # The detail repeats only what the text says, so a reason shows it once.
            {"status": status, "location": target}, detail=f"HTTP {status}")
    return PermanentError(
        N_("The address answered with a redirect (HTTP %(status)s) instead of taking the "
           "request; redirects are not followed. Check the address in the channel "
           "settings."), {"status": status}, detail=f"HTTP {status}")


def request(http: Any, method: str, url: str, *, timeout: float,
            budget: Budget | None = None, follow_redirects: bool = False,
            max_bytes: int = MAX_REPLY_BYTES, **kwargs: Any) -> Reply:
    """One HTTP call finished (reply read in full) within `timeout` seconds from now and
    within `budget`. `http` is a requests.Session (or the requests module).

    Raises requests' own exceptions for network trouble (each adapter classifies them),
    `DeadlineExceeded` (a requests.ReadTimeout) when the deadline passes while reading,
    `BudgetSpent` (a requests.ConnectTimeout) when no time was left to start, a
    PermanentError for a 3xx unless `follow_redirects`, `ReplyTooLarge` past `max_bytes`.
    """
    start = time.monotonic()
    deadline = start + max(0.0, float(timeout))
    if budget is not None:
        deadline = min(deadline, budget.ends)
    left = deadline - start
    if left <= 0:
        raise BudgetSpent("no time left for this call")
    response = (http or requests).request(method, url, timeout=(left, left), stream=True,
                                          allow_redirects=follow_redirects, **kwargs)
    done = False
    try:
        status = response.status_code
        if 300 <= status < 400 and not follow_redirects:
            raise redirect_error(status, response.headers.get("Location"), url)
        content = _read_body(response, deadline, max_bytes)
        done = True
        return Reply(status, response.headers, content, response.url or url)
    finally:
        if done:
            # Read to the end: the connection goes back to the pool for keep-alive reuse.
            response.raw.release_conn()
        else:
            response.close()


def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
    raw = response.raw
    parts: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the reply did not arrive in full within the timeout")
        _limit_wait(raw, left)
        try:
            # read1: whatever one socket read returns (read(n) would wait for n bytes).
            chunk = raw.read1(CHUNK, decode_content=True)
        except (ReadTimeoutError, TimeoutError) as exc:
            raise DeadlineExceeded("the reply did not arrive in full within the timeout") \
                from exc
        except (Urllib3Error, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > max_bytes:
            raise ReplyTooLarge(max_bytes)
        parts.append(chunk)


def _limit_wait(raw: Any, seconds: float) -> None:
    """Cut the socket's timeout to what is left, so the next read cannot outlast it."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        # A socket already closed: the read will say so.
        with contextlib.suppress(OSError):
            sock.settimeout(max(0.001, seconds))


def download_image(http: Any, url: str, *, timeout: float, budget: Budget | None,
                   max_bytes: int, too_large: PermanentError) -> bytes:
    """An image to upload to a service: redirects followed (image hosts and CDNs use them),
    bounded in time (channel timeout, publish budget) and size (`too_large` when over)."""
    try:
        response = request(http, "GET", url, follow_redirects=True, timeout=timeout,
                           budget=budget, max_bytes=max_bytes)
    except ReplyTooLarge:
        raise too_large from None
    except requests.RequestException as exc:
        raise TransientError(N_("The image %(url)s could not be downloaded; it will be "
                                "tried again."), {"url": url[:200]},
                             detail=type(exc).__name__) from None
    if response.status_code >= 400:
        error = TransientError if response.status_code >= 500 else PermanentError
        raise error(N_("The image %(url)s could not be downloaded (HTTP %(status)s)."),
                    {"url": url[:200], "status": response.status_code},
                    detail=f"image HTTP {response.status_code}")
    return response.content


def never_sent(exc: requests.RequestException) -> bool:
    """True when no connection was made (refused, unresolvable, connect timeout), so the
    request cannot have reached the service. Anything later — a read timeout, a reset while
    waiting for the reply — leaves the message possibly delivered: robots do not dedupe, so
    the post is in doubt rather than re-sent (InDoubt)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the cause
    return isinstance(cause, (NewConnectionError, ConnectTimeoutError))


def service_json(http: Any, method: str, url: str, *, service: str, path: str,
                 timeout: float, budget: Budget | None, bad_address: str,
                 params: Mapping[str, Any], body: Mapping[str, Any] | None = None,
                 files: Mapping[str, Any] | None = None, refused: str | None = None,
                 once: bool = False) -> dict[str, Any]:
    """One call to a service's JSON API (公众号, 企业微信), its failures as the adapter
    errors every such call shares: no answer in time or a broken connection is transient —
    or InDoubt for a call without an idempotency key (`once`) that may have reached the
    service; an unusable address is permanent (`bad_address`); a reply that is not a JSON
    object is transient, except a 4xx when `refused` says what to check. Error texts name
    the service and the API path, never the URL (it may hold a token). `body` goes as UTF-8
    JSON, `files` as a multipart upload."""
    kwargs: dict[str, Any] = {"params": dict(params),
                              "headers": {"User-Agent": "ContentOps/1"}}
    if files is not None:
        kwargs["files"] = files
    elif body is not None:
        kwargs["data"] = dump(body)
        kwargs["headers"]["Content-Type"] = "application/json; charset=utf-8"
    try:
        response = request(http, method, url, timeout=timeout, budget=budget, **kwargs)
    except requests.Timeout as exc:
        error = InDoubt if once and not never_sent(exc) else TransientError
        raise error(N_("%(service)s did not answer in time."), {"service": service},
                    detail=f"{path}: {type(exc).__name__}") from None
    except requests.ConnectionError as exc:
        error = InDoubt if once and not never_sent(exc) else TransientError
        raise error(N_("Could not connect to %(service)s (the connection failed or "
                       "was closed)."), {"service": service},
                    detail=f"{path}: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        raise PermanentError(bad_address, detail=f"{path}: {type(exc).__name__}") from None
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if isinstance(reply, dict):
        return reply
    status = response.status_code
    if refused is not None and 400 <= status < 500 and status != 429:
        raise PermanentError(refused, {"service": service, "status": status},
                             detail=f"{path}: HTTP {status}")
    raise TransientError(N_("%(service)s answered with an unexpected reply "
                            "(HTTP %(status)s)."), {"service": service, "status": status},
                         detail=f"{path}: HTTP {status}")


def dump(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (services count limits on UTF-8, so no \\u escapes)."""
    return json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
