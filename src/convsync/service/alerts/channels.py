"""Sending one alert through one channel: Telegram's Bot API, an incoming webhook, or
mail over SMTP.

``send`` either delivers or raises :class:`ChannelError`, whose message is one plain line
naming the channel and the cause — a network failure in :mod:`convsync.core.network`'s words,
Telegram's own ``description``, an HTTP status, an SMTP server's reply — and never the
bot token, the webhook's URL or the SMTP password (they are registered with the log
redaction before the first request, too).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from convsync.config.alerts import (
    AlertsConfig,
    ChannelConfig,
    EmailChannel,
    TelegramChannel,
    WebhookChannel,
)
from convsync.core.errors import ConvsyncError, TransientError
from convsync.core.http import error_body, excerpt, new_session
from convsync.core.logging import register_secret
from convsync.core.network import Address, describe, shown_host
from convsync.core.retry import transient_retry

__all__ = ["ChannelError", "send", "send_test"]

log = structlog.get_logger("convsync.alerts")

#: the longest wait for Telegram's flood control that is waited out (once); a longer one
#: fails the channel for this alert
MAX_RETRY_AFTER = 30.0
#: Telegram takes at most 4096 characters of text per message
TELEGRAM_TEXT_LIMIT = 4096
#: a subject line longer than this is cut (mail clients show less anyway)
SUBJECT_LIMIT = 120


class ChannelError(ConvsyncError):
    """An alert did not reach a channel: ``alert channel <name>: <cause>``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"alert channel {name}: {message}")
        self.name = name
        self.message = message


def send(name: str, channel: ChannelConfig, text: str) -> None:
    """Deliver ``text`` to the channel called ``name``; raise ``ChannelError`` if it did
    not arrive."""
    if isinstance(channel, TelegramChannel):
        register_secret(channel.bot_token)
        _send_telegram(name, channel, text)
    elif isinstance(channel, WebhookChannel):
        register_secret(channel.url)
        _send_webhook(name, channel, text)
    else:
        if channel.password is not None:
            register_secret(channel.password)
        _send_email(name, channel, text)
    log.debug("alert sent", channel=name, channel_type=channel.type)


def send_test(config: AlertsConfig) -> dict[str, str | None]:
    """A test message to every channel (``send_to`` or not): channel name → None when it
    arrived, else what went wrong (the cause alone, without the channel's name)."""
    text = f"convsync: test message from {socket.gethostname()} — alerts reach this channel"
    results: dict[str, str | None] = {}
    for name, channel in config.channels.items():
        try:
            send(name, channel, text)
        except ChannelError as exc:
            results[name] = exc.message
        else:
            results[name] = None
    return results


# --- Telegram ---


def _send_telegram(name: str, channel: TelegramChannel, text: str) -> None:
    seconds = channel.timeout.total_seconds()
    address = Address(
        "Telegram Bot API", channel.api_base_url, f"alerts.channels.{name}.api_base_url", seconds
    )
    url = f"{channel.api_base_url}/bot{channel.bot_token.get_secret_value()}/sendMessage"
    if len(text) > TELEGRAM_TEXT_LIMIT:
        text = text[: TELEGRAM_TEXT_LIMIT - 1] + "…"
    body = {"chat_id": channel.chat_id, "text": text, "disable_web_page_preview": True}
    with new_session(timeout=seconds) as session:
        try:
            # flood control (429) is waited out once, when it asks for MAX_RETRY_AFTER at most
            for attempt in transient_retry(attempts=2, initial_wait=1.0, max_wait=MAX_RETRY_AFTER):
                with attempt:
                    response = _post(session, url, body, name, address)
                    _check_telegram_answer(name, channel, response)
        except TransientError as exc:
            raise ChannelError(name, str(exc)) from None


def _check_telegram_answer(
    name: str, channel: TelegramChannel, response: requests.Response
) -> None:
    """Nothing when Telegram took the message; else ``TransientError`` for flood control
    worth waiting out, ``ChannelError`` for the rest."""
    answer = error_body(response)
    if response.ok and answer.get("ok") is True:
        return
    status = response.status_code
    description = str(answer.get("description") or "").strip() or _status_words(response)
    said = f"Telegram answered {status}: {_one_line(description)}"
    if status == 429:
        parameters = answer.get("parameters")
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        wait = float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) else None
        if wait is None or wait <= MAX_RETRY_AFTER:
            raise TransientError(f"{said} (flood control, still after one retry)", wait)
        raise ChannelError(name, f"{said} (flood control: asks to wait {wait:g}s)")
    if response.ok:  # 200 without the Bot API's {"ok": true}: a proxy's page, not Telegram
        where = shown_host(channel.api_base_url)
        raise ChannelError(
            name,
            f"the answer at {where} is not the Bot API's (HTTP {status}); check "
            f"alerts.channels.{name}.api_base_url",
        )
    raise ChannelError(name, f"{said}{_telegram_hint(name, status, description)}")


def _telegram_hint(name: str, status: int, description: str) -> str:
    key = f"alerts.channels.{name}"
    if status in (401, 404):  # a revoked or mistyped token: the path names no bot
        return f"; check {key}.bot_token"
    if status == 403 or "chat not found" in description.lower():
        return f"; check {key}.chat_id and that the bot is a member of the chat"
    return ""


