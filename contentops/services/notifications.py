"""In-app and e-mail notifications, per-user preferences per kind.

In-app notifications are rows read by the bell. E-mails are queued on the session and sent
only after the transaction commits (a rolled-back action must not mail anyone), from a
background thread so a slow SMTP server never holds a page or the scheduler.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from ..errors import N_
from ..models import User
from ..models.review import Notification
from ..reasons import reason_text
from ..timeutil import utcnow

log = logging.getLogger(__name__)

# kind -> label msgid (shown on the preferences page).
KINDS: dict[str, str] = {
    "submitted": N_("A piece is waiting for review"),
    "approved": N_("My piece was approved"),
    "changes_requested": N_("Changes were requested on my piece"),
    "approval_voided": N_("A piece I approved was changed"),
    "comment": N_("A comment on my piece"),
    "mention": N_("Someone mentioned me (@name)"),
    "publish_failed": N_("Publishing failed"),
    "assigned": N_("A post was handed to me"),
}
MEDIA = ("app", "email")
_MAIL_KEY = "contentops_outbox"


@dataclass
class MailSettings:
    url: str = ""
    sender: str = "contentops@localhost"
    base_url: str = ""
    translations: str = str(Path(__file__).resolve().parent.parent / "translations")
    timeout: float = 10.0


_mail = MailSettings()
_threads: list[threading.Thread] = []
_lock = threading.Lock()


def configure_mail(url: str, sender: str, base_url: str = "") -> None:
    """Called at app start with CONTENTOPS_SMTP_URL / CONTENTOPS_MAIL_FROM."""
    global _mail
    _mail = MailSettings(url=url or "", sender=sender or "contentops@localhost",
                         base_url=(base_url or "").rstrip("/"))


def mail_enabled() -> bool:
    return bool(_mail.url)


# --- preferences ----------------------------------------------------------------------------

def wants(user: User, kind: str, medium: str) -> bool:
    """Preferences are flat keys "app:<kind>" / "email:<kind>"; missing means on."""
    prefs = user.notification_prefs or {}
    value = prefs.get(f"{medium}:{kind}")
    return True if value is None else bool(value)


def preferences(user: User) -> dict[str, dict[str, bool]]:
    return {kind: {m: wants(user, kind, m) for m in MEDIA} for kind in KINDS}


def set_preferences(session: Session, user: User, chosen: Iterable[str]) -> None:
    """`chosen` holds the "medium:kind" keys that are on; every other known key is off."""
    on = set(chosen)
    user.notification_prefs = {f"{m}:{k}": f"{m}:{k}" in on for k in KINDS for m in MEDIA}


# --- sending --------------------------------------------------------------------------------

def notify(session: Session, users: Iterable[User], kind: str, message: str,
           params: Mapping[str, Any] | None = None, link: str | None = None) -> None:
    """Tell users something happened. `message` is a msgid; kinds: submitted, approved,
    changes_requested, mention, publish_failed, assigned, ..."""
    params = dict(params or {})
    seen: set[int] = set()
    for user in users:
        if user is None or not user.active or user.id in seen:
            continue
        seen.add(user.id)
        if wants(user, kind, "app"):
            session.add(Notification(user_id=user.id, kind=kind, message=message,
                                     params=params, link=link, created_at=utcnow()))
        if mail_enabled() and wants(user, kind, "email") and user.email:
            outbox = session.info.setdefault(_MAIL_KEY, [])
            outbox.append((user.email, user.name, user.locale or "en", message, params, link))


def mail_address(session: Session, email: str, message: str,
                 params: Mapping[str, Any] | None = None, link: str | None = None, *,
                 name: str = "", locale: str = "en") -> None:
    """E-mail someone who has no account here (a manual channel's assignee), after commit.
    Without a mail server configured nothing is sent."""
    if mail_enabled() and email:
        outbox = session.info.setdefault(_MAIL_KEY, [])
        outbox.append((email, name, locale, message, dict(params or {}), link))


def unread_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def recent(session: Session, user: User, limit: int = 50) -> list[Notification]:
    return list(session.scalars(
        select(Notification).where(Notification.user_id == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)))


def mark_read(session: Session, user: User, ids: Iterable[int] | None = None,
              now: datetime | None = None) -> int:
    """Mark the user's notifications read (all when ids is None); returns how many."""
    stmt = update(Notification).where(Notification.user_id == user.id,
                                      Notification.read_at.is_(None))
    if ids is not None:
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        stmt = stmt.where(Notification.id.in_(id_list))
    result = session.execute(stmt.values(read_at=now or utcnow()))
    return result.rowcount or 0


def _translator(locale: str):
    from babel.support import NullTranslations, Translations

    if locale == "en":
        return NullTranslations()
    return Translations.load(_mail.translations, [locale])


def _fill(text: str, params: Mapping[str, Any]) -> str:
    try:
        return text % dict(params) if params else text
    except (KeyError, ValueError, TypeError):
        return text


def localized_params(params: Mapping[str, Any],
                     translate: Callable[[str, Mapping[str, Any]], str],
                     instant: Callable[[datetime], str] | None = None) -> dict[str, Any]:
    """The params with a stored failure reason (`reason_code`) rendered by `translate`, its
    times by `instant` (the reader's zone; UTC, labelled, without one)."""
    out = dict(params)
    if out.get("reason_code"):
        out["reason"] = reason_text(out["reason_code"], translate, instant=instant)
    return out


def render_text(message: str, params: Mapping[str, Any], locale: str) -> str:
    translator = _translator(locale)

    def translate(msgid: str, values: Mapping[str, Any]) -> str:
        return _fill(translator.gettext(msgid), values)

    return translate(message, localized_params(params, translate))


def build_email(to: str, name: str, locale: str, message: str, params: Mapping[str, Any],
                link: str | None) -> EmailMessage:
    text = render_text(message, params, locale)
    mail = EmailMessage()
    mail["Subject"] = "[ContentOps] " + " ".join(text.split())[:150]
    mail["From"] = _mail.sender
    mail["To"] = formataddr((name, to))
    mail["Message-ID"] = make_msgid(domain="contentops")
    lines = [text]
    if link:
        lines += ["", (_mail.base_url + link) if link.startswith("/") else link]
    footer = render_text(N_("You can choose which notifications you receive on your "
                            "notification settings page."), {}, locale)
    lines += ["", "--", footer]
    mail.set_content("\n".join(lines))
    return mail


def _connect() -> smtplib.SMTP:
    parts = urlsplit(_mail.url)
    query = parse_qs(parts.query)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "smtps":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=_mail.timeout,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, parts.port or 25, timeout=_mail.timeout)
        if parts.scheme == "smtp+starttls" or query.get("starttls", ["0"])[0] in ("1", "true"):
            smtp.starttls(context=ssl.create_default_context())
    if parts.username:
        smtp.login(unquote(parts.username), unquote(parts.password or ""))
    return smtp


def _send_batch(batch: list[tuple]) -> None:
    try:
        smtp = _connect()
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("notification e-mail not sent: cannot reach SMTP server (%s)", exc)
        return
    try:
        for item in batch:
            try:
                smtp.send_message(build_email(*item))
            except smtplib.SMTPException as exc:
                log.warning("notification e-mail to %s refused: %s", item[0], exc)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def wait_for_mail(timeout: float = 10.0) -> None:
    """Block until queued e-mails were handed to the server (tests, shutdown)."""
    with _lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    batch = session.info.pop(_MAIL_KEY, None)
    if not batch or not mail_enabled():
        return
    thread = threading.Thread(target=_send_batch, args=(batch,), name="contentops-mail",
                              daemon=True)
    with _lock:
        _threads.append(thread)
    thread.start()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_MAIL_KEY, None)
