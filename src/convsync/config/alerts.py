"""The ``alerts:`` section: where alerts go (named channels) and when they fire (rules).

    alerts:
      channels:
        ops: {type: telegram, bot_token: "${TELEGRAM_BOT_TOKEN}", chat_id: -1001234567890}
        slack: {type: webhook, url: "${SLACK_WEBHOOK_URL}"}
        mail: {type: email, host: smtp.example.com, username: alerts@example.com,
               password: "${SMTP_PASSWORD}", from: alerts@example.com, to: [ops@example.com]}
      rules:
        volume_drop: {percent: 60}
        source_silent: {enabled: false}
      send_to: [ops, mail]

Credentials (``bot_token``, ``password``) are ``SecretStr`` and the config loader refuses
them as literals, like every connector's. A webhook's ``url`` is a ``SecretStr`` too (a
Slack or Mattermost hook's path is its key: it is kept out of logs and messages) but may
be written as it is, as the issue's example writes it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from convsync.config.messages import suggest
from convsync.core.configtypes import BaseUrl, Duration, Int64, StrictModel, WholeNumber, Within


def _a_number(value: Any) -> Any:
    """``true`` is no number: pydantic would read it as 1.0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


#: a share in percent (or percentage points), from 0 to 100
Percent = Annotated[float, BeforeValidator(_a_number), Field(ge=0, le=100)]
#: a count of rows, runs or weeks: 1 or more (a rule's floor of 0 would page on nothing)
Count = Annotated[WholeNumber, Field(ge=1, le=1_000_000)]

#: how long a request to a channel may take: a channel that hangs must not hold a run
ChannelTimeout = Annotated[Duration, Within("1s", "2m")]


# --- rules ---


class DestinationFailingRule(StrictModel):
    """A destination whose runs failed this many times in a row."""

    enabled: bool = True
    runs: Annotated[WholeNumber, Field(ge=1, le=1000)] = Field(
        2, description="Consecutive failed runs of a destination before it pages."
    )


class RejectedShareRule(StrictModel):
    """Too large a share of a run's rows refused by a destination."""

    enabled: bool = True
    percent: Percent = Field(20.0, description="Share of rows rejected that pages (0–100).")
    min_rows: Count = Field(20, description="Fewer rows than this in a run never page.")


class VolumeDropRule(StrictModel):
    """A goal's volume today far below the usual for the weekday."""

    enabled: bool = True
    percent: Percent = Field(
        50.0,
        description="Drop below the median of the same weekday over the last `weeks` weeks "
        "that pages (0–100).",
    )
    min_usual: Count = Field(
        20, description="Goals whose usual daily volume is below this never page."
    )
    weeks: Annotated[WholeNumber, Field(ge=1, le=52)] = Field(
        4, description="Weeks of the same weekday the usual volume is the median of."
    )


class MatchRateDropRule(StrictModel):
    """A destination's match rate far below its trailing median."""

    enabled: bool = True
    points: Percent = Field(
        20.0, description="Percentage points below the destination's trailing median that page."
    )
    min_rows: Count = Field(50, description="Fewer rows than this never page.")


class BacklogAgeRule(StrictModel):
    """Deliveries waiting longer than they should."""

    enabled: bool = True
    max_age: Annotated[Duration, Within("1m", "4w")] = Field(
        timedelta(hours=6), description="Oldest a due delivery may be before it pages."
    )


class SourceSilentRule(StrictModel):
    """A source that produced records before and none for a while."""

    enabled: bool = True
    after: Annotated[Duration, Within("1h", "366d")] = Field(
        timedelta(days=2), description="Silence of a source that pages."
    )


class AlertRules(StrictModel):
    """When alerts fire; every rule is on unless ``enabled: false``."""

    destination_failing: DestinationFailingRule = Field(default_factory=DestinationFailingRule)
    rejected_share: RejectedShareRule = Field(default_factory=RejectedShareRule)
    volume_drop: VolumeDropRule = Field(default_factory=VolumeDropRule)
    match_rate_drop: MatchRateDropRule = Field(default_factory=MatchRateDropRule)
    backlog_age: BacklogAgeRule = Field(default_factory=BacklogAgeRule)
    source_silent: SourceSilentRule = Field(default_factory=SourceSilentRule)


# --- channels ---

#: a bot token as @BotFather gives it: the bot's id, a colon, then letters, digits, - and _
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
#: a public channel's or group's @username (5–32 letters, digits and _)
_CHAT_USERNAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{4,31}$")
#: an address as a plain ``local@domain.tld``: no display name, no spaces or brackets
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$|^\[?[0-9A-Fa-f:.]+\]?$")


def _check_email(value: Any) -> Any:
    if isinstance(value, str) and not _EMAIL.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not an e-mail address: write it like alerts@example.com")
    return value.strip() if isinstance(value, str) else value


EmailAddress = Annotated[str, BeforeValidator(_check_email)]