# --- webhook ---


def _send_webhook(name: str, channel: WebhookChannel, text: str) -> None:
    seconds = channel.timeout.total_seconds()
    url = channel.url.get_secret_value()
    address = Address("webhook", url, f"alerts.channels.{name}.url", seconds)
    with new_session(timeout=seconds) as session:
        response = _post(session, url, {"text": text}, name, address)
    if 200 <= response.status_code < 300:
        return
    said = excerpt(response, 120).replace(url, "…")
    path = urlsplit(url).path.strip("/")
    if len(path) >= 6:  # a hook's key is its path: an echo of it is not shown either
        said = said.replace(path, "…")
    answer = f" ({said})" if said else ""
    raise ChannelError(
        name,
        f"the webhook at {shown_host(url)} answered {response.status_code} "
        f"{_status_words(response)}{answer}",
    )


# --- both HTTP channels ---


def _post(
    session: requests.Session, url: str, body: dict[str, Any], name: str, address: Address
) -> requests.Response:
    """POST ``body`` as JSON; a network failure in plain words (the URL carries the
    secret: only its host is ever named)."""
    try:
        return session.post(url, json=body, allow_redirects=False)
    except requests.RequestException as exc:
        raise ChannelError(name, describe(exc, address)) from None


def _status_words(response: requests.Response) -> str:
    return (response.reason or "").strip() or "(no reason given)"


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- e-mail ---


def _send_email(name: str, channel: EmailChannel, text: str) -> None:
    seconds = channel.timeout.total_seconds()
    where = f"the SMTP server at {shown_host(_smtp_url(channel))}"
    key = f"alerts.channels.{name}"
    message = _message(channel, text)
    # the system's trust store (SSL_CERT_FILE and SSL_CERT_DIR are honoured)
    context = ssl.create_default_context()
    try:
        client = (
            smtplib.SMTP_SSL(channel.host, channel.port, timeout=seconds, context=context)
            if channel.ssl
            else smtplib.SMTP(channel.host, channel.port, timeout=seconds)
        )
        with client:
            if channel.starttls and not channel.ssl:
                client.starttls(context=context)
            if channel.username is not None and channel.password is not None:
                client.login(channel.username, channel.password.get_secret_value())
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(
            name,
            f"{where} refused the log-in ({_reply(exc)}); check {key}.username and password",
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ChannelError(name, f"{where}: {_not_supported(exc, key)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(
            f"{address} ({_reply_of(code, said)})"
            for address, (code, said) in exc.recipients.items()
        )
        raise ChannelError(name, f"{where} refused the recipients: {refused}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise ChannelError(
            name, f"{where} refused the sender {channel.from_} ({_reply(exc)}); check {key}.from"
        ) from None
    except smtplib.SMTPConnectError as exc:  # a greeting other than 220
        raise ChannelError(name, f"{where} refused the connection ({_reply(exc)})") from None
    except smtplib.SMTPDataError as exc:
        raise ChannelError(name, f"{where} refused the message ({_reply(exc)})") from None
    except smtplib.SMTPResponseException as exc:  # HELO, QUIT: an unexpected reply
        raise ChannelError(name, f"{where} answered {_reply(exc)}") from None
    except smtplib.SMTPServerDisconnected:
        raise ChannelError(name, f"{where} closed the connection before the message") from None
    except smtplib.SMTPException as exc:  # the rest of smtplib's: nothing else to say
        raise ChannelError(name, f"{where}: {_one_line(str(exc))}") from None
    except OSError as exc:  # refused, DNS, TLS, a timeout
        address = Address("SMTP server", _smtp_url(channel), f"{key}.host", seconds)
        raise ChannelError(name, describe(exc, address)) from None


def _message(channel: EmailChannel, text: str) -> EmailMessage:
    """``text/plain; charset=utf-8``, its subject the first line of ``text``."""
    message = EmailMessage()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "convsync alert")
    if len(first) > SUBJECT_LIMIT:
        first = first[: SUBJECT_LIMIT - 1] + "…"
    message["Subject"] = first
    message["From"] = channel.from_
    message["To"] = ", ".join(channel.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("convsync", domain=channel.from_.rpartition("@")[2])
    message.set_content(text, charset="utf-8")
    return message


def _smtp_url(channel: EmailChannel) -> str:
    host = f"[{channel.host}]" if ":" in channel.host else channel.host
    return f"smtp://{host}:{channel.port}"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return _reply_of(exc.smtp_code, exc.smtp_error)


def _reply_of(code: int, said: bytes | str) -> str:
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    return _one_line(f"{code} {text}")


def _not_supported(exc: smtplib.SMTPNotSupportedError, key: str) -> str:
    said = str(exc).lower()
    if "starttls" in said:
        return (
            f"it does not offer STARTTLS; use ssl: true if it takes implicit TLS (port 465), "
            f"or check {key}.host and port"
        )
    if "auth" in said:
        return f"it does not offer a log-in (AUTH); check {key}.host and port or drop username"
    return _one_line(str(exc))
