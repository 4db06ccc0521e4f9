"""A real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS or implicit TLS, optional AUTH,
with switches to refuse addresses or stop accepting after N messages."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Handler:
    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.fake.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.fake.accept_only is not None and len(self.fake.messages) >= \
                self.fake.accept_only:
            return "421 4.3.2 service shutting down"
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        self.fake.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


class FakeSMTP:
    def __init__(self, port: int, tmp: Path, *, security: str = "none",
                 users: dict[str, str] | None = None) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: set[str] = set()
        self.accept_only: int | None = None
        self.port = port
        self.users = users or {}
        kwargs: dict[str, Any] = {}
        if security in ("starttls", "ssl"):
            cert, key = self_signed(tmp)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            kwargs["tls_context" if security == "starttls" else "ssl_context"] = context
            if security == "starttls":
                kwargs["require_starttls"] = True
        if self.users:
            kwargs["authenticator"] = self._auth
            kwargs["auth_require_tls"] = security != "none"
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=port,
                                     server_hostname="127.0.0.1", ready_timeout=5, **kwargs)

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and \
                self.users.get(auth_data.login.decode()) == auth_data.password.decode():
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> FakeSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
