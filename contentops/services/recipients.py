"""Recipient lists per channel or per audience: add, import from CSV, remove, resolve at send
time (unsubscribed people are left out), and unsubscribe."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..channels.base import Recipient as RecipientData
from ..errors import N_, NotFound, ValidationError
from ..models import Audience, Channel
from ..models.recipients import Recipient

MAX_IMPORT_ROWS = 50_000


@dataclass(frozen=True)
class ListRef:
    """Which list: a channel's own or an audience's."""

    channel_id: int | None = None
    audience_id: int | None = None

    def where(self) -> Any:
        if self.channel_id is not None:
            return Recipient.channel_id == self.channel_id
        return Recipient.audience_id == self.audience_id


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # Unsubscribed people stay unsubscribed: a re-import never subscribes them again.
    kept_unsubscribed: int = 0
    errors: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # line, msgid


def _check_list(session: Session, ref: ListRef) -> None:
    if (ref.channel_id is None) == (ref.audience_id is None):
        raise ValueError("a list is either a channel's or an audience's")
    if ref.channel_id is not None and session.get(Channel, ref.channel_id) is None:
        raise NotFound(N_("No such channel."))
    if ref.audience_id is not None and session.get(Audience, ref.audience_id) is None:
        raise NotFound(N_("No such audience."))


def normalize_email(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 254:
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def new_token() -> str:
    return secrets.token_urlsafe(24)


def list_recipients(session: Session, ref: ListRef) -> list[Recipient]:
    return list(session.scalars(select(Recipient).where(ref.where()).order_by(Recipient.email)))


def counts(session: Session, ref: ListRef) -> dict[str, int]:
    rows = session.execute(select(Recipient.unsubscribed_at.is_(None), func.count())
                           .where(ref.where()).group_by(Recipient.unsubscribed_at.is_(None)))
    out = {"active": 0, "unsubscribed": 0}
    for active, n in rows:
        out["active" if active else "unsubscribed"] += n
    return out


def add_recipient(session: Session, ref: ListRef, email: Any, name: Any = "",
                  *, source: str = "manual") -> Recipient:
    _check_list(session, ref)
    errors: dict[str, list[str]] = {}
    address = normalize_email(email)
    if address is None:
        errors["email"] = [N_("Enter a valid e-mail address.")]
    name = name.strip() if isinstance(name, str) else ""
    if len(name) > 100:
        errors["name"] = [N_("Use at most 100 characters.")]
    if not errors and session.scalar(select(Recipient.id).where(
            ref.where(), Recipient.email == address)) is not None:
        errors["email"] = [N_("This address is already on the list.")]
    if errors:
        raise ValidationError(errors)
    recipient = Recipient(email=address, name=name, channel_id=ref.channel_id,
                          audience_id=ref.audience_id, token=new_token(), source=source,
                          unsubscribed_at=_suppressed_at(session, address))
    session.add(recipient)
    session.flush()
    return recipient


def _suppressed_at(session: Session, address: str) -> datetime | None:
    """An address that unsubscribed anywhere stays unsubscribed on lists it is added to."""
    return session.scalar(select(func.max(Recipient.unsubscribed_at)).where(
        Recipient.email == address))


def remove_recipient(session: Session, ref: ListRef, recipient_id: int) -> None:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None or (recipient.channel_id, recipient.audience_id) != (
            ref.channel_id, ref.audience_id):
        raise NotFound(N_("No such recipient."))
    session.delete(recipient)
    session.flush()


def import_csv(session: Session, ref: ListRef, data: bytes | str) -> ImportReport:
    """Rows of `email[,name]`, with or without a header row; UTF-8 (with or without BOM) or
    GBK, as Excel in China saves it. Bad rows are reported by line and skipped."""
    _check_list(session, ref)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                raise ValidationError({"file": [N_("The file is not UTF-8 or GBK text.")]}
                                      ) from None
    else:
        text = data
    text = text.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) > MAX_IMPORT_ROWS:
        raise ValidationError({"file": [N_("Import at most %(max)s rows at a time.")]},
                              params={"max": MAX_IMPORT_ROWS})
    report = ImportReport()
    email_col, name_col, start = 0, 1, 0
    if rows and rows[0] and normalize_email(rows[0][0]) is None:
        header = [c.strip().lower() for c in rows[0]]
        for i, col in enumerate(header):
            if col in ("email", "e-mail", "mail", "邮箱", "电子邮件", "邮件地址"):
                email_col = i
            elif col in ("name", "姓名", "名字", "称呼"):
                name_col = i
        start = 1
    existing = {r.email: r for r in list_recipients(session, ref)}
    seen: set[str] = set()
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if not any(c.strip() for c in row):
            continue
        raw = row[email_col] if email_col < len(row) else ""
        address = normalize_email(raw)
        if address is None:
            report.errors.append((lineno, N_("Not a valid e-mail address: %(value)s"),
                                  {"value": raw[:100]}))
            continue
        name = (row[name_col].strip() if name_col < len(row) else "")[:100]
        if address in seen:
            report.unchanged += 1
            continue
        seen.add(address)
        current = existing.get(address)
        if current is None:
            suppressed = _suppressed_at(session, address)
            session.add(Recipient(email=address, name=name, channel_id=ref.channel_id,
                                  audience_id=ref.audience_id, token=new_token(), source="csv",
                                  unsubscribed_at=suppressed))
            report.added += 1
            if suppressed:
                report.kept_unsubscribed += 1
        elif name and name != current.name:
            current.name = name
            report.updated += 1
        else:
            report.unchanged += 1
        if current is not None and current.unsubscribed_at is not None:
            report.kept_unsubscribed += 1
    session.flush()
    return report


def _sync_config_list(session: Session, channel: Channel) -> None:
    """The channel's "extra recipients" setting becomes rows, so each address has its own
    unsubscribe token; addresses removed from the setting leave the list."""
    wanted = {normalize_email(e) for e in (channel.config or {}).get("recipients") or []}
    wanted.discard(None)
    ref = ListRef(channel_id=channel.id)
    rows = {r.email: r for r in list_recipients(session, ref)}
    for address in sorted(wanted - set(rows)):  # type: ignore[type-var]
        session.add(Recipient(email=address, name="", channel_id=channel.id, token=new_token(),
                              source="config", unsubscribed_at=_suppressed_at(session, address)))
    for address, row in rows.items():
        if row.source == "config" and address not in wanted:
            session.delete(row)
    session.flush()


def sync_config_lists(session: Session, channels: list[Channel]) -> None:
    """Bring the channels' "extra recipients" settings into their lists. The dispatcher does
    this in its own short transaction before claiming (issue #12): inserting recipient rows
    inside the claim transaction held its write lock longer and could fail the claim."""
    for channel in channels:
        _sync_config_list(session, channel)


def resolve(session: Session, channel: Channel, audience_id: int | None, *,
            sync: bool = True) -> tuple[RecipientData, ...]:
    """Who gets this channel's next e-mail, decided right before sending: the channel's list
    and/or the piece's audience list, one message per address, never an unsubscribed one.
    `sync=False` when the caller synced the setting already (a read only, no writes)."""
    if sync:
        _sync_config_list(session, channel)
    source = (channel.config or {}).get("recipient_source") or "both"
    conditions = []
    if source in ("both", "channel"):
        conditions.append(Recipient.channel_id == channel.id)
    if source in ("both", "audience") and audience_id is not None:
        conditions.append(Recipient.audience_id == audience_id)
    if not conditions:
        return ()
    rows = session.scalars(select(Recipient).where(or_(*conditions))
                           .order_by(Recipient.channel_id.is_(None), Recipient.id))
    suppressed = set(session.scalars(select(Recipient.email).where(
        Recipient.unsubscribed_at.is_not(None))))
    out: dict[str, RecipientData] = {}
    for row in rows:
        if row.email in suppressed or row.email in out:
            continue
        out[row.email] = RecipientData(email=row.email, name=row.name, token=row.token)
    return tuple(out.values())


def by_token(session: Session, token: str) -> Recipient | None:
    if not isinstance(token, str) or not 8 <= len(token) <= 64:
        return None
    return session.scalar(select(Recipient).where(Recipient.token == token))


def unsubscribe(session: Session, token: str, *, now: datetime) -> Recipient | None:
    """Honoured at the next send: the address leaves every list (one person asked once)."""
    recipient = by_token(session, token)
    if recipient is None:
        return None
    session.execute(update(Recipient).where(Recipient.email == recipient.email,
                                            Recipient.unsubscribed_at.is_(None))
                    .values(unsubscribed_at=now))
    session.flush()
    session.refresh(recipient)
    return recipient


def resubscribe(session: Session, token: str) -> Recipient | None:
    """Undo from the same page (a mistaken click)."""
    recipient = by_token(session, token)
    if recipient is None:
        return None
    session.execute(update(Recipient).where(Recipient.email == recipient.email)
                    .values(unsubscribed_at=None))
    session.flush()
    session.refresh(recipient)
    return recipient
