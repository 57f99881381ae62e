"""The corpus of bad input: settings, config files and source files a user gets wrong.

Each case is what a user runs into, and the one fragment its message must hold: where
the problem is (a file and line, a config path, a setting's flag or variable, a file
name) and the value at fault. ``tests/test_bad_input_corpus.py`` runs each through the
real command.

``BASE`` is a valid config (its line numbers are quoted by the cases: line 10 is the
Metrica destination, 14 the goal's ``when``, 16 its ``currency``); a case changes it
with ``edited`` or replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BASE = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders.csv
    id: order_id
    time: created_at
    fields: {email: email, value: total, status: status}
destinations:
  metrica: {type: yandex_metrica, counter_id: 12345678, token: "${METRICA_TOKEN}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send:
      metrica: {target: offline_purchase}
"""

#: what every case has in its environment (the token BASE reads)
ENV = {"METRICA_TOKEN": "metrica-token-in-env"}

HEADER = "order_id,created_at,email,total,status\n"
GOOD_CSV = (HEADER + "1,2026-01-01 10:00,a@example.com,100,paid\n").encode()
RUSSIAN_ROWS = "".join(f"{i},2026-01-01 10:00,a@example.com,100,оплачен\n" for i in range(1, 4))


def edited(*edits: tuple[str, str], base: str = BASE) -> str:
    """``base`` with each ``(old, new)`` replaced once; ``old`` must be there."""
    text = base
    for old, new in edits:
        if old not in text:
            raise ValueError(f"{old!r} is not in the config being edited")
        text = text.replace(old, new, 1)
    return text


#: the source of BASE as an SQL source (``url`` is each case's own)
SQL_SOURCE = """\
    type: sql
    url: URL
    query: SELECT * FROM orders WHERE created_at >= :cursor
    start_date: 2026-01-01"""


def with_sql(url: str, *edits: tuple[str, str]) -> str:
    shop = SQL_SOURCE.replace("URL", url)
    return edited(("    type: csv\n    path: orders.csv", shop), *edits)


def with_encoding(encoding: str) -> str:
    return edited(("    time: created_at\n", f"    time: created_at\n    encoding: {encoding}\n"))


#: a Google Ads destination beside Metrica (line 10; Metrica moves to line 11)
GOOGLE = (
    "  google: {type: google_ads, customer_id: CUSTOMER, auth: {client_id: app,\n"
    "           client_secret: '${METRICA_TOKEN}', refresh_token: '${METRICA_TOKEN}'}}\n"
)


def with_google(customer_id: str = "'123-456-7890'", target: str = "{conversion_action: 1}") -> str:
    return edited(
        ("  metrica: {type", GOOGLE.replace("CUSTOMER", customer_id) + "  metrica: {type"),
        ("      metrica: {target", f"      google: {target}\n      metrica: {{target"),
    )


@dataclass(frozen=True)
class Case:
    """One bad input and the fragment its message must hold."""

    name: str
    expect: str
    #: the config file's text (None: there is none)
    config: str | bytes | None = BASE
    #: files beside the config (the CSV source reads orders.csv)
    files: Mapping[str, bytes] = field(default_factory=lambda: {"orders.csv": GOOD_CSV})
    env: Mapping[str, str] = field(default_factory=dict)
    #: global options before the command
    flags: tuple[str, ...] = ()
    #: ``validate`` and/or ``sync`` (``sync --once --dry-run``)
    commands: tuple[str, ...] = ("validate",)
    #: a value that must appear in no output
    secret: str | None = None
    #: also run as the installed executable (a handful; the rest in-process)
    subprocess: bool = False
    #: a raw message that comes from a module this corpus does not own: why
    xfail: str | None = None


