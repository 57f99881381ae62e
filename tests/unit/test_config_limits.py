"""Config input that used to crash or mislead (issue 12, D4 and D8): keys defined twice,
durations and numbers beyond any sense, deep nesting, alias bombs, secret files that
never end. Each is a problem with its line, reported with the others, and exit 2 from
the command — never a traceback, never a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from convsync.config.loader import load_config
from convsync.config.text import (
    MAX_ALIASED,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_INTERPOLATED,
    MAX_SECRET_FILE_BYTES,
)
from convsync.core.errors import ConfigError, UserError

CONVSYNC = str(Path(sys.executable).parent / "convsync")

#: three valid lines; each case adds its own from line 4 on
BASE = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t, fields: {status: s}}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {g: {source: shop, send: {vk: {goal: lead}}}}
"""

#: the "billion laughs": 342 bytes that expand to 9**9 strings
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

#: (id, the file, the line named, what the message says) — each crashed or hung before
CRASHES = [
    (
        "lease",
        BASE + "delivery: {lease: 99999999999999999999d}\n",
        4,
        "delivery.lease: 99999999999999999999d is too long: at most 1d",
    ),
    (
        "every",
        BASE + "schedule: {every: 10000000000d}\n",
        4,
        "schedule.every: 10000000000d is too long: at most 4w",
    ),
    (
        "max_backoff",
        BASE + "delivery: {max_backoff: 999999999999w}\n",
        4,
        "delivery.max_backoff: 999999999999w is too long: at most 4w",
    ),
    (
        "infinite_lease",
        BASE + "delivery: {lease: .inf}\n",
        4,
        "delivery.lease: expected a duration like 30s, 15m, 6h or 7d",
    ),
    (
        "nested_flow_lists",
        BASE + "timezone: " + "[" * 1000 + "]" * 1000 + "\n",
        4,
        f"nested more than {MAX_DEPTH} levels deep",
    ),
    (
        "nested_flow_mappings",
        BASE + "timezone: " + "{a: " * 1000 + "b" + "}" * 1000 + "\n",
        4,
        f"nested more than {MAX_DEPTH} levels deep",
    ),
    (
        "nested_block_lists",
        BASE + "timezone:\n" + "- " * 1000 + "x\n",
        5,
        f"nested more than {MAX_DEPTH} levels deep",
    ),
    (
        "alias_bomb",
        BASE + ALIAS_BOMB,
        8,  # e: the first alias that takes the expansion past the limit
        f"aliases repeat more than {MAX_ALIASED:,} values in all (passed at *d)",
    ),
    (
        "recursive_alias",
        BASE + "timezone: &loop [a, *loop]\n",
        4,
        "alias *loop is inside its own anchor &loop: it would repeat forever",
    ),
    (
        "counter_id_1e400",
        BASE.replace("pixel_id: 1", "pixel_id: 1e400"),
        2,
        "destinations.vk.pixel_id: expected a whole number, got '1e400'",
    ),
    (
        "counter_id_1.0e+400",
        BASE.replace("pixel_id: 1", "pixel_id: 1.0e+400"),
        2,
        "destinations.vk.pixel_id: expected a finite number, got inf",
    ),
    (
        "giant_int",
        BASE.replace("pixel_id: 1", "pixel_id: 99999999999999999999999"),
        2,
        "destinations.vk.pixel_id: 99999999999999999999999 is too large: at most "
        "9223372036854775807",
    ),
    (
        "int_of_5000_digits",
        BASE.replace("pixel_id: 1", "pixel_id: " + "9" * 5000),
        2,
        "destinations.vk.pixel_id: ",
    ),
    (
        "impossible_date",
        BASE + "delivery: {retry_backoff: 2026-13-45}\n",
        4,
        "delivery.retry_backoff: '2026-13-45' is not a duration",
    ),
    (
        "int_tag_on_text",
        BASE + "timezone: !!int abc\n",
        4,
        "timezone: unknown time zone 'abc'",
    ),
    (
        "bool_tag_on_text",
        BASE + "phone_region: !!bool maybe\n",
        4,
        "phone_region: 'maybe' is not a region code",
    ),
]


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: these inputs took minutes (or forever) before."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write(tmp_path: Path, text: str, name: str = "convsync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with deadline(30), pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return [p.render() for p in info.value.problems]


