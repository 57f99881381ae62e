"""``convsync alerts test`` as a user runs it, against the channels' fakes: one line per
channel, exit 0 only when every channel took its message, nothing secret on the screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.alerts_fake import FakeSmtp, FakeTelegram, FakeWebhook
from tests.alerts_fake.smtp import PASSWORD, USER
from tests.alerts_fake.telegram import TOKEN

CONVSYNC = str(Path(sys.executable).parent / "convsync")

BASE = """\
sources:
  shop: {type: csv, path: orders.csv, id: order_id, time: created_at}
destinations:
  vk: {type: vk_ads, pixel_id: 42}
goals:
  purchase: {source: shop, send: {vk: {goal: purchase}}}
"""


def alerts_test(
    folder: Path, config: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (folder / "convsync.yaml").write_text(config, encoding="utf-8")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    full_env |= {"CONVSYNC_LOG_FORMAT": "json", "CONVSYNC_LOG_LEVEL": "DEBUG", **(env or {})}
    return subprocess.run(
        [CONVSYNC, "--config", "convsync.yaml", "alerts", "test"],
        cwd=folder, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def config_for(telegram: FakeTelegram, webhook: FakeWebhook, smtp: FakeSmtp) -> str:
    return BASE + (
        "alerts:\n"
        "  channels:\n"
        f'    ops: {{type: telegram, bot_token: "${{TG_TOKEN}}", chat_id: -1001234567890, '
        f"api_base_url: {telegram.base_url}}}\n"
        f"    slack: {{type: webhook, url: {webhook.url}}}\n"
        f"    mail: {{type: email, host: 127.0.0.1, port: {smtp.port}, username: {USER}, "
        f'password: "${{SMTP_PASSWORD}}", from: convsync@example.com, to: [ops@example.com]}}\n'
    )


def test_every_channel_gets_the_test_message(
    tmp_path: Path, telegram: FakeTelegram, webhook: FakeWebhook, smtp: FakeSmtp
) -> None:
    env = {"TG_TOKEN": TOKEN, "SMTP_PASSWORD": PASSWORD, "SSL_CERT_FILE": str(smtp.roots_file)}
    done = alerts_test(tmp_path, config_for(telegram, webhook, smtp), env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ops: ok", "slack: ok", "mail: ok"]
    (message,) = telegram.state.messages
    assert message["text"].endswith("alerts reach this channel")
    assert webhook.state.bodies == [{"text": message["text"]}]
    assert smtp.mails[0].message["Subject"] == message["text"]
    for secret in (TOKEN, PASSWORD, webhook.state.key):
        assert secret not in done.stdout + done.stderr


def test_a_failing_channel_is_one_line_and_exit_1(
    tmp_path: Path, telegram: FakeTelegram, webhook: FakeWebhook, smtp: FakeSmtp
) -> None:
    webhook.state.queued.append((500, f"no hook at /hooks/{webhook.state.key}".encode()))
    env = {"TG_TOKEN": "123:AAHrevoked-token-xyz", "SMTP_PASSWORD": "wrong-password-1",
           "SSL_CERT_FILE": str(smtp.roots_file)}  # fmt: skip
    done = alerts_test(tmp_path, config_for(telegram, webhook, smtp), env)
    assert done.returncode == 1, done.stderr
    host = webhook.base_url.removeprefix("http://")
    assert done.stdout.splitlines() == [
        "ops: Telegram answered 401: Unauthorized; check alerts.channels.ops.bot_token",
        f"slack: the webhook at {host} answered 500 Internal Server Error (no hook at /…)",
        f"mail: the SMTP server at 127.0.0.1:{smtp.port} refused the log-in (535 5.7.8 "
        "Authentication credentials invalid); check alerts.channels.mail.username and password",
    ]
    assert "Traceback" not in done.stderr
    for secret in ("AHrevoked-token-xyz", "wrong-password-1", webhook.state.key):
        assert secret not in done.stdout + done.stderr


def test_a_config_without_alerts_says_how_to_add_them(tmp_path: Path) -> None:
    done = alerts_test(tmp_path, BASE)
    assert done.returncode == 2 and done.stdout == ""
    assert "has no alerts: section to test: add one" in done.stderr
    assert "type: telegram" in done.stderr and "Traceback" not in done.stderr
