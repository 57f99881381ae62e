"""The ``ui:`` section: the status page's language and who may read it."""

from __future__ import annotations

import locale
import os
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from convsync.core.configtypes import StrictModel

Language = Literal["en", "ru"]


class UiAuth(StrictModel):
    """A token, or a user name and password (HTTP basic auth), or both."""

    token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Open the page with ?token=… once (a cookie keeps it) or send it as "
        "Authorization: Bearer.",
    )
    username: str | None = Field(default=None, min_length=1, description="For basic auth.")
    password: SecretStr | None = Field(default=None, min_length=8, description="For basic auth.")

    @model_validator(mode="after")
    def _complete(self) -> UiAuth:
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.token is None and self.username is None:
            raise ValueError("give a token, or a username and password")
        return self


class UiConfig(StrictModel):
    """The status page."""

    language: Language | None = Field(
        default=None,
        description="en or ru; default from the locale (LC_ALL, LC_MESSAGES, LANG), else en.",
    )
    auth: UiAuth | None = Field(
        default=None,
        description="Needed when the page listens beyond localhost (CONVSYNC_HEALTH_HOST).",
    )

    @property
    def default_language(self) -> Language:
        return self.language or language_of_locale()


def language_of_locale() -> Language:
    """ru when the locale is Russian, else en."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "ru" if value.lower().startswith("ru") else "en"
    current = locale.getlocale(locale.LC_CTYPE)[0] or ""
    return "ru" if current.lower().startswith("ru") else "en"
