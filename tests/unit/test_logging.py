"""structlog setup and redaction (convsync.core.logging)."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from convsync.core.errors import UserError
from convsync.core.logging import (
    REDACTED,
    configure_logging,
    get_logger,
    register_secret,
)
from tests.logging_state import _restore_logging  # noqa: F401 (an autouse fixture)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def configure_json() -> io.StringIO:
    buf = io.StringIO()
    configure_logging("json", "INFO", stream=buf)
    return buf


def test_json_lines_carry_run_id_level_ts_and_event() -> None:
    buf = configure_json()
    structlog.contextvars.bind_contextvars(run_id="run-42")
    log = get_logger("convsync.pipeline")
    log.info("pulled", source="shop", records=3)
    log.warning("deferred %s rows", 2)

    first, second = json_lines(buf)
    assert first["event"] == "pulled"
    assert first["level"] == "info"
    assert first["run_id"] == "run-42"
    assert first["logger"] == "convsync.pipeline"
    assert (first["source"], first["records"]) == ("shop", 3)
    assert datetime.fromisoformat(first["ts"]).utcoffset() == timedelta(0)
    assert second["event"] == "deferred 2 rows"
    assert second["level"] == "warning"
    assert second["run_id"] == "run-42"


def test_stdlib_loggers_go_through_the_same_json_format() -> None:
    buf = configure_json()
    structlog.contextvars.bind_contextvars(run_id="run-7")
    logging.getLogger("sqlalchemy.pool").warning("pool %s is full", "main", extra={"size": 5})

    (line,) = json_lines(buf)
    assert line["event"] == "pool main is full"
    assert line["level"] == "warning"
    assert line["logger"] == "sqlalchemy.pool"
    assert line["run_id"] == "run-7"
    assert line["size"] == 5
    assert datetime.fromisoformat(line["ts"]).utcoffset() == timedelta(0)


def test_noisy_libraries_are_quieted_to_warning() -> None:
    buf = configure_json()
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
    logging.getLogger("apscheduler.scheduler").info("Added job")
    get_logger("convsync").info("ours")
    assert [line["event"] for line in json_lines(buf)] == ["ours"]


def test_level_filters_our_own_loggers() -> None:
    buf = io.StringIO()
    configure_logging("json", "warning", stream=buf)
    log = get_logger("convsync")
    log.info("hidden")
    log.error("shown")
    assert [line["event"] for line in json_lines(buf)] == ["shown"]


def test_credentials_are_masked_by_key_also_nested() -> None:
    buf = configure_json()
    get_logger().info(
        "auth",
        access_token="ya29.raw-access",
        Developer_Token="dev-raw-token",
        metrica_token="y0_raw-metrica",
        auth={"client_id": "visible-id", "client_secret": "raw-client-secret"},
        headers=[{"Authorization": "Bearer raw-bearer", "X-Api-Key": "raw-api-key"}],
    )
    out = buf.getvalue()
    for raw in ("ya29.raw-access", "dev-raw-token", "y0_raw-metrica", "raw-client-secret"):
        assert raw not in out
    assert "raw-bearer" not in out
    assert "raw-api-key" not in out
    (line,) = json_lines(buf)
    assert line["access_token"] == REDACTED
    assert line["Developer_Token"] == REDACTED
    assert line["auth"] == {"client_id": "visible-id", "client_secret": REDACTED}
    assert line["headers"] == [{"Authorization": REDACTED, "X-Api-Key": REDACTED}]


def test_registered_secret_is_masked_inside_any_string() -> None:
    secret = "reg1stered/secret+value"
    register_secret(SecretStr(secret))
    buf = configure_json()
    log = get_logger()
    log.info(f"calling with {secret}", url=f"https://api.example/?k={secret}&x=1")
    log.info("nested", detail={"text": ["a", f"xx{secret}yy"]})
    logging.getLogger("google.ads").warning("request %s", {"body": secret})
    log.info("encoded", url="https://api.example/?k=reg1stered%2Fsecret%2Bvalue")

    out = buf.getvalue()
    assert secret not in out
    assert "reg1stered%2Fsecret%2Bvalue" not in out
    first, second, third, fourth = json_lines(buf)
    assert first["event"] == f"calling with {REDACTED}"
    assert first["url"] == f"https://api.example/?k={REDACTED}&x=1"
    assert second["detail"] == {"text": ["a", f"xx{REDACTED}yy"]}
    assert REDACTED in third["event"]
    assert fourth["url"] == f"https://api.example/?k={REDACTED}"


def test_secret_only_visible_through_repr_is_masked_after_rendering() -> None:
    register_secret("repr-only-secret-9")

    class Client:
        def __repr__(self) -> str:
            return "Client(key='repr-only-secret-9')"

    buf = configure_json()
    get_logger().info("client ready", client=Client())
    assert "repr-only-secret-9" not in buf.getvalue()
    assert json_lines(buf)[0]["client"] == f"Client(key='{REDACTED}')"


def test_short_values_are_not_registered() -> None:
    register_secret("ab12")
    buf = configure_json()
    get_logger().info("page ab12 of 3")
    assert json_lines(buf)[0]["event"] == "page ab12 of 3"


def test_exception_tracebacks_are_redacted() -> None:
    register_secret("tb-secret-0451")
    buf = configure_json()
    log = get_logger("convsync.destinations")
    try:
        raise RuntimeError("401 for token tb-secret-0451 (user anna.k@example.org)")
    except RuntimeError:
        log.exception("upload failed")
        logging.getLogger("google.ads.googleads").error("lib failed", exc_info=True)

    out = buf.getvalue()
    assert "tb-secret-0451" not in out
    assert "anna.k@example.org" not in out
    ours, theirs = json_lines(buf)
    for line in (ours, theirs):
        assert "Traceback (most recent call last)" in line["exception"]
        assert f"401 for token {REDACTED} (user <email>)" in line["exception"]


def test_emails_are_masked_but_database_urls_are_not() -> None:
    buf = configure_json()
    get_logger().info(
        "contact Ivan.Petrov+crm@Mail.Ru about order",
        where="landing?e=jane%40example.com",
        db="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    out = buf.getvalue()
    assert "Ivan.Petrov" not in out
    assert "jane" not in out
    (line,) = json_lines(buf)
    assert line["event"] == "contact <email> about order"
    assert line["where"] == "landing?e=<email>"
    assert line["db"] == "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_pydantic_secret_values_render_as_mask() -> None:
    buf = configure_json()
    get_logger().info("settings", metrica=SecretStr("raw-secret-str"), nested={"k": SecretStr("x")})
    (line,) = json_lines(buf)
    assert line["metrica"] == REDACTED
    assert line["nested"] == {"k": REDACTED}


def test_auto_is_json_when_not_a_terminal() -> None:
    buf = io.StringIO()
    configure_logging("auto", stream=buf)
    get_logger().info("hello")
    assert json_lines(buf)[0]["event"] == "hello"


def test_auto_is_console_on_a_terminal_without_colours_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    term = FakeTerminal()
    configure_logging("auto", stream=term)
    get_logger().info("hello", token="console-raw-token")
    out = term.getvalue()
    assert not out.startswith("{")
    assert "hello" in out
    assert "\x1b[" not in out
    assert f"token={REDACTED}" in out
    assert "console-raw-token" not in out


def test_console_on_a_terminal_is_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    term = FakeTerminal()
    configure_logging("console", stream=term)
    get_logger().info("hello")
    assert "\x1b[" in term.getvalue()


def test_console_exceptions_are_redacted() -> None:
    register_secret("console-tb-secret")
    buf = io.StringIO()
    configure_logging("console", stream=buf)
    try:
        raise ValueError("bad console-tb-secret")
    except ValueError:
        get_logger().exception("failed")
    out = buf.getvalue()
    assert "Traceback (most recent call last)" in out
    assert "console-tb-secret" not in out
    assert f"ValueError: bad {REDACTED}" in out


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    get_logger().info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["event"] == "to stderr"


def test_configure_twice_replaces_the_handler() -> None:
    log = get_logger("convsync.early")  # made before the last configure, still follows it
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", stream=second)
    log.info("once")
    logging.getLogger("convsync.lib").warning("stdlib once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once", "stdlib once"]


@pytest.mark.parametrize(("fmt", "level"), [("xml", "INFO"), ("json", "LOUD")])
def test_bad_format_or_level_is_a_user_error(fmt: str, level: str) -> None:
    with pytest.raises(UserError):
        configure_logging(fmt, level, stream=io.StringIO())


def test_the_database_password_from_the_url_is_masked_in_logs() -> None:
    import io

    from convsync.config.settings import database_password
    from convsync.core.logging import configure_logging, get_logger, register_secret

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    password = database_password("postgresql+psycopg://convsync:Pg-pass-0042@db/ledger")
    assert password == "Pg-pass-0042"
    register_secret(password)
    get_logger("t").info("connecting", url="postgresql+psycopg://convsync:Pg-pass-0042@db/ledger")
    assert "Pg-pass-0042" not in stream.getvalue()
    assert "**********" in stream.getvalue()