def convsync_validate(
    config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``convsync --config <file> validate`` as a user runs it; the timeout kills a hang."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSYNC_")}
    full_env.update(env or {})
    full_env["CONVSYNC_LOG_FORMAT"] = "json"
    return subprocess.run(
        [CONVSYNC, "--config", config.name, "validate"],
        cwd=config.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- D8: input that crashed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"), [c[1:] for c in CRASHES], ids=[c[0] for c in CRASHES]
)
def test_crashing_input_is_a_problem_with_its_line(
    text: str, line: int, message: str, tmp_path: Path
) -> None:
    found = problems(write(tmp_path, text))
    assert any(p.startswith(f"{line}: ") and message in p for p in found), found


@pytest.mark.parametrize(
    ("text", "line", "message"), [c[1:] for c in CRASHES], ids=[c[0] for c in CRASHES]
)
def test_crashing_input_exits_2_from_the_command(
    text: str, line: int, message: str, tmp_path: Path
) -> None:
    result = convsync_validate(write(tmp_path, text, "x.yaml"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert f"x.yaml:{line}: " in result.stderr
    assert message in result.stderr


def test_the_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB.encode()) < 350
    (found,) = problems(write(tmp_path, BASE + ALIAS_BOMB))
    assert "anchors are for a few shared blocks" in found


def test_anchors_and_merge_keys_within_the_limit_are_welcome(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t, fields: {status: s, gclid: g}}}
destinations:
  google: {type: google_ads, customer_id: 1234567890, auth: {application_default: true}}
  vk: {type: vk_ads, pixel_id: 1}
goals:
  paid:
    source: shop
    when: {status: paid}
    send: &targets
      google: &google {conversion_action: 1, event_source: web}
      vk: {goal: purchase}
  won: {source: shop, when: {status: won}, send: *targets}
  lead:
    source: shop
    send: {google: {<<: *google, conversion_action: 2}}
"""
    with deadline(30):
        loaded = load_config(write(tmp_path, text), {})
    assert loaded.targets["won"]["google"].conversion_action == 1  # type: ignore[attr-defined]
    assert loaded.targets["lead"]["google"].conversion_action == 2  # type: ignore[attr-defined]
    assert loaded.targets["lead"]["google"].event_source == "WEB"  # type: ignore[attr-defined]


def test_durations_have_a_sane_range_per_key(tmp_path: Path) -> None:
    text = BASE + (
        "schedule: {every: 30s}\n"
        "delivery: {lease: 0.5s, retry_backoff: -5, max_backoff: 5w, max_attempts: 21,\n"
        "           retries_in_run: 11}\n"
    )
    found = problems(write(tmp_path, text))
    assert found == [
        "4: schedule.every: 30s is too short: at least 1m",
        "5: delivery.lease: 0.5s is too short: at least 1s",
        "5: delivery.max_attempts: 21 is too large: at most 20",
        "5: delivery.max_backoff: 5w is too long: at most 4w",
        "5: delivery.retry_backoff: -5s is negative: a duration is 0 or more",
        "6: delivery.retries_in_run: 11 is too large: at most 10",
    ]


def test_connector_durations_and_ids_are_bounded(tmp_path: Path) -> None:
    text = """\
sources:
  db: {type: sql, url: "sqlite:///o.db", query: "SELECT * FROM o WHERE t >= :cursor", id: id,
       time: t, start_date: 2026-01-01, lookback: 30d}
  ym: {type: metrica_logs, counter_id: 99999999999999999999, token: "${T}", goal_ids: [5],
       processing_timeout: 2d, poll_interval: 2h}
