"""The database-backed token store: one token per service credential for every web and
scheduler process, refreshed by one process at a time (a lease row), renewed shortly before
expiry, encrypted at rest like channel secrets.

Each read and write is its own short transaction on its own connection, so a refresh is
visible to other processes at once and never rides on a caller's transaction.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..channels.base import TransientError
from ..channels.secrets import decrypt, encrypt
from ..channels.tokens import RENEW_MARGIN_S, Fetch
from ..errors import N_
from ..models.access_tokens import AccessToken
from ..timeutil import utcnow

_T = AccessToken.__table__
# A refresh is one HTTPS call; a process that holds the lease longer than this has died.
LEASE_S = 30.0
_OWNER = f"{socket.gethostname()}:{os.getpid()}"


class DatabaseTokenStore:
    def __init__(self, engine: Engine, secret_key: str, *,
                 clock: Callable[[], datetime] = utcnow, wait_s: float = LEASE_S + 5,
                 poll_s: float = 0.2) -> None:
        self.engine = engine
        self.secret_key = secret_key
        self.clock = clock
        self.wait_s = wait_s
        self.poll_s = poll_s

    def _read(self, key: str) -> tuple[str | None, datetime | None]:
        with self.engine.connect() as conn:
            row = conn.execute(select(_T.c.token, _T.c.expires_at)
                               .where(_T.c.key == key)).first()
        if row is None or not row.token:
            return None, None
        try:
            return decrypt(row.token, self.secret_key).get("t"), row.expires_at
        except ValueError:  # the secret key changed: the stored token is unreadable, refetch
            return None, None

    def _usable(self, token: str | None, expires_at: datetime | None, invalid: str | None
                ) -> bool:
        return bool(token) and token != invalid and expires_at is not None and (
            expires_at - timedelta(seconds=RENEW_MARGIN_S) > self.clock())

    def _take_lease(self, key: str) -> bool:
        now = self.clock()
        with self.engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(insert(_T).values(key=key, updated_at=now))
            except IntegrityError:
                pass  # the row exists already
            return conn.execute(
                update(_T).where(_T.c.key == key, or_(_T.c.refresh_until.is_(None),
                                                      _T.c.refresh_until < now))
                .values(refresh_by=_OWNER, refresh_until=now + timedelta(seconds=LEASE_S))
            ).rowcount == 1

    def _store(self, key: str, token: str | None, expires_in: float | None) -> None:
        now = self.clock()
        values: dict = {"refresh_by": None, "refresh_until": None, "updated_at": now}
        if token is not None:
            values.update(token=encrypt({"t": token}, self.secret_key),
                          expires_at=now + timedelta(seconds=float(expires_in or 0)))
        with self.engine.begin() as conn:
            conn.execute(update(_T).where(_T.c.key == key).values(**values))

    def get(self, key: str, fetch: Fetch, *, invalid: str | None = None) -> str:
        token, expires_at = self._read(key)
        if self._usable(token, expires_at, invalid):
            return token  # type: ignore[return-value]
        give_up = time.monotonic() + self.wait_s
        while True:
            if self._take_lease(key):
                # Re-read under the lease: another process may have refreshed just before.
                token, expires_at = self._read(key)
                if self._usable(token, expires_at, invalid):
                    self._store(key, None, None)
                    return token  # type: ignore[return-value]
                try:
                    token, expires_in = fetch()
                except BaseException:
                    self._store(key, None, None)  # release the lease, keep the old token
                    raise
                self._store(key, token, expires_in)
                return token
            if time.monotonic() > give_up:
                raise TransientError(N_("Another process is renewing the service's access "
                                        "token; the post will be sent again shortly."),
                                     detail=f"token lease busy: {key}")
            time.sleep(self.poll_s)
            token, expires_at = self._read(key)
            if self._usable(token, expires_at, invalid):
                return token  # type: ignore[return-value]
