"""The ``alerts:`` section through ``load_config``: what it takes, its defaults, and
every mistake as a problem at the user's own path — credentials never as literals and
never shown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from convsync.config.alerts import EmailChannel, TelegramChannel, WebhookChannel
from convsync.config.loader import config_schema, load_config
from convsync.config.models import LoadedConfig
from convsync.core.errors import ConfigError

BASE = """\
sources:
  shop: {type: csv, path: orders.csv, id: order_id, time: created_at}
destinations:
  vk: {type: vk_ads, pixel_id: 42}
goals:
  purchase: {source: shop, send: {vk: {goal: purchase}}}
"""

TOKEN = "123456789:AAHsecret-bot-token"
ENV = {
    "TG_TOKEN": TOKEN,
    "SMTP_PASSWORD": "smtp-secret-pw",
    "HOOK": "https://hooks.example.com/T1/B2/key-456",
}

ALERTS = """\
alerts:
  channels:
    ops: {type: telegram, bot_token: "${TG_TOKEN}", chat_id: -1001234567890}
    slack: {type: webhook, url: https://hooks.slack.com/services/T000/B000/XXXXXXXX}
    mail:
      type: email
      host: smtp.example.com
      username: alerts@example.com
      password: "${SMTP_PASSWORD}"
      from: alerts@example.com
      to: [ops@example.com, oncall@example.org]
"""


def load(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> LoadedConfig:
    path = tmp_path / "convsync.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_config(path, ENV if env is None else env)


def problems(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path, env)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_channels_rules_and_defaults(tmp_path: Path) -> None:
    loaded = load(ALERTS, tmp_path)
    alerts = loaded.app.alerts
    assert alerts is not None
    ops, slack, mail = alerts.channels["ops"], alerts.channels["slack"], alerts.channels["mail"]
    assert isinstance(ops, TelegramChannel) and ops.chat_id == -1001234567890
    assert ops.bot_token.get_secret_value() == TOKEN
    assert ops.api_base_url == "https://api.telegram.org" and ops.timeout == timedelta(seconds=10)
    assert isinstance(slack, WebhookChannel)  # a literal URL is allowed
    assert isinstance(mail, EmailChannel)
    assert (mail.port, mail.starttls, mail.ssl, mail.from_) == (
        587,
        True,
        False,
        "alerts@example.com",
    )
    assert mail.to == ["ops@example.com", "oncall@example.org"]
    assert alerts.recipients == ["ops", "slack", "mail"]
    rules = alerts.rules
    assert all(
        rule.enabled
        for rule in (rules.destination_failing, rules.rejected_share, rules.volume_drop,
                     rules.match_rate_drop, rules.backlog_age, rules.source_silent)
    )  # fmt: skip
    assert rules.destination_failing.runs == 2
    assert (rules.rejected_share.percent, rules.rejected_share.min_rows) == (20.0, 20)
    assert (rules.volume_drop.percent, rules.volume_drop.min_usual, rules.volume_drop.weeks) == (
        50.0,
        20,
        4,
    )
    assert (rules.match_rate_drop.points, rules.match_rate_drop.min_rows) == (20.0, 50)
    assert rules.backlog_age.max_age == timedelta(hours=6)
    assert rules.source_silent.after == timedelta(days=2)
    # the credentials read from the environment are redacted from logs from the start
    assert {TOKEN, "smtp-secret-pw"} <= set(loaded.secrets)


def test_no_alerts_section_is_none(tmp_path: Path) -> None:
    assert load("", tmp_path).app.alerts is None


def test_rules_and_send_to_as_written(tmp_path: Path) -> None:
    text = (
        ALERTS
        + """\
  rules:
    volume_drop: {percent: 60, weeks: 8}
    source_silent: {enabled: false}
    backlog_age: {max_age: 12h}
  send_to: [ops, mail]
"""
    )
    alerts = load(text, tmp_path).app.alerts
    assert alerts is not None
    assert alerts.recipients == ["ops", "mail"]
    assert (alerts.rules.volume_drop.percent, alerts.rules.volume_drop.weeks) == (60.0, 8)
    assert alerts.rules.volume_drop.min_usual == 20
    assert not alerts.rules.source_silent.enabled
    assert alerts.rules.backlog_age.max_age == timedelta(hours=12)


def test_literal_credentials_are_refused_and_not_shown(tmp_path: Path) -> None:
    text = ALERTS.replace('"${TG_TOKEN}"', TOKEN).replace('"${SMTP_PASSWORD}"', "hunter2-pw")
    found = problems(text, tmp_path)
    assert found == [
        "alerts.channels.ops.bot_token: credentials are not accepted as literals in the file: "
        "write ${ENV_VAR} or ${file:/run/secrets/name}",
        "alerts.channels.mail.password: credentials are not accepted as literals in the file: "
        "write ${ENV_VAR} or ${file:/run/secrets/name}",
    ]


def test_a_malformed_token_is_named_never_quoted(tmp_path: Path) -> None:
    found = problems(ALERTS, tmp_path, {**ENV, "TG_TOKEN": "not-a-bot-token-at-all"})
    assert len(found) == 1 and found[0].startswith("alerts.channels.ops.bot_token: ")
    assert "not-a-bot-token-at-all" not in found[0]
    assert "123456789:AAH" in found[0]  # the shape it expects


def test_unknown_channel_type_suggests_the_one_meant(tmp_path: Path) -> None:
    text = ALERTS.replace("type: telegram", "type: telgram")
    assert problems(text, tmp_path) == [
        "alerts.channels.ops.type: unknown type 'telgram' (did you mean 'telegram'?)"
    ]
    untyped = ALERTS.replace("type: telegram, ", "")
    assert problems(untyped, tmp_path) == [
        "alerts.channels.ops: required key 'type' is missing: one of telegram, webhook, email"
    ]


def test_send_to_an_unknown_channel(tmp_path: Path) -> None:
    text = ALERTS + "  send_to: [ops, mial]\n"
    assert problems(text, tmp_path) == [
        "alerts.send_to: unknown channel 'mial' (did you mean 'mail'?)"
    ]


def test_bad_email_addresses(tmp_path: Path) -> None:
    text = ALERTS.replace("to: [ops@example.com, oncall@example.org]", "to: [ops-at-example.com]")
    text = text.replace("from: alerts@example.com", "from: Alerts <alerts@example.com>")
    found = problems(text, tmp_path)
    assert (
        "alerts.channels.mail.to.0: 'ops-at-example.com' is not an e-mail address: write it "
        "like alerts@example.com" in found
    )
    assert any(p.startswith("alerts.channels.mail.from: ") for p in found), found
    empty = ALERTS.replace("to: [ops@example.com, oncall@example.org]", "to: []")
    (message,) = problems(empty, tmp_path)
    assert message.startswith("alerts.channels.mail.to: ")


def test_email_tls_and_login_combinations(tmp_path: Path) -> None:
    plain = ALERTS.replace(
        "host: smtp.example.com", "host: smtp.example.com\n      starttls: false"
    )
    (message,) = problems(plain, tmp_path)
    assert "a password is never sent over a plain connection" in message
    both = ALERTS.replace(
        "host: smtp.example.com", "host: smtp.example.com\n      starttls: true\n      ssl: true"
    )
    (message,) = problems(both, tmp_path)
    assert "not both" in message
    implicit = ALERTS.replace(
        "host: smtp.example.com", "host: smtp.example.com\n      ssl: true\n      port: 465"
    )
    mail = load(implicit, tmp_path).app.alerts.channels["mail"]  # type: ignore[union-attr]
    assert isinstance(mail, EmailChannel) and mail.ssl and mail.tls
    no_password = ALERTS.replace('      password: "${SMTP_PASSWORD}"\n', "")
    (message,) = problems(no_password, tmp_path)
    assert "give username and password together" in message


def test_rule_thresholds_are_bounded(tmp_path: Path) -> None:
    text = (
        ALERTS
        + """\
  rules:
    rejected_share: {percent: 120}
    destination_failing: {runs: 0}
    backlog_age: {max_age: 30s}
    match_rate_drop: {points: true}
    volume_drop: {weeks: 60, min_usual: 0}
    source_silent: {after: 10m}
"""
    )
    found = problems(text, tmp_path)
    paths = sorted(p.split(":")[0] for p in found)
    assert paths == [
        "alerts.rules.backlog_age.max_age",
        "alerts.rules.destination_failing.runs",
        "alerts.rules.match_rate_drop.points",
        "alerts.rules.rejected_share.percent",
        "alerts.rules.source_silent.after",
        "alerts.rules.volume_drop.min_usual",
        "alerts.rules.volume_drop.weeks",
    ], found


def test_telegram_chat_ids(tmp_path: Path) -> None:
    for written, expected in (('"@convsync_ops"', "@convsync_ops"), ('"-100123"', -100123)):
        text = ALERTS.replace("chat_id: -1001234567890", f"chat_id: {written}")
        ops = load(text, tmp_path).app.alerts.channels["ops"]  # type: ignore[union-attr]
        assert isinstance(ops, TelegramChannel) and ops.chat_id == expected
    bad = ALERTS.replace("chat_id: -1001234567890", "chat_id: ops channel")
    (message,) = problems(bad, tmp_path)
    assert message.startswith("alerts.channels.ops.chat_id: 'ops channel' is not a chat")


def test_a_webhook_url_from_the_environment_and_a_bad_one_unquoted(tmp_path: Path) -> None:
    text = ALERTS.replace(
        "url: https://hooks.slack.com/services/T000/B000/XXXXXXXX", 'url: "${HOOK}"'
    )
    loaded = load(text, tmp_path)
    assert ENV["HOOK"] in loaded.secrets
    bad = ALERTS.replace(
        "https://hooks.slack.com/services/T000/B000/XXXXXXXX", "hooks.slack.com/XXXXXXXX"
    )
    (message,) = problems(bad, tmp_path)
    assert message.startswith("alerts.channels.slack.url: ") and "XXXXXXXX" not in message


def test_no_channels_and_unknown_keys(tmp_path: Path) -> None:
    (message,) = problems("alerts: {channels: {}}\n", tmp_path)
    assert message.startswith("alerts.channels: ")
    found = problems(ALERTS.replace("chat_id:", "chat:"), tmp_path)
    assert "alerts.channels.ops.chat: unknown key 'chat'" in " ".join(found)


def test_the_schema_has_the_alerts_section() -> None:
    schema = config_schema()
    assert "alerts" in schema["properties"]
    defs = schema["$defs"]
    assert {
        "AlertsConfig",
        "AlertRules",
        "TelegramChannel",
        "WebhookChannel",
        "EmailChannel",
    } <= set(defs)
    assert "from" in defs["EmailChannel"]["properties"]
    assert set(defs["AlertRules"]["properties"]) == {
        "destination_failing", "rejected_share", "volume_drop", "match_rate_drop",
        "backlog_age", "source_silent",
    }  # fmt: skip