SETTINGS = [
    Case(
        "log_level_env",
        "--log-level / CONVSYNC_LOG_LEVEL: 'verbose' is not one of DEBUG, INFO, WARNING, ERROR",
        env={"CONVSYNC_LOG_LEVEL": "verbose"},
    ),
    Case(
        "log_level_flag",
        "--log-level / CONVSYNC_LOG_LEVEL: 'verbose' is not one of DEBUG, INFO, WARNING, ERROR",
        flags=("--log-level", "verbose"),
        subprocess=True,
    ),
    Case(
        "health_port_not_a_number",
        "CONVSYNC_HEALTH_PORT: expected a whole number, got 'abc'",
        env={"CONVSYNC_HEALTH_PORT": "abc"},
    ),
    Case(
        "health_port_too_large",
        "CONVSYNC_HEALTH_PORT: '70000' is too large: at most 65535",
        env={"CONVSYNC_HEALTH_PORT": "70000"},
    ),
    Case(
        "log_format_env",
        "--log-format / CONVSYNC_LOG_FORMAT: 'x' is not one of auto, json, console",
        env={"CONVSYNC_LOG_FORMAT": "x"},
    ),
    Case(
        "log_format_flag",
        "--log-format / CONVSYNC_LOG_FORMAT: 'yaml' is not one of auto, json, console",
        flags=("--log-format", "yaml"),
    ),
    Case(
        "map_process_min_bytes_negative",
        "CONVSYNC_MAP_PROCESS_MIN_BYTES: '-1' is too small: at least 0",
        env={"CONVSYNC_MAP_PROCESS_MIN_BYTES": "-1"},
    ),
    Case(
        "match_signals_key_short",
        "CONVSYNC_MATCH_SIGNALS_KEY: must be at least 16 characters long",
        env={"CONVSYNC_MATCH_SIGNALS_KEY": "short-key"},
        secret="short-key",
    ),
]

YAML = [
    Case(
        "config_file_missing",
        "convsync.yaml does not exist; set --config or CONVSYNC_CONFIG",
        config=None,
    ),
    Case("empty_file", "convsync.yaml:1: the file is empty", config=""),
    Case(
        "only_comments",
        "convsync.yaml:1: the file is empty",
        config="# sources: to come\n",
    ),
    Case(
        "a_list_not_a_mapping",
        "convsync.yaml:1: the file holds a list",
        config="- sources\n- goals\n",
    ),
    Case(
        "tab_indent",
        "convsync.yaml:4: not valid YAML: a tab at column 1",
        config=edited(("    type: csv", "\ttype: csv")),
        subprocess=True,
    ),
    Case(
        "unclosed_quote",
        "convsync.yaml:10: not valid YAML: a quote opened at column 64 is never closed",
        config=edited(('"${METRICA_TOKEN}"', '"${METRICA_TOKEN}')),
    ),
    Case(
        "unclosed_brace",
        "convsync.yaml:8: not valid YAML: the { at column 13 is not closed with }",
        config=edited(("status: status}", "status: status")),
    ),
    Case(
        # PyYAML finds the missing ':' on the next line
        "key_without_colon",
        "convsync.yaml:6: not valid YAML: a line without ':'",
        config=edited(("    id: order_id", "    id order_id")),
    ),
    Case(
        "colon_inside_a_value",
        "convsync.yaml:6: not valid YAML: unexpected ':' at column 14",
        config=edited(("    id: order_id", "    id: order: id")),
    ),
    Case(
        "duplicate_key",
        "convsync.yaml:17: goals.purchase.currency: defined twice (lines 16 and 17)",
        config=edited(("    currency: RUB\n", "    currency: RUB\n    currency: USD\n")),
    ),
    Case(
        "undefined_alias",
        "convsync.yaml:19: not valid YAML: *defaults refers to no anchor",
        config=BASE + "delivery: *defaults\n",
    ),
    Case(
        "two_documents",
        "convsync.yaml:19: not valid YAML: a second document (---)",
        config=BASE + "---\ntimezone: UTC\n",
    ),
    Case(
        "config_in_cp1251",
        "convsync.yaml:14: not UTF-8 (byte 0xEE at column 20); it reads as cp1251",
        config=edited(("{status: paid}", "{status: оплачен}")).encode("cp1251"),
    ),
    Case(
        "config_is_binary",
        "convsync.yaml:1: not a text file (byte 0x89 at column 1)",
        config=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
    ),
    Case(
        "number_as_key",
        "convsync.yaml:19: 1: the key 1 is not a name: quote it ('1':)",
        config=BASE + "1: one\n",
    ),
    Case(
        "nul_in_config",
        "convsync.yaml:19: not valid YAML: a control character (U+0000) at column 6",
        config=BASE + "# end\x00\n",
    ),
]

