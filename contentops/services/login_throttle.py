"""Sign-in rate limiting per account and per client address, shared by every web process.

Failures are rows in `login_failures` (a sliding window: the last WINDOW of failures counts),
so several gunicorn workers on several machines see the same counts. Only keyed hashes of the
e-mail address and the client address are stored, like the public pages' visitor hashes.

Two requests racing past the check at the same moment may each get one more try than the
limit; a brute-force attack needs thousands, so counting without locks is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..models import LoginFailure

WINDOW = timedelta(minutes=15)
# Failures allowed within WINDOW before further attempts are refused. An account is
# guessed from many addresses, an address guesses many accounts (password spraying): both
# are limited. The address limit is higher because an office shares one address.
LIMITS: dict[str, int] = {"account": 5, "ip": 20, "token": 20}


@dataclass(frozen=True)
class Subject:
    scope: str  # a key of LIMITS
    key: str  # keyed hash, see subject()


def client_key(remote_addr: str | None) -> str:
    """The address to count by: IPv6 clients by their /64, which one subscriber usually owns
    whole (counting single IPv6 addresses would give an attacker 2^64 fresh counters)."""
    text = (remote_addr or "").strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return str(mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def subject(secret_key: str, scope: str, value: str) -> Subject:
    """A subject whose key is an HMAC of the raw value: not reversible without the secret."""
    if scope not in LIMITS:
        raise ValueError(f"unknown throttle scope {scope!r}")
    digest = hmac.new(secret_key.encode(), f"login-throttle|{scope}|{value}".encode(),
                      hashlib.sha256).hexdigest()
    return Subject(scope, digest)


def account_subject(secret_key: str, email: str) -> Subject:
    return subject(secret_key, "account", email.strip().lower())


def ip_subject(secret_key: str, remote_addr: str | None, scope: str = "ip") -> Subject:
    return subject(secret_key, scope, client_key(remote_addr))


def retry_after(session: Session, subjects: list[Subject], *, now: datetime) -> int | None:
    """Seconds until the most limited subject may try again, or None when none is limited."""
    since = now - WINDOW
    wait = 0.0
    for s in subjects:
        limit = LIMITS[s.scope]
        # The limit-th most recent failure: once it leaves the window, a try is allowed again.
        times = session.scalars(
            select(LoginFailure.created_at)
            .where(LoginFailure.scope == s.scope, LoginFailure.key == s.key,
                   LoginFailure.created_at > since)
            .order_by(LoginFailure.created_at.desc()).limit(limit)).all()
        if len(times) >= limit:
            wait = max(wait, (times[-1] + WINDOW - now).total_seconds())
    return math.ceil(wait) if wait > 0 else None


def record_failure(session: Session, subjects: list[Subject], *, now: datetime) -> None:
    """Count one failure against each subject, and forget failures older than the window."""
    session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - WINDOW))
    for s in subjects:
        session.add(LoginFailure(scope=s.scope, key=s.key, created_at=now))
    session.flush()


def clear(session: Session, s: Subject) -> None:
    """Forget a subject's failures (a successful sign-in clears its account's count)."""
    session.execute(delete(LoginFailure).where(LoginFailure.scope == s.scope,
                                               LoginFailure.key == s.key))


def failures(session: Session, s: Subject, *, now: datetime) -> int:
    """Failures counted against a subject within the window."""
    return session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.scope == s.scope, LoginFailure.key == s.key,
        LoginFailure.created_at > now - WINDOW)) or 0


def minutes(seconds: int) -> int:
    """Whole minutes to tell a person, rounded up so "try again in 1 minute" is never early."""
    return max(1, math.ceil(seconds / 60))
