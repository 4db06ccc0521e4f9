"""Signed hook: a service POSTs events to `/api/v1/feedback/hooks/<channel id>` on its own.

No user token: the body is signed with the channel's inbound key
(`X-ContentOps-Signature: sha256=<hex HMAC-SHA256 of the raw body>`), and a hook only
counts events for posts of its own channel. Keys are stored encrypted and shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import jsonutil
from ...channels import secrets as channel_secrets
from ...errors import N_, BadRequest, DomainError
from ...models import Channel, FeedbackHookKey
from .ingest import IngestResult, ingest
from .push import events_of

SIGNATURE_HEADER = "X-ContentOps-Signature"


class BadSignature(DomainError):
    code = "bad_signature"
    status = 401


def create_hook_key(session: Session, channel: Channel, *, secret_key: str,
                    now: datetime) -> str:
    """Create or replace a channel's inbound key; the plain key is returned once."""
    plain = "fh_" + secrets.token_urlsafe(32)
    encrypted = channel_secrets.encrypt({"key": plain}, secret_key)
    row = session.get(FeedbackHookKey, channel.id)
    if row is None:
        row = FeedbackHookKey(channel_id=channel.id, key_encrypted=encrypted,
                              prefix=plain[:10], created_at=now)
        session.add(row)
    else:
        row.key_encrypted, row.prefix, row.created_at = encrypted, plain[:10], now
        row.last_used_at = None
    return plain


def hook_keys(session: Session) -> dict[int, FeedbackHookKey]:
    """Channel id -> its inbound key row (prefix and dates; never the key itself)."""
    return {k.channel_id: k for k in session.scalars(select(FeedbackHookKey))}


def sign(body: bytes, key: str) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify_hook(session: Session, channel_id: int, body: bytes, signature: str | None, *,
                secret_key: str, now: datetime) -> bool:
    """True when `signature` is the HMAC-SHA256 of the raw body with the channel's key."""
    row = session.get(FeedbackHookKey, channel_id)
    if row is None or not signature:
        return False
    try:
        key = channel_secrets.decrypt(row.key_encrypted, secret_key)["key"]
    except (ValueError, KeyError):
        return False
    if not hmac.compare_digest(sign(body, key), signature.strip()):
        return False
    row.last_used_at = now
    return True


def receive(session: Session, channel_id: int, body: bytes, signature: str | None, *,
            secret_key: str, now: datetime) -> IngestResult:
    """Verify, parse and count one signed hook call. The caller commits.

    Raises BadSignature (nothing is read from an unsigned body), BadRequest (not a JSON
    object) or ValidationError (no event list, or too many events).
    """
    if session.get(Channel, channel_id) is None or not verify_hook(
            session, channel_id, body, signature, secret_key=secret_key, now=now):
        raise BadSignature(N_(
            "The signature does not match: sign the raw body with the channel's feedback key "
            "(X-ContentOps-Signature: sha256=<hex HMAC>)."))
    try:
        data = jsonutil.loads(body)
    except jsonutil.JSONTooDeep:
        raise jsonutil.too_deep_error() from None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest(N_("Send a JSON object with Content-Type: application/json."))
    return ingest(session, events_of(data), now=now, source="hook", only_channel=channel_id)