STRUCTURE = [
    Case(
        "counter_id_not_a_number",
        "convsync.yaml:10: destinations.metrica.counter_id: expected a whole number, got '1234abc'",
        config=edited(("12345678", "1234abc")),
        subprocess=True,
    ),
    Case(
        "counter_id_true",
        "convsync.yaml:10: destinations.metrica.counter_id: expected a whole number, got true",
        config=edited(("12345678", "true")),
    ),
    Case(
        "counter_id_negative",
        "convsync.yaml:10: destinations.metrica.counter_id: -5 is too small: it must be more "
        "than 0",
        config=edited(("12345678", "-5")),
    ),
    Case(
        "counter_id_fraction",
        "convsync.yaml:10: destinations.metrica.counter_id: expected a whole number, got 1.5",
        config=edited(("12345678", "1.5")),
    ),
    Case(
        "counter_id_from_env_not_shown",
        "convsync.yaml:10: destinations.metrica.counter_id: expected a whole number, got "
        "text from ${METRICA_COUNTER}",
        config=edited(("12345678", '"${METRICA_COUNTER}"')),
        env={"METRICA_COUNTER": "counter-abc-from-env"},
        secret="counter-abc-from-env",
    ),
    Case(
        "token_a_number_not_shown",
        "convsync.yaml:10: destinations.metrica.token: expected text, got a number (not "
        "shown: token is a credential)",
        config=edited(('"${METRICA_TOKEN}"', "987654321")),
        secret="987654321",
    ),
    Case(
        "sources_a_list",
        "convsync.yaml:3: sources: expected a mapping (key: value lines), got a list",
        config=edited(("  shop:\n", "  - shop:\n")),
    ),
    Case(
        "goals_a_name",
        "convsync.yaml:11: goals: expected a mapping (key: value lines), got 'purchase'",
        config=BASE.split("goals:")[0] + "goals: purchase\n",
    ),
    Case(
        "goals_missing",
        "convsync.yaml:1: goals: required key is missing",
        config=BASE.split("goals:")[0],
    ),
    Case(
        "source_without_type",
        "convsync.yaml:4: sources.shop.type: required key is missing: one of amocrm,",
        config=edited(("    type: csv\n", "")),
    ),
    Case(
        "destination_type_typo",
        "convsync.yaml:10: destinations.metrica.type: unknown type 'yandex_metrika' (did you "
        "mean 'yandex_metrica'?)",
        config=edited(("yandex_metrica", "yandex_metrika")),
    ),
    Case(
        "top_level_key_typo",
        "convsync.yaml:1: timezon: unknown key 'timezon' (did you mean 'timezone'?)",
        config=edited(("timezone:", "timezon:")),
    ),
    Case(
        "goal_key_typo",
        "convsync.yaml:14: goals.purchase.wen: unknown key 'wen' (did you mean 'when'?)",
        config=edited(("    when:", "    wen:")),
    ),
    Case(
        "source_key_typo",
        "convsync.yaml:7: sources.shop.tme: unknown key 'tme' (did you mean 'time'?)",
        config=edited(("    time: created_at", "    tme: created_at")),
    ),
    Case(
        "target_key_typo",
        "convsync.yaml:18: goals.purchase.send.metrica.targt: unknown key 'targt' for a "
        "yandex_metrica target (did you mean 'target'?)",
        config=edited(("{target: offline_purchase}", "{targt: offline_purchase}")),
    ),
    Case(
        "condition_a_mapping",
        "convsync.yaml:14: goals.purchase.when.status.nott: unknown key 'nott' (did you mean "
        "'not'?)",
        config=edited(("{status: paid}", "{status: {nott: paid}}")),
    ),
    Case(
        "value_a_list",
        "convsync.yaml:15: goals.purchase.value: expected text or a number, got a list",
        config=edited(("    value: value", "    value: [value]")),
    ),
    Case(
        "fixed_value_negative",
        "convsync.yaml:15: goals.purchase.value: a fixed value is a number from 0",
        config=edited(("    value: value", "    value: -5")),
    ),
    Case(
        "schedule_every_not_a_duration",
        "convsync.yaml:19: schedule.every: 'soon' is not a duration",
        config=BASE + "schedule: {every: soon}\n",
    ),
    Case(
        "schedule_cron_three_fields",
        "convsync.yaml:19: schedule.cron: '* * *' has 3 fields; a cron expression has 5",
        config=BASE + "schedule: {cron: '* * *'}\n",
    ),
    Case(
        "schedule_cron_bad_minute",
        "convsync.yaml:19: schedule.cron: '99 * * * *': the minute field '99' is not valid",
        config=BASE + "schedule: {cron: '99 * * * *'}\n",
    ),
    Case(
        "delivery_attempts_not_a_number",
        "convsync.yaml:19: delivery.max_attempts: expected a whole number, got 'many'",
        config=BASE + "delivery: {max_attempts: many}\n",
    ),
    Case(
        "delivery_attempts_too_many",
        "convsync.yaml:19: delivery.max_attempts: 100 is too large: at most 20",
        config=BASE + "delivery: {max_attempts: 100}\n",
    ),
    Case(
        "delivery_lease_negative",
        "convsync.yaml:19: delivery.lease: -5s is negative",
        config=BASE + "delivery: {lease: -5}\n",
    ),
    Case(
        "settle_too_long",
        "convsync.yaml:8: sources.shop.settle: 2d is too long: at most 1d",
        config=edited(("    fields:", "    settle: 2d\n    fields:")),
    ),
    Case(
        "timezone_typo",
        "convsync.yaml:1: timezone: unknown time zone 'Europe/Moskow'",
        config=edited(("Europe/Moscow", "Europe/Moskow")),
    ),
    Case(
        "timezone_from_env_not_shown",
        "convsync.yaml:1: timezone: unknown time zone text from ${SHOP_TZ}: use an IANA name",
        config=edited(("Europe/Moscow", "${SHOP_TZ}")),
        env={"SHOP_TZ": "Europe/Moskow"},
        secret="Moskow",
    ),
    Case(
        "phone_region_three_letters",
        "convsync.yaml:19: phone_region: 'RUS' is not a region code",
        config=BASE + "phone_region: RUS\n",
    ),
    Case(
        "currency_unknown",
        "convsync.yaml:16: goals.purchase.currency: 'RUBLES' is not an ISO 4217 currency code",
        config=edited(("currency: RUB", "currency: RUBLES")),
    ),
    Case(
        "encoding_unknown",
        "convsync.yaml:8: sources.shop.encoding: 'koi8-r' is not one of auto, utf-8, "
        "utf-8-sig, cp1251",
        config=with_encoding("koi8-r"),
    ),
    Case(
        "google_api_unknown",
        "convsync.yaml:10: destinations.google.api: 'foo' is not one of data_manager, "
        "google_ads_api",
        config=edited(
            (
                "  metrica: {type",
                "  google: {type: google_ads, api: foo, customer_id: '123-456-7890'}\n"
                "  metrica: {type",
            )
        ),
    ),
    Case(
        "env_unset",
        "convsync.yaml:10: destinations.metrica.token: environment variable NOPE_TOKEN is not set",
        config=edited(("METRICA_TOKEN", "NOPE_TOKEN")),
    ),
    Case(
        "secret_file_missing",
        "convsync.yaml:10: destinations.metrica.token: cannot read secret file",
        config=edited(('"${METRICA_TOKEN}"', '"${file:secrets/metrica_token}"')),
    ),
    Case(
        "secret_file_binary",
        "metrica_token is not UTF-8 text (position 1 is not)",
        config=edited(('"${METRICA_TOKEN}"', '"${file:metrica_token}"')),
        files={"orders.csv": GOOD_CSV, "metrica_token": b"\xff\xfetoken-bytes\x80"},
        secret="token-bytes",
    ),
    Case(
        "goal_sends_to_unknown_destination",
        "convsync.yaml:18: goals.purchase.send.metrika: unknown destination 'metrika' (did "
        "you mean 'metrica'?)",
        config=edited(("      metrica: {target", "      metrika: {target")),
    ),
    Case(
        "goal_reads_unknown_source",
        "convsync.yaml:13: goals.purchase.source: unknown source 'shp' (did you mean 'shop'?)",
        config=edited(("source: shop", "source: shp")),
    ),
    Case(
        "goal_sends_nowhere",
        "convsync.yaml:17: goals.purchase.send: no destinations",
        config=edited(("    send:\n      metrica: {target: offline_purchase}\n", "    send: {}\n")),
    ),
    Case(
        "sql_url_not_a_url",
        "convsync.yaml:5: sources.shop.url: not a SQLAlchemy URL",
        config=with_sql("orders-db"),
    ),
    Case(
        "sql_url_unknown_database",
        "convsync.yaml:5: sources.shop.url: SQLAlchemy knows no database 'foo'",
        config=with_sql('"${SHOP_DB}"'),
        env={"SHOP_DB": "foo://me:hunter2pw@db/shop"},
        secret="hunter2pw",
    ),
    Case(
        "sql_url_bad_port",
        "convsync.yaml:5: sources.shop.url: not a SQLAlchemy URL",
        config=with_sql('"${SHOP_DB}"'),
        env={"SHOP_DB": "postgresql://me:hunter2pw@db:port/shop"},
        secret="hunter2pw",
    ),
    Case(
        "sql_url_password_in_file",
        "convsync.yaml:5: sources.shop.url: credentials are not accepted as literals",
        config=with_sql("postgresql+psycopg://me:hunter2pw@db/shop"),
        secret="hunter2pw",
    ),
    Case(
        "sql_start_date_impossible",
        "convsync.yaml:7: sources.shop.start_date: expected a date and time like 2026-01-31 "
        "10:00 or a date like 2026-01-31, got '2026-13-45'",
        config=with_sql("sqlite:///shop.db", ("start_date: 2026-01-01", "start_date: 2026-13-45")),
    ),
]