destinations: {m: {type: yandex_metrica, counter_id: 1e400, token: "${T}"}}
goals: {g: {source: db, send: {m: {target: t}}}}
"""
    found = problems(write(tmp_path, text), {"T": "t"})
    assert found == [
        "3: sources.db.lookback: 30d is too long: at most 1w",
        "4: sources.ym.counter_id: 99999999999999999999 is too large: at most 9223372036854775807",
        "5: sources.ym.poll_interval: 2h is too long: at most 1h",
        "5: sources.ym.processing_timeout: 2d is too long: at most 1d",
        "6: destinations.m.counter_id: expected a whole number, got '1e400'",
    ]


def with_goal_value(value: str) -> str:
    return BASE.replace("send: {vk", f"value: {value}, send: {{vk")


@pytest.mark.parametrize(
    "value",
    [".inf", ".nan", "1.0e+400", "-5", "1000000000000000", "1.0e+15", "99999999999999999999"],
)
def test_a_fixed_goal_value_is_a_sendable_amount(value: str, tmp_path: Path) -> None:
    assert problems(write(tmp_path, with_goal_value(value))) == [
        "3: goals.g.value: a fixed value is a number from 0 to 999999999999999 (15 digits at "
        "most: ad platforms keep values as double-precision numbers)"
    ]


@pytest.mark.parametrize("value", ["0", "1500", "1500.5", "999999999999999", "status"])
def test_fixed_goal_values_within_the_range_and_fields_are_taken(
    value: str, tmp_path: Path
) -> None:
    loaded = load_config(write(tmp_path, with_goal_value(value)), {})
    assert str(loaded.app.goals["g"].value).removesuffix(".0") == value


def test_an_impossible_date_is_named_at_its_key(tmp_path: Path) -> None:
    text = """\
sources:
  db: {type: sql, url: "sqlite:///o.db", query: "SELECT * FROM o WHERE t >= :cursor", id: id,
       time: t, start_date: 2026-13-45}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {g: {source: db, send: {vk: {goal: lead}}}}
"""
    (found,) = problems(write(tmp_path, text))
    assert found == (
        "3: sources.db.start_date: expected a date and time like 2026-01-31 10:00 or a date "
        "like 2026-01-31, got '2026-13-45' (month value is outside expected range of 1-12)"
    )


def test_a_config_file_beyond_the_limit_is_not_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "# " + "x" * MAX_FILE_BYTES + "\n")
    (found,) = problems(path)
    size = path.stat().st_size
    assert found == (
        f"the file is {size:,} bytes; a config file is at most 256 KiB (a hand-written one "
        "is a few KiB)"
    )


def test_a_config_that_is_not_a_regular_file_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "convsync.yaml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with deadline(30), pytest.raises(UserError, match="not a regular file"):
        load_config(fifo, {})


# --- ${…} interpolation ---------------------------------------------------------------


def test_secret_files_that_never_end_or_block_are_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    os.mkfifo(tmp_path / "fifo")
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t}}
destinations:
  a: {type: yandex_metrica, counter_id: 1, token: "${file:big}"}
  b: {type: yandex_metrica, counter_id: 2, token: "${file:fifo}"}
  c: {type: yandex_metrica, counter_id: 3, token: "${file:/dev/zero}"}
goals: {g: {source: shop, send: {a: {target: t}, b: {target: t}, c: {target: t}}}}
"""
    found = problems(write(tmp_path, text))
    assert found == [
        f"3: destinations.a.token: secret file {tmp_path}/big is 65,537 bytes: a secret file "
        "is at most 64 KiB (a token, a password, a key)",
        f"4: destinations.b.token: cannot read secret file {tmp_path}/fifo: not a regular file",
        "5: destinations.c.token: cannot read secret file /dev/zero: not a regular file",
    ]


