"""Each channel against its local fake: what arrives, and each failure as one plain line
that never holds the channel's secret."""

from __future__ import annotations

from typing import Any

import pytest

from convsync.config.alerts import AlertsConfig, ChannelConfig
from convsync.service.alerts.channels import ChannelError, send, send_test
from tests.alerts_fake import FakeSmtp, FakeTelegram, FakeWebhook
from tests.alerts_fake.smtp import PASSWORD, USER
from tests.alerts_fake.telegram import flood_control
from tests.network.servers import assert_plain, closed_port, silent_server

TEXT = "convsync: 2 alerts firing\n- destination google failing for 3 runs\n- заказы: −60 %"


def channel(data: dict[str, Any]) -> ChannelConfig:
    return AlertsConfig.model_validate({"channels": {"c": data}}).channels["c"]


def failure(name: str, data: dict[str, Any], text: str = TEXT) -> str:
    with pytest.raises(ChannelError) as info:
        send(name, channel(data), text)
    message = str(info.value)
    assert message.startswith(f"alert channel {name}: "), message
    assert "\n" not in message and "Traceback" not in message, message
    return message


# --- Telegram ---


def test_telegram_delivers_the_text_to_the_chat(telegram: FakeTelegram) -> None:
    send("ops", channel(telegram.channel()), TEXT)
    assert telegram.state.messages == [
        {"chat_id": -1001234567890, "text": TEXT, "disable_web_page_preview": True}
    ]


def test_telegram_takes_a_channel_username(telegram: FakeTelegram) -> None:
    send("ops", channel(telegram.channel(chat_id="@convsync_ops")), "hi")
    assert telegram.state.messages[0]["chat_id"] == "@convsync_ops"


def test_telegram_cuts_a_text_beyond_its_limit(telegram: FakeTelegram) -> None:
    send("ops", channel(telegram.channel()), "x" * 5000)
    taken = telegram.state.messages[0]["text"]
    assert len(taken) == 4096 and taken.endswith("…")


def test_telegram_wrong_token_is_one_line_without_the_token(telegram: FakeTelegram) -> None:
    wrong = "987654321:AAHanother-token-entirely"
    message = failure("ops", telegram.channel(bot_token=wrong))
    assert message == (
        "alert channel ops: Telegram answered 401: Unauthorized; check "
        "alerts.channels.ops.bot_token"
    )
    assert wrong not in message and "AAHanother" not in message


def test_telegram_unknown_chat_says_which_key(telegram: FakeTelegram) -> None:
    message = failure("ops", telegram.channel(chat_id=42))
    assert message == (
        "alert channel ops: Telegram answered 400: Bad Request: chat not found; check "
        "alerts.channels.ops.chat_id and that the bot is a member of the chat"
    )


def test_telegram_flood_control_is_waited_out_once(telegram: FakeTelegram) -> None:
    telegram.state.queued.append(flood_control(1))
    send("ops", channel(telegram.channel()), TEXT)
    assert len(telegram.state.messages) == 1
    (_, first), (_, second) = telegram.state.requests
    assert second - first >= 0.9  # retry_after: 1 was honoured


def test_telegram_flood_control_twice_fails(telegram: FakeTelegram) -> None:
    telegram.state.queued += [flood_control(1), flood_control(1)]
    message = failure("ops", telegram.channel())
    assert "Telegram answered 429: Too Many Requests: retry after 1" in message
    assert len(telegram.state.requests) == 2 and telegram.state.messages == []


def test_telegram_flood_control_longer_than_30s_is_not_waited(telegram: FakeTelegram) -> None:
    telegram.state.queued.append(flood_control(120))
    message = failure("ops", telegram.channel())
    assert message.endswith("(flood control: asks to wait 120s)"), message
    assert len(telegram.state.requests) == 1


def test_telegram_refused_port_in_plain_words() -> None:
    port = closed_port()
    data = {"type": "telegram", "bot_token": "123456:AAsecret-token", "chat_id": 1,
            "api_base_url": f"http://127.0.0.1:{port}"}  # fmt: skip
    message = failure("ops", data)
    assert_plain(
        message,
        host=f"127.0.0.1:{port}",
        key="alerts.channels.ops.api_base_url",
        cause="connection refused",
    )
    assert "AAsecret-token" not in message and "sendMessage" not in message


def test_telegram_answer_that_is_not_the_bot_api(webhook: FakeWebhook) -> None:
    # a server that answers 200 "ok" to anything is not Telegram
    webhook.state.queued.append((200, b"ok"))
    data = {"type": "telegram", "bot_token": "123456:AAsecret-token", "chat_id": 1,
            "api_base_url": webhook.base_url}  # fmt: skip
    message = failure("ops", data)
    assert "is not the Bot API's (HTTP 200)" in message
    assert "alerts.channels.ops.api_base_url" in message


# --- webhook ---


def test_webhook_posts_json_with_text(webhook: FakeWebhook) -> None:
    send("slack", channel(webhook.channel()), TEXT)
    assert webhook.state.bodies == [{"text": TEXT}]
    assert webhook.state.content_types == ["application/json"]