CONNECTORS = [
    Case(
        "delimiter_unknown",
        "convsync.yaml:8: sources.shop.delimiter: '|' is not one of auto, ',', ';', tab",
        config=edited(("    fields:", "    delimiter: '|'\n    fields:")),
    ),
    Case(
        "source_empty",
        "convsync.yaml:3: sources.shop: expected a mapping (key: value lines), got an empty value",
        config=edited(("  shop:\n", "  shop:\n  old_shop:\n")),
    ),
    Case(
        "webhooks_port_not_a_number",
        "convsync.yaml:19: webhooks.port: expected a whole number, got 'abc'",
        config=BASE + "webhooks: {port: abc}\n",
    ),
    Case(
        "webhooks_threads_true",
        "convsync.yaml:19: webhooks.threads: expected a whole number, got true",
        config=BASE + "webhooks: {threads: true}\n",
    ),
    Case(
        "reference_empty",
        "convsync.yaml:10: destinations.metrica.token: ${} is not a reference",
        config=edited(("${METRICA_TOKEN}", "${}")),
    ),
    Case(
        "condition_list_of_lists",
        "convsync.yaml:14: goals.purchase.when.status.0: expected text, got a list",
        config=edited(("{status: paid}", "{status: [[paid]]}")),
    ),
    Case(
        "condition_not_a_mapping",
        "convsync.yaml:14: goals.purchase.when.status.not: expected text or a list, got a mapping",
        config=edited(("{status: paid}", "{status: {not: {paid: true}}}")),
    ),
    Case(
        "metrica_target_forbidden_character",
        "convsync.yaml:18: goals.purchase.send.metrica.target: goal identifier 'a/b' contains '/'",
        config=edited(("{target: offline_purchase}", "{target: 'a/b'}")),
    ),
    Case(
        "metrica_call_column_unknown",
        "convsync.yaml:18: goals.purchase.send.metrica.call_fields.Bogus: 'Bogus' is not one "
        "of PhoneNumber,",
        config=edited(
            ("{target: offline_purchase}", "{type: calls, call_fields: {Bogus: status}}")
        ),
    ),
    Case(
        "vk_pixel_id_not_a_number",
        "convsync.yaml:10: destinations.vk.pixel_id: expected a whole number, got 'abc'",
        config=edited(
            ("  metrica: {type", "  vk: {type: vk_ads, pixel_id: abc}\n  metrica: {type")
        ),
    ),
    Case(
        "google_customer_id_short",
        "convsync.yaml:10: destinations.google.customer_id: '12345' is not a Google Ads "
        "customer id",
        config=with_google(customer_id="'12345'"),
    ),
    Case(
        "google_conversion_action_text",
        "convsync.yaml:20: goals.purchase.send.google.conversion_action: 'abc' is not a "
        "conversion action id",
        config=with_google(target="{conversion_action: abc}"),
    ),
    Case(
        "hubspot_base_url_not_http",
        "convsync.yaml:6: sources.shop.api_base_url: 'ftp://x' is not an http(s) URL",
        config=edited(
            (
                "    type: csv\n    path: orders.csv\n    id: order_id\n    time: created_at\n",
                "    type: hubspot\n    token: '${METRICA_TOKEN}'\n    api_base_url: ftp://x\n",
            ),
            ("    fields: {email: email, value: total, status: status}", "    fields: {}"),
        ),
    ),
    Case(
        "sql_start_true",
        "convsync.yaml:7: sources.shop.start: expected a whole number, got true",
        config=with_sql("sqlite:///shop.db", ("start_date: 2026-01-01", "start: true")),
    ),
    Case(
        "sql_fetch_rows_zero",
        "convsync.yaml:8: sources.shop.fetch_rows: 0 is too small: at least 1",
        config=with_sql("sqlite:///shop.db", ("2026-01-01\n", "2026-01-01\n    fetch_rows: 0\n")),
    ),
]