def test_a_secret_fifo_does_not_hang_the_command(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "token")
    text = BASE.replace("pixel_id: 1", 'pixel_id: 1, client_id: c, client_secret: "${file:token}"')
    result = convsync_validate(write(tmp_path, text, "x.yaml"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "x.yaml:2: destinations.vk.client_secret: cannot read secret file token: not a regular file"
    ) in result.stderr


def test_a_replacement_is_not_read_again_for_references(tmp_path: Path) -> None:
    text = BASE.replace("goal: lead", 'goal: "${A}"')
    loaded = load_config(write(tmp_path, text), {"A": "${A}${A}"})
    assert loaded.targets["g"]["vk"].goal == "${A}${A}"  # type: ignore[attr-defined]


def test_references_expand_to_a_bounded_total(tmp_path: Path) -> None:
    big = "x" * (MAX_INTERPOLATED // 3 + 1)
    text = BASE + 'timezone: "${BIG}${BIG}"\nphone_region: "${BIG}${BIG}"\n'
    found = problems(write(tmp_path, text), {"BIG": big})
    assert any(
        p.startswith("5: phone_region: ${…} references expand to more than 1024 KiB in all")
        for p in found
    ), found


# --- D4: keys defined twice ---------------------------------------------------------


def test_a_goal_defined_twice_names_both_lines(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t, fields: {status: s}}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals:
  purchase:
    source: shop
    when: {status: paid}
    send: {vk: {goal: purchase}}
  lead:
    source: shop
    send: {vk: {goal: lead}}
    valeu: 10
  purchase:
    source: shop
    when: {status: refunded}
    send: {vk: {goal: refund}}
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    rendered = str(info.value).splitlines()
    # reported together with the other problems, in the order of the file
    assert rendered[1:] == [
        f"  - {path}:11: goals.lead.valeu: unknown key 'valeu' (did you mean 'value'?)",
        f"  - {path}:12: goals.purchase: defined twice (lines 4 and 12); the first would be "
        "ignored",
    ]


def test_a_top_level_section_defined_twice(tmp_path: Path) -> None:
    text = BASE + "destinations: {vk: {type: vk_ads, pixel_id: 2}}\n"
    assert problems(write(tmp_path, text)) == [
        "4: destinations: defined twice (lines 2 and 4); the first would be ignored"
    ]


def test_a_condition_defined_twice_in_a_flow_mapping(tmp_path: Path) -> None:
    text = (
        BASE
        + "goals: {g: {source: shop, when: {status: paid, status: refunded},\n"
        + ("             send: {vk: {goal: a}},\n             send: {vk: {goal: b}}}}\n")
    )
    assert problems(write(tmp_path, text)) == [
        "4: goals: defined twice (lines 3 and 4); the first would be ignored",
        "4: goals.g.when.status: defined twice (line 4, columns 34 and 48); the first would "
        "be ignored",
        "6: goals.g.send: defined twice (lines 5 and 6); the first would be ignored",
    ]


def test_a_key_defined_twice_in_a_mapping_in_a_list(tmp_path: Path) -> None:
    text = BASE + (
        "goals:\n"
        "  g:\n"
        "    source: shop\n"
        "    when:\n"
        "      status:\n"
        "        - not: paid\n"
        "          not: refunded\n"
        "    send: {vk: {goal: lead}}\n"
    )
    found = problems(write(tmp_path, text))
    assert (
        "10: goals.g.when.status.0.not: defined twice (lines 9 and 10); the first would be ignored"
        in found
    )


def test_a_key_defined_three_times_and_one_spelt_another_way(tmp_path: Path) -> None:
    text = BASE + "webhooks: {port: 1, port: 2,\n           port: 3, threads: 1, 'threads': 2}\n"
    assert problems(write(tmp_path, text)) == [
        "5: webhooks.port: defined 3 times (4:12, 4:21 and 5:12); all but the last would be "
        "ignored",
        "5: webhooks.threads: defined twice (line 5, columns 21 and 33); the first would be "
        "ignored",
    ]


def test_an_anchored_block_with_a_key_twice_is_reported_once(tmp_path: Path) -> None:
    text = BASE.replace(
        "goals: {g: {source: shop, send: {vk: {goal: lead}}}}",
        "goals:\n  g: {source: shop, send: &s {vk: {goal: a}, vk: {goal: b}}}\n"
        "  h: {source: shop, send: *s}",
    )
    assert problems(write(tmp_path, text)) == [
        "4: goals.g.send.vk: defined twice (line 4, columns 31 and 46); the first would be ignored"
    ]


def test_merge_keys_are_not_keys_defined_twice(tmp_path: Path) -> None:
    text = BASE.replace(
        "goals: {g: {source: shop, send: {vk: {goal: lead}}}}",
        "goals:\n  g: &g {source: shop, send: {vk: {goal: a}}}\n"
        "  h: {<<: *g, send: {vk: {goal: b}}}",
    )
    loaded = load_config(write(tmp_path, text), {})
    assert loaded.targets["h"]["vk"].goal == "b"  # type: ignore[attr-defined]