def test_webhook_500_is_one_line_without_the_url(webhook: FakeWebhook) -> None:
    # the server echoes the hook's path back: it is not shown either
    webhook.state.queued.append((500, f"internal error at /hooks/{webhook.state.key}".encode()))
    message = failure("slack", webhook.channel())
    host = webhook.base_url.removeprefix("http://")
    assert message == (
        f"alert channel slack: the webhook at {host} answered 500 Internal Server Error "
        "(internal error at /…)"
    )
    assert webhook.state.key not in message


def test_webhook_unknown_key(webhook: FakeWebhook) -> None:
    message = failure("slack", webhook.channel(url=f"{webhook.base_url}/hooks/wrong-key-1234"))
    assert message.endswith("answered 404 Not Found (no_service)"), message
    assert "wrong-key-1234" not in message


def test_webhook_refused_port_and_silence_in_plain_words() -> None:
    port = closed_port()
    message = failure(
        "slack", {"type": "webhook", "url": f"http://127.0.0.1:{port}/hooks/k3y-secret"}
    )
    assert_plain(
        message,
        host=f"127.0.0.1:{port}",
        key="alerts.channels.slack.url",
        cause="connection refused",
    )
    assert "k3y-secret" not in message
    with silent_server() as port:
        data = {"type": "webhook", "url": f"http://127.0.0.1:{port}/hooks/k3y-secret", "timeout": 1}
        message = failure("slack", data)
    assert_plain(
        message,
        host=f"127.0.0.1:{port}",
        key="alerts.channels.slack.url",
        cause="no answer within 1 s",
    )
    assert "k3y-secret" not in message


# --- e-mail ---


def test_email_over_starttls_with_login(smtp: FakeSmtp) -> None:
    send("mail", channel(smtp.channel(username=USER, password=PASSWORD)), TEXT)
    (mail,) = smtp.mails
    assert (mail.user, mail.tls) == (USER, True)
    assert mail.mail_from == "convsync@example.com" and mail.rcpt_tos == ["ops@example.com"]
    message = mail.message
    assert message["From"] == "convsync@example.com"
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == "convsync: 2 alerts firing"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")


def test_email_to_several_over_implicit_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSmtp(tls="implicit", users={USER: PASSWORD}) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.roots_file))
        to = ["ops@example.com", "oncall@example.org"]
        data = fake.channel(ssl=True, username=USER, password=PASSWORD, to=to)
        send("mail", channel(data), "one line only")
        (mail,) = fake.mails
    assert mail.tls and mail.rcpt_tos == to
    assert mail.message["To"] == "ops@example.com, oncall@example.org"
    assert mail.message["Subject"] == "one line only"


def test_email_without_tls_to_a_local_relay() -> None:
    with FakeSmtp(tls=None) as fake:
        send("mail", channel(fake.channel(starttls=False)), TEXT)
        (mail,) = fake.mails
    assert (mail.user, mail.tls) == (None, False)


def test_email_login_refused_without_the_password(smtp: FakeSmtp) -> None:
    message = failure("mail", smtp.channel(username=USER, password="not-the-password"))
    assert message == (
        f"alert channel mail: the SMTP server at 127.0.0.1:{smtp.port} refused the log-in "
        "(535 5.7.8 Authentication credentials invalid); check alerts.channels.mail.username "
        "and password"
    )
    assert smtp.mails == []


def test_email_refused_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSmtp(refused_recipients={"gone@example.com"}) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.roots_file))
        message = failure("mail", fake.channel(to=["gone@example.com"]))
    assert message.endswith(
        "refused the recipients: gone@example.com (550 5.1.1 mailbox unavailable)"
    )


def test_email_starttls_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSmtp(tls=None) as fake:
        message = failure("mail", fake.channel())
    assert "does not offer STARTTLS" in message and "ssl: true" in message


def test_email_untrusted_certificate_and_refused_port() -> None:
    with FakeSmtp() as fake:  # SSL_CERT_FILE not set: the test certificate is not trusted
        message = failure("mail", fake.channel())
    assert_plain(
        message, host=f"127.0.0.1:{fake.port}", key="alerts.channels.mail.host",
        cause="TLS certificate rejected",
    )  # fmt: skip
    port = closed_port()
    data = {"type": "email", "host": "127.0.0.1", "port": port, "from": "a@example.com",
            "to": ["b@example.com"], "username": USER, "password": PASSWORD}  # fmt: skip
    message = failure("mail", data)
    assert_plain(
        message,
        host=f"127.0.0.1:{port}",
        key="alerts.channels.mail.host",
        cause="connection refused",
    )
    assert PASSWORD not in message


# --- send_test ---


def test_send_test_reaches_each_channel_and_says_which_failed(
    telegram: FakeTelegram, webhook: FakeWebhook, smtp: FakeSmtp
) -> None:
    webhook.state.queued.append((500, b""))
    config = AlertsConfig.model_validate(
        {
            "channels": {
                "ops": telegram.channel(),
                "slack": webhook.channel(),
                "mail": smtp.channel(username=USER, password=PASSWORD),
            },
            "send_to": ["ops"],  # a test goes to every channel all the same
        }
    )
    results = send_test(config)
    host = webhook.base_url.removeprefix("http://")
    assert results == {
        "ops": None,
        "slack": f"the webhook at {host} answered 500 Internal Server Error",
        "mail": None,
    }
    (text,) = [m["text"] for m in telegram.state.messages]
    assert text.startswith("convsync: test message from ")
    assert text.endswith(" — alerts reach this channel")
    assert smtp.mails[0].message["Subject"] == text