FILES = [
    Case(
        "csv_cp1251_read_as_utf8",
        "orders.csv: the file is not valid UTF-8 (sources.shop.encoding: utf-8): line 2 is "
        "the first that is not (byte 0xEE at position 38)",
        config=with_encoding("utf-8"),
        files={"orders.csv": (HEADER + RUSSIAN_ROWS).encode("cp1251")},
        commands=("validate", "sync"),
        subprocess=True,
    ),
    Case(
        "csv_cp1251_read_as_utf8_suggests_cp1251",
        "it looks like cp1251 (Russian Excel): set sources.shop.encoding: cp1251 or auto",
        config=with_encoding("utf-8"),
        files={"orders.csv": (HEADER + RUSSIAN_ROWS).encode("cp1251")},
    ),
    Case(
        "csv_cp1251_read_as_utf8_sig",
        "orders.csv: the file is not valid UTF-8 (sources.shop.encoding: utf-8-sig): line 2",
        config=with_encoding("utf-8-sig"),
        files={"orders.csv": (HEADER + RUSSIAN_ROWS).encode("cp1251")},
    ),
    Case(
        "csv_utf8_read_as_cp1251",
        "orders.csv: the file is UTF-8, not cp1251 (sources.shop.encoding: cp1251; line 2",
        config=with_encoding("cp1251"),
        files={"orders.csv": (HEADER + RUSSIAN_ROWS).encode()},
        commands=("validate", "sync"),
    ),
    Case(
        "csv_one_cp1251_line",
        "line 5 is not valid UTF-8 (byte 0xEE at position 38; sources.shop.encoding is "
        "utf-8) (it reads as cp1251)",
        config=with_encoding("utf-8"),
        files={
            "orders.csv": HEADER.encode()
            + RUSSIAN_ROWS.encode()
            + "4,2026-01-01 10:00,a@example.com,100,оплачен\n".encode("cp1251")
        },
        commands=("sync",),
    ),
    Case(
        "csv_is_a_png",
        "orders.csv: the file is not text but a PNG image",
        files={"orders.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)},
        commands=("validate", "sync"),
    ),
    Case(
        "csv_is_an_xlsx",
        "orders.csv: the file is not text but an Excel workbook (.xlsx)",
        files={"orders.csv": b"PK\x03\x04\x14\x00\x06\x00" + bytes(64)},
    ),
    Case(
        "csv_is_utf16",
        "orders.csv: the file is UTF-16 or UTF-32",
        files={"orders.csv": (HEADER + RUSSIAN_ROWS).encode("utf-16")},
        commands=("validate", "sync"),
    ),
    Case(
        "csv_nul_in_header",
        "orders.csv: the file is not text: line 1 has a NUL byte (0x00) at position 23",
        files={"orders.csv": GOOD_CSV.replace(b"email", b"em\x00ail", 1)},
    ),
    Case(
        "csv_binary_noise",
        "orders.csv: the file is not text: line 1 has a NUL byte (0x00) at position 1",
        files={"orders.csv": bytes(range(256)) * 8},
    ),
    Case(
        "csv_nul_in_a_row",
        "orders.csv:2",
        files={"orders.csv": GOOD_CSV.replace(b",100,", b",1\x0000,")},
        commands=("sync",),
    ),
    Case(
        "csv_header_lacks_a_column",
        "orders.csv: the file's header lacks configured columns",
        files={"orders.csv": GOOD_CSV.replace(b",total", b"").replace(b",100", b"")},
        commands=("validate", "sync"),
    ),
    Case(
        "csv_header_lacks_a_column_names_it",
        "'total' (sources.shop.fields.value) is not in the header",
        files={"orders.csv": GOOD_CSV.replace(b",total", b"").replace(b",100", b"")},
    ),
    Case(
        "csv_time_unreadable",
        "orders.csv:2",
        files={"orders.csv": GOOD_CSV.replace(b"2026-01-01 10:00", b"yesterday")},
        commands=("sync",),
    ),
    Case(
        "sqlite_file_missing",
        "sources.shop.url: the SQLite file",
        config=with_sql("sqlite:///shop.db"),
        commands=("validate", "sync"),
    ),
    Case(
        "sql_query_on_a_missing_table",
        "sources.shop.query: the database refused the query",
        config=with_sql("sqlite:///shop.db"),
        files={"shop.db": b""},
        commands=("validate", "sync"),
    ),
]

CASES = [*SETTINGS, *YAML, *STRUCTURE, *CONNECTORS, *FILES]
