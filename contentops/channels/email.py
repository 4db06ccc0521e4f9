"""`email`: one message per recipient over one SMTP connection (STARTTLS, SSL or plain).

Each message has a plain-text and an HTML part rendered from the Markdown, a personal
unsubscribe link (also in `List-Unsubscribe`, one-click per RFC 8058) and, when tracking is
on, an open pixel and signed click-tracking redirects that feed reads and clicks back into
the post's metrics (web/tracking.py).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from urllib.parse import quote

from ..errors import N_
from ..rendering import markdown_to_html, markdown_to_text
from .base import (
    Capabilities,
    ChannelAdapter,
    ConfigField,
    Finding,
    OutgoingPost,
    PermanentError,
    PublishResult,
    Recipient,
    TransientError,
    limit_finding,
)

SUBJECT_CHARS = 200
PREVIEW_PREFIX = "[预览 Preview] "
_HREF = re.compile(r'href="([^"]*)"')


def link_signature(key: bytes, post_id: int, token: str, url: str) -> str:
    """Signs a click-tracking target so the redirect can never be pointed elsewhere."""
    return hmac.new(key, f"{post_id}|{token}|{url}".encode(), hashlib.sha256).hexdigest()[:32]


def click_url(base: str, key: bytes, post_id: int, token: str, url: str) -> str:
    sig = link_signature(key, post_id, token, url)
    return f"{base}/t/c/{post_id}/{token}?u={quote(url, safe='')}&s={sig}"


def open_url(base: str, post_id: int, token: str) -> str:
    return f"{base}/t/o/{post_id}/{token}.gif"


def unsubscribe_url(base: str, token: str) -> str:
    return f"{base}/u/{token}"


class EmailAdapter(ChannelAdapter):
    kind = "email"
    label = N_("E-mail (SMTP)")
    config_fields = (
        ConfigField("host", N_("SMTP server"), "text", required=True),
        ConfigField("port", N_("Port"), "int", default=587, min_value=1, max_value=65535,
                    help=N_("Usually 587 for STARTTLS, 465 for SSL, 25 without encryption.")),
        ConfigField("security", N_("Encryption"), "choice", default="starttls",
                    choices=("starttls", "ssl", "none")),
        ConfigField("username", N_("User name"), "text"),
        ConfigField("password", N_("Password"), "text", secret=True),
        ConfigField("from_address", N_("Sender address"), "email", required=True),
        ConfigField("from_name", N_("Sender name"), "text"),
        ConfigField("reply_to", N_("Reply-to address"), "email"),
        ConfigField("recipients", N_("Extra recipients"), "emails",
                    help=N_("Addresses that always receive this channel's posts, separated by "
                            "commas. Manage lists per channel or per audience under Recipients.")),
        ConfigField("recipient_source", N_("Send to"), "choice", default="both",
                    choices=("both", "channel", "audience"),
                    help=N_("both: this channel's list and the piece's audience list.")),
        ConfigField("tracking", N_("Track opens and clicks"), "bool", default=True),
        ConfigField("verify_tls", N_("Check the server's TLS certificate"), "bool",
                    default=True),
        ConfigField("timeout_s", N_("Timeout (seconds)"), "int", default=20, min_value=1,
                    max_value=120),
    )
    # Reads and clicks come back through the app's own pixel and redirects.
    capabilities = Capabilities(tracking=True, limits={"subject_chars": SUBJECT_CHARS})
    uses_recipients = True

    # --- rendering ------------------------------------------------------------------------

    @property
    def tracking(self) -> bool:
        return bool(self.config.get("tracking", True))

    def subject(self, post: OutgoingPost) -> str:
        return (PREVIEW_PREFIX if post.preview else "") + " ".join(post.title.split())

    def render(self, post: OutgoingPost) -> dict[str, str]:
        """Subject, text and HTML before personalisation (what a preview shows)."""
        return {"subject": self.subject(post),
                "text": markdown_to_text(post.body_markdown),
                "html": markdown_to_html(post.body_markdown)}

    def _track_links(self, body_html: str, post: OutgoingPost, token: str) -> str:
        key = self.signing_key
        if not (self.tracking and key and token and post.base_url):
            return body_html

        def swap(match: re.Match[str]) -> str:
            url = html.unescape(match.group(1))
            if not url.lower().startswith(("http://", "https://")):
                return match.group(0)
            tracked = click_url(post.base_url, key, post.post_id, token, url)
            return f'href="{html.escape(tracked, quote=True)}"'

        return _HREF.sub(swap, body_html)

    def message(self, post: OutgoingPost, recipient: Recipient, idempotency_key: str
                ) -> EmailMessage:
        parts = self.render(post)
        sender = str(self.config["from_address"])
        domain = sender.rsplit("@", 1)[-1]
        msg = EmailMessage()
        msg["Subject"] = parts["subject"]
        msg["From"] = formataddr((str(self.config.get("from_name") or ""), sender))
        msg["To"] = formataddr((recipient.name, recipient.email))
        msg["Date"] = formatdate(localtime=False)
        # Stable per post and person: a re-send after a crash carries the same Message-ID, so
        # mail systems that dedupe on it drop the copy.
        person = hashlib.sha256(recipient.email.lower().encode()).hexdigest()[:12]
        msg["Message-ID"] = f"<{_safe(idempotency_key)}.{person}@{domain}>"
        if self.config.get("reply_to"):
            msg["Reply-To"] = str(self.config["reply_to"])
        msg["X-ContentOps-Post"] = str(post.post_id)
        unsub = ""
        if recipient.token and post.base_url and not post.preview:
            unsub = unsubscribe_url(post.base_url, recipient.token)
            msg["List-Unsubscribe"] = f"<{unsub}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            msg["List-Id"] = f"{_safe(self.channel_name or 'ContentOps')} " \
                             f"<channel-{self.channel_id or 0}.{domain}>"
            msg["Precedence"] = "bulk"
        text = f"{parts['subject']}\n\n{parts['text']}\n"
        if unsub:
            text += f"\n--\n退订 / Unsubscribe: {unsub}\n"
        msg.set_content(text)
        tracked = not post.preview and self.tracking and recipient.token and post.base_url
        body_html = self._track_links(parts["html"], post, recipient.token) if tracked \
            else parts["html"]
        footer = ""
        if unsub:
            footer = (f'<hr style="border:none;border-top:1px solid #ddd;margin:24px 0 12px">'
                      f'<p style="font-size:12px;color:#888">不想再收到这些邮件？'
                      f'<a href="{html.escape(unsub)}">退订 Unsubscribe</a></p>')
        pixel = ""
        if tracked:
            src = html.escape(open_url(post.base_url, post.post_id, recipient.token))
            pixel = (f'<img src="{src}" width="1" height="1" alt="" '
                     f'style="display:block;border:0">')
        msg.add_alternative(
            '<!doctype html><html><head><meta charset="utf-8"></head>'
            '<body style="font-family:-apple-system,\'PingFang SC\',\'Microsoft YaHei\','
            'sans-serif;line-height:1.6;color:#222;max-width:640px;margin:0 auto;padding:16px">'
            f'<h1 style="font-size:22px">{html.escape(parts["subject"])}</h1>'
            f"{body_html}{footer}{pixel}</body></html>", subtype="html")
        return msg

    # --- validation -----------------------------------------------------------------------

    def validate(self, post: OutgoingPost) -> list[Finding]:
        findings = super().validate(post)
        size = len(self.subject(post))
        if size > SUBJECT_CHARS:
            findings.append(limit_finding("subject_too_long", "title", size, SUBJECT_CHARS,
                                          "chars"))
        return findings

    # --- SMTP -----------------------------------------------------------------------------

    def _open(self) -> smtplib.SMTP:
        host = str(self.setting("host"))
        security = self.config.get("security") or "starttls"
        port = int(self.config.get("port") or (465 if security == "ssl" else 587))
        timeout = float(self.config.get("timeout_s") or 20)
        # Loading the system CA store is slow: only when the connection is encrypted.
        context = ssl.create_default_context() if security in ("ssl", "starttls") else None
        if context is not None and not self.config.get("verify_tls", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        smtp: smtplib.SMTP | None = None
        try:
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context,
                                        local_hostname=_helo_name())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout, local_hostname=_helo_name())
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.config.get("username"):
                smtp.login(str(self.config["username"]), str(self.config.get("password") or ""))
        except BaseException:
            if smtp is not None:
                smtp.close()  # never leave a half-open connection behind
            raise
        return smtp

    def _connect(self) -> smtplib.SMTP:
        try:
            return self._open()
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(N_("The mail server refused the user name or password."),
                                 detail=f"SMTP {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(N_("The mail server does not support the chosen encryption "
                                    "or sign-in; check the channel settings."),
                                 detail=type(exc).__name__) from None
        except ssl.SSLError as exc:
            raise PermanentError(N_("The secure connection to the mail server failed; check the "
                                    "encryption setting and the port."),
                                 detail=type(exc).__name__) from None
        except TimeoutError as exc:
            raise TransientError(N_("The mail server did not answer in time."),
                                 detail=type(exc).__name__) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(N_("Could not connect to the mail server."),
                                 detail=type(exc).__name__) from None

    def test_connection(self) -> str:
        smtp = self._connect()
        try:
            smtp.noop()
        finally:
            _quit(smtp)
        return N_("Connected: the mail server accepted the settings.")

    def _recipients(self, post: OutgoingPost) -> list[Recipient]:
        if post.recipients:
            return list(post.recipients)
        # Without a resolved list (e.g. an adapter used on its own), the configured addresses.
        return [Recipient(email=e) for e in self.config.get("recipients") or []]

    def _send_all(self, post: OutgoingPost, recipients: list[Recipient],
                  idempotency_key: str) -> tuple[int, int]:
        smtp = self._connect()
        sent = refused = 0
        try:
            for recipient in recipients:
                msg = self.message(post, recipient, idempotency_key)
                try:
                    smtp.send_message(msg, from_addr=str(self.config["from_address"]),
                                      to_addrs=[recipient.email])
                    sent += 1
                except smtplib.SMTPRecipientsRefused:
                    refused += 1  # one bad address must not stop the list
                except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPException) as exc:
                    if sent == 0:
                        raise TransientError(N_("The mail server dropped the connection before "
                                                "anything was sent."),
                                             detail=type(exc).__name__) from None
                    # Some people got it: re-sending would reach them twice.
                    raise PermanentError(
                        N_("The mail server stopped accepting messages after %(sent)s of "
                           "%(total)s recipients; check the server before sending again."),
                        {"sent": sent, "total": len(recipients)},
                        detail=type(exc).__name__) from None
        finally:
            _quit(smtp)
        return sent, refused

    def publish(self, post: OutgoingPost, idempotency_key: str) -> PublishResult:
        self.check(post)
        recipients = self._recipients(post)
        if not recipients:
            raise PermanentError(N_("This e-mail channel has no recipients (or all of them "
                                    "unsubscribed)."))
        sent, refused = self._send_all(post, recipients, idempotency_key)
        if sent == 0:
            raise PermanentError(N_("The mail server refused all %(total)s recipients."),
                                 {"total": len(recipients)})
        return PublishResult(external_id=f"{_safe(idempotency_key)}:{sent}/{len(recipients)}")

    def send_preview(self, post: OutgoingPost, to: str | None = None) -> PublishResult:
        if not to:
            raise PermanentError(N_("Enter an address to send the preview to."))
        from dataclasses import replace

        post = replace(post, preview=True, recipients=(Recipient(email=to),))
        self.check(post)
        self._send_all(post, [Recipient(email=to)], f"preview-{post.post_id}")
        return PublishResult()


def _helo_name() -> str:
    # smtplib's default (socket.getfqdn) does a reverse DNS lookup that can take seconds.
    return socket.gethostname() or "localhost"


def _safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", value)[:120]


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
