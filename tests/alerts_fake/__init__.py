"""Local fakes of the alert channels, over real sockets on 127.0.0.1: the Telegram Bot
API (``FakeTelegram``), an incoming webhook (``FakeWebhook``) and an SMTP server
(``FakeSmtp``, on aiosmtpd: STARTTLS, implicit TLS and AUTH with a test certificate)."""

from .smtp import FakeSmtp, Mail
from .telegram import FakeTelegram
from .webhook import FakeWebhook

__all__ = ["FakeSmtp", "FakeTelegram", "FakeWebhook", "Mail"]
