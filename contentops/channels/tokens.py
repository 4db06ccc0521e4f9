"""Access tokens of services whose API wants one (公众号, 企业微信): fetched with the app's
credentials, valid for about two hours, and — for WeChat — invalidated by the next fetch. So a
token must be shared by every process and refreshed by one of them at a time; the database
store (services.access_tokens) does that, and this module holds what adapters see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

# Renew this long before the service's stated expiry, so a call never races the deadline.
RENEW_MARGIN_S = 300.0

Fetch = Callable[[], tuple[str, int]]


class TokenStore(Protocol):
    def get(self, key: str, fetch: Fetch, *, invalid: str | None = None) -> str:
        """The current token for `key`, fetching one with `fetch()` -> (token, expires_in_s)
        when there is none or it is about to expire. `invalid` is a token the service just
        refused (expired/revoked): it is replaced unless someone already replaced it."""
        ...


class MemoryTokenStore:
    """In-process store: tests, previews, and adapters built without a database."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: str, fetch: Fetch, *, invalid: str | None = None) -> str:
        with self._lock:
            current = self._tokens.get(key)
            if current and current[0] != invalid and current[1] - RENEW_MARGIN_S > self._clock():
                return current[0]
            token, expires_in = fetch()
            self._tokens[key] = (token, self._clock() + float(expires_in))
            return token
