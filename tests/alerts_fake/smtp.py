"""A fake SMTP server on aiosmtpd's ``Controller`` (127.0.0.1, a free port): STARTTLS
or implicit TLS with the tests' self-signed certificate, AUTH (PLAIN, LOGIN) for the
users it is given, offered only over TLS as real servers do; every mail taken is kept,
parsed."""

from __future__ import annotations

import email
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.google_ads_fake.tls import trusted_test_certificate
from tests.network.servers import closed_port

USER = "alerts@example.com"
PASSWORD = "smtp-password-for-tests"


@dataclass(frozen=True)
class Mail:
    """One mail taken: the envelope, who logged in, and the message parsed."""

    mail_from: str
    rcpt_tos: list[str]
    user: str | None
    tls: bool
    message: EmailMessage


@dataclass
class _Handler:
    refused_recipients: set[str] = field(default_factory=set)
    implicit_tls: bool = False
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refused_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        user = session.auth_data.login.decode() if session.authenticated else None
        with self.lock:
            # STARTTLS sets the session's ``ssl``; implicit TLS encrypts every connection
            tls = self.implicit_tls or session.ssl is not None
            self.mails.append(
                Mail(str(envelope.mail_from), list(envelope.rcpt_tos), user, tls, message)
            )
        return "250 OK queued"


class FakeSmtp:
    """``with FakeSmtp(users={…}) as smtp:`` — ``smtp.mails`` holds what arrived.

    ``tls="starttls"`` (the default) offers STARTTLS and requires it before a mail;
    ``"implicit"`` speaks TLS from the first byte (port 465's way); ``None`` speaks
    plain SMTP and offers no AUTH. ``users`` (login → password) are those AUTH takes.
    """

    def __init__(
        self,
        *,
        tls: Literal["starttls", "implicit"] | None = "starttls",
        users: dict[str, str] | None = None,
        refused_recipients: set[str] | None = None,
    ) -> None:
        material = trusted_test_certificate()
        self.roots_file: Path = material.roots_file
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        folder = material.roots_file.parent
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.users = dict(users or {})
        self._handler = _Handler(set(refused_recipients or ()), tls == "implicit")
        self.port = closed_port()  # free now; aiosmtpd binds it on start
        self.host = "127.0.0.1"
        # AUTH over TLS only; aiosmtpd knows of STARTTLS alone, so with implicit TLS (all of
        # the connection encrypted) it is told that there is no need to wait for one
        kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_require_tls": tls != "implicit",
        }
        if tls == "starttls":
            kwargs |= {"tls_context": context, "require_starttls": True}
        elif tls == "implicit":
            kwargs |= {"ssl_context": context}
        self._controller = Controller(
            self._handler, hostname=self.host, port=self.port, server_hostname="fake-smtp", **kwargs
        )

    @property
    def mails(self) -> list[Mail]:
        with self._handler.lock:
            return list(self._handler.mails)

    def channel(self, **extra: Any) -> dict[str, Any]:
        """An ``email`` channel config (as validated data) for this fake, no log-in."""
        return {
            "type": "email",
            "host": self.host,
            "port": self.port,
            "from": "convsync@example.com",
            "to": ["ops@example.com"],
            **extra,
        }

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        if self.users.get(login) != password:
            return AuthResult(success=False, handled=False)  # smtp_AUTH answers 535
        return AuthResult(success=True, auth_data=data)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()