class TelegramChannel(StrictModel):
    """A Telegram chat a bot writes to (the Bot API's ``sendMessage``)."""

    type: Literal["telegram"]
    bot_token: SecretStr = Field(
        description="The bot's token from @BotFather (123456789:AA…); ${…} only."
    )
    chat_id: Int64 | str = Field(
        description="A chat's numeric id (a group's or channel's is negative, -100…) or a "
        "public channel's @username; the bot must be a member (an admin of a channel)."
    )
    api_base_url: BaseUrl = Field(
        "https://api.telegram.org", description="The Bot API server (a local one, in tests)."
    )
    timeout: ChannelTimeout = Field(timedelta(seconds=10), description="Per request.")

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not _BOT_TOKEN.fullmatch(token):
            # the value itself is a secret: never quote it
            raise ValueError("expected a bot token like 123456789:AAH… (as @BotFather gives it)")
        return SecretStr(token)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"-?\d+", text):
                return int(text)
            if not _CHAT_USERNAME.fullmatch(text):
                raise ValueError(
                    f"{value!r} is not a chat: give its numeric id (-1001234567890) or a "
                    "public channel's @username"
                )
            return text
        return value


class WebhookChannel(StrictModel):
    """An incoming webhook that takes ``{"text": …}`` (Slack, Mattermost, Rocket.Chat)."""

    type: Literal["webhook"]
    url: SecretStr = Field(
        description="The incoming webhook's URL; its path is its key, so it is never shown "
        "in logs or messages (write it as ${…} to keep it out of the file too)."
    )
    timeout: ChannelTimeout = Field(timedelta(seconds=10), description="Per request.")

    def literal_ok(self, key: str) -> bool:
        """The URL may be written in the file as it is (the issue's own example does)."""
        return key == "url"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if not re.match(r"^https?://[^/\s?#]+", url) or any(c.isspace() for c in url):
            # never quoted: the URL is a credential
            raise ValueError("expected the webhook's http(s) URL, like https://hooks.slack.com/…")
        return SecretStr(url)


class EmailChannel(StrictModel):
    """Mail through an SMTP server (STARTTLS on 587 by default, or implicit TLS on 465)."""

    type: Literal["email"]
    host: str = Field(description="The SMTP server's host name or IP address.")
    port: Annotated[WholeNumber, Field(ge=1, le=65535)] = 587
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="Implicit TLS from the start (port 465).")
    username: str | None = Field(default=None, description="Log in as this user.")
    password: SecretStr | None = Field(default=None, description="The user's password; ${…} only.")
    from_: EmailAddress = Field(alias="from", description="The sender's address.")
    to: list[EmailAddress] = Field(min_length=1, description="The recipients' addresses.")
    timeout: ChannelTimeout = Field(timedelta(seconds=30), description="Per SMTP exchange.")

    @field_validator("host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        text = value.strip()
        if not text or not _HOST.fullmatch(text):
            raise ValueError(f"{value!r} is not a host name: write it like smtp.example.com")
        return text.strip("[]")

    @model_validator(mode="after")
    def _tls_and_login(self) -> EmailChannel:
        if self.ssl and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError(
                "give ssl: true (implicit TLS, port 465) or starttls: true (port 587), not both"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together (or neither, for no log-in)")
        if self.password is not None and not self.tls:
            raise ValueError(
                "a password is never sent over a plain connection: set starttls: true or ssl: true"
            )
        return self

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (``starttls`` means nothing with ``ssl``)."""
        return self.ssl or self.starttls


def _typed(value: Any) -> Any:
    """A channel without ``type``: said with the types there are (the config loader knows
    the types of sources and destinations, not these)."""
    if isinstance(value, dict) and "type" not in value:
        raise ValueError("required key 'type' is missing: one of telegram, webhook, email")
    return value


ChannelConfig = Annotated[
    TelegramChannel | WebhookChannel | EmailChannel,
    Field(discriminator="type"),
    BeforeValidator(_typed),
]


class AlertsConfig(StrictModel):
    """Where alerts go and when they fire."""

    channels: dict[str, ChannelConfig] = Field(
        min_length=1, description="Channel name → a telegram, webhook or email channel."
    )
    rules: AlertRules = Field(default_factory=AlertRules)
    send_to: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The channels alerts go to; default: every channel.",
    )

    @field_validator("send_to")
    @classmethod
    def _known_channels(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        channels = info.data.get("channels")
        if value is None or channels is None:  # channels failed: reported on their own
            return value
        for name in value:
            if name not in channels:
                raise ValueError(f"unknown channel {name!r}{suggest(name, list(channels))}")
        return list(dict.fromkeys(value))

    @property
    def recipients(self) -> list[str]:
        """The names of the channels alerts go to: ``send_to``, else every channel."""
        return list(self.send_to) if self.send_to is not None else list(self.channels)
