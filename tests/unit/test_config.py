from __future__ import annotations

import re
from pathlib import Path

import pytest

from convsync.config.loader import config_schema, parse_config
from convsync.core.errors import ConfigError
from convsync.destinations.google_ads.config import GoogleAdsTarget, OAuthRefreshTokenAuth

#: the config example of DESIGN.md, copied verbatim (the test below keeps them equal)
DESIGN_EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "design_example.yaml"
DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"
ENV = {"METRICA_TOKEN": "metrica-token-123", "VK_ID": "vk-client", "VK_SECRET": "vk-secret-456"}


def design_example() -> str:
    return DESIGN_EXAMPLE.read_text(encoding="utf-8")


def test_the_copied_example_is_the_one_in_design_md() -> None:
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} is not beside this checkout")
    text = DESIGN.read_text(encoding="utf-8")
    block = text.split("## Config file", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    assert block.lstrip("\n") == design_example()


def load(text: str, tmp_path: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "convsync.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path, ENV if env is None else env)


def problems(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path, env)
    return [p.render() for p in info.value.problems]


def test_design_example_validates_with_its_auth_placeholder_filled_in(tmp_path: Path) -> None:
    text = design_example()
    assert "auth: {...}" in text  # the design elides the Google credentials
    filled = text.replace(
        "auth: {...}",
        'auth: {client_id: "${G_ID}", client_secret: "${G_SECRET}", refresh_token: "${G_RT}"}',
    )
    env = {**ENV, "G_ID": "id", "G_SECRET": "google-secret", "G_RT": "refresh-token-1"}
    loaded = load(filled, tmp_path, env)
    app = loaded.app
    assert app.timezone == "Europe/Moscow"
    assert app.schedule.every is not None and app.schedule.every.total_seconds() == 900
    google = app.destinations["google"]
    assert google.type == "google_ads" and google.customer_id == "1234567890"
    assert isinstance(google.auth, OAuthRefreshTokenAuth)
    assert google.auth.refresh_token.get_secret_value() == "refresh-token-1"
    target = loaded.targets["purchase"]["google"]
    assert isinstance(target, GoogleAdsTarget) and target.conversion_action == 987654321
    assert app.goals["purchase"].currency == "RUB"
    assert set(loaded.secrets) >= {"metrica-token-123", "vk-secret-456", "google-secret"}


def test_design_example_as_written_names_the_elided_auth(tmp_path: Path) -> None:
    found = problems(design_example(), tmp_path)
    assert len(found) == 1
    assert "destinations.google.auth" in found[0]


def test_every_problem_is_reported_at_once_with_path_and_line(tmp_path: Path) -> None:
    text = """\
timezone: Europe/Moscou
sources:
  shop: {type: csv, path: "*.csv", id: id, time: t, fields: {gclid: g, stauts: s}}
destinations:
  metrica: {type: yandex_metrica, counter_id: 1, token: "${MISSING_TOKEN}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    valeu: total
    send:
      gogle: {conversion_action: 1}
      metrica: {target: "a/b"}
"""
    found = problems(text, tmp_path, env={})
    joined = "\n".join(found)
    assert "1: timezone: unknown time zone 'Europe/Moscou'" in joined
    assert re.search(
        r"3: sources\.shop\.fields\.stauts: unknown field name 'stauts' \(did you mean 'status'\?\)",
        joined,
    )
    assert "5: destinations.metrica.token: environment variable MISSING_TOKEN is not set" in joined
    assert "goals.purchase.when.status: field 'status' is not mapped by source 'shop'" in joined
    assert "10: goals.purchase.valeu: unknown key 'valeu' (did you mean 'value'?)" in joined
    assert "12: goals.purchase.send.gogle: unknown destination 'gogle'" in joined
    assert "goals.purchase.send.metrica.target: goal identifier 'a/b' contains '/'" in joined


def test_adjustments_and_custom_variables_are_checked_against_the_config(tmp_path: Path) -> None:
    text = """\
sources:
  shop: {type: csv, path: "*.csv", id: id, time: t, fields: {gclid: g, status: s}}
destinations:
  google: {type: google_ads, api: google_ads_api, customer_id: 1234567890,
           auth: {application_default: true}}
  metrica: {type: yandex_metrica, counter_id: 1, token: "${TOKEN}"}
goals:
  purchase:
    source: shop
    retract_when: {state: refunded}
    send:
      google: {conversion_action: 1, custom_variables: {77: plan}}
  lead:
    source: shop
    restate_on_value_change: true
    send:
      metrica: {target: lead}
"""
    found = problems(text, tmp_path, env={"TOKEN": "t"})
    joined = "\n".join(found)
    assert len(found) == 3, joined
    assert "goals.purchase.retract_when.state: field 'state' is not mapped by source" in joined
    assert (
        "goals.purchase.send.google.custom_variables.77: field 'plan' is not mapped by source"
        in joined
    )
    assert re.search(
        r"goals\.lead\.restate_on_value_change: none of this goal's destinations "
        r"\(yandex_metrica\) can retract or restate",
        joined,
    )


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    found = problems("sources:\n  shop: {type: csv\ngoals: []\n", tmp_path)
    assert len(found) == 1
    assert "not valid YAML" in found[0]
    assert re.match(r"^\d+: ", found[0])


def test_literal_credentials_are_refused(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t}}
destinations:
  metrica: {type: yandex_metrica, counter_id: 1, token: "AgAAAA-literal-token"}
goals: {g: {source: shop, send: {metrica: {target: t}}}}
"""
    found = problems(text, tmp_path)
    assert found == [
        "3: destinations.metrica.token: credentials are not accepted as literals in the file: "
        "write ${ENV_VAR} or ${file:/run/secrets/name}"
    ]


def test_file_references_read_secret_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token-789\n", encoding="utf-8")
    text = f"""\
sources: {{shop: {{type: csv, path: x.csv, id: id, time: t}}}}
destinations:
  metrica: {{type: yandex_metrica, counter_id: 1, token: "${{file:{tmp_path}/token}}"}}
goals: {{g: {{source: shop, send: {{metrica: {{target: t}}}}}}}}
"""
    loaded = load(text, tmp_path)
    token = loaded.app.destinations["metrica"].token  # type: ignore[union-attr]
    assert token.get_secret_value() == "file-token-789"
    assert "file-token-789" not in repr(loaded)


def test_unreadable_secret_file_is_a_problem(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t}}
destinations:
  metrica: {type: yandex_metrica, counter_id: 1, token: "${file:/nonexistent/token}"}
goals: {g: {source: shop, send: {metrica: {target: t}}}}
"""
    found = problems(text, tmp_path)
    assert found == [
        "3: destinations.metrica.token: cannot read secret file /nonexistent/token: "
        "No such file or directory"
    ]


def test_schedule_needs_exactly_one_kind(tmp_path: Path) -> None:
    text = """\
schedule: {every: 15m, cron: "* * * * *"}
sources: {shop: {type: csv, path: x.csv, id: id, time: t}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {g: {source: shop, send: {vk: {goal: lead}}}}
"""
    assert any("exactly one of 'every'" in p for p in problems(text, tmp_path))


def test_unknown_destination_type_is_named(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: x.csv, id: id, time: t}}
destinations: {fb: {type: facebook, pixel: 1}}
goals: {g: {source: shop, send: {fb: {goal: lead}}}}
"""
    found = problems(text, tmp_path)
    assert any(p.startswith("2: destinations.fb.type: unknown type 'facebook'") for p in found)


def test_schema_offers_every_platform_target_under_send() -> None:
    schema = config_schema()
    send = schema["$defs"]["GoalConfig"]["properties"]["send"]
    refs = {option["$ref"] for option in send["additionalProperties"]["anyOf"]}
    assert refs == {
        "#/$defs/GoogleAdsTarget",
        "#/$defs/MetricaTarget",
        "#/$defs/VkAdsTarget",
    }
    assert "conversion_action" in schema["$defs"]["GoogleAdsTarget"]["properties"]
    assert schema["additionalProperties"] is False


def test_a_malformed_reference_is_named(tmp_path: Path) -> None:
    text = """\
sources: {shop: {type: csv, path: "${1BAD}", id: id, time: t}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {g: {source: shop, send: {vk: {goal: lead}}}}
"""
    assert problems(text, tmp_path) == [
        "1: sources.shop.path: ${1BAD} is not a reference: "
        "use ${ENV_VAR} or ${file:/run/secrets/name}"
    ]


def test_a_database_url_without_password_may_be_literal_one_with_must_not(
    tmp_path: Path,
) -> None:
    text = """\
sources:
  db: {type: sql, url: "sqlite:///orders.db", query: "SELECT * FROM o WHERE t >= :cursor",
       id: id, time: t, start_date: 2026-11-01}
  pg: {type: sql, url: "postgresql://shop:hunter2@db/shop", query: "SELECT * FROM o WHERE t >= :cursor",
       id: id, time: t, start_date: 2026-11-01}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {g: {source: db, send: {vk: {goal: x}}}}
"""
    found = problems(text, tmp_path, env={})
    assert len(found) == 1, found
    assert "sources.pg.url: credentials are not accepted as literals" in found[0]


@pytest.mark.parametrize(
    "source",
    [
        '{type: hubspot, token: "${T}"}',
        '{type: bitrix24, webhook_url: "${HOOK}"}',
        '{type: amocrm, subdomain: shop, pipeline_id: 1, auth: {token: "${T}"}}',
    ],
)
def test_fields_a_crm_source_fills_by_default_may_be_used_by_goals(
    source: str, tmp_path: Path
) -> None:
    text = f"""\
sources:
  crm: {source}
destinations: {{vk: {{type: vk_ads, pixel_id: 1}}}}
goals: {{won: {{source: crm, when: {{status: won}}, value: value, send: {{vk: {{goal: x}}}}}}}}
"""
    hook = "https://shop.bitrix24.ru/rest/1/abc123/"
    loaded = load(text, tmp_path, {"T": "t", "HOOK": hook})
    assert loaded.app.goals["won"].when == {"status": "won"}


def test_a_field_name_near_a_canonical_one_is_a_typo_unless_a_goal_reads_it(
    tmp_path: Path,
) -> None:
    text = """\
sources:
  forms: {type: webhook, token: "${T}", fields: {form_id: formid, gclidd: gclid}}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {lead: {source: forms, when: {form_id: f1}, send: {vk: {goal: x}}}}
"""
    found = problems(text, tmp_path, {"T": "t"})
    assert len(found) == 1, found
    assert (
        "sources.forms.fields.gclidd: unknown field name 'gclidd' (did you mean 'gclid'?)"
        in found[0]
    )


def test_a_goal_field_a_source_without_fields_lacks_lists_what_it_gives(tmp_path: Path) -> None:
    text = """\
sources:
  ym: {type: metrica_logs, counter_id: 1, token: "${T}", goal_ids: [5]}
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {lead: {source: ym, when: {goal: "5"}, send: {vk: {goal: x}}}}
"""
    (found,) = problems(text, tmp_path, {"T": "t"})
    assert "goals.lead.when.goal: field 'goal' is not mapped by source 'ym'" in found
    assert (
        "(it gives currency, gbraid, gclid, landing_url, metrica_client_id, metrica_goal_id"
        in found
    )


def test_metrica_goals_are_not_sent_back_to_their_own_counter(tmp_path: Path) -> None:
    text = """\
sources:
  ym: {type: metrica_logs, counter_id: 42, token: "${T}", goal_ids: [5]}
destinations:
  same: {type: yandex_metrica, counter_id: 42, token: "${T}"}
  other: {type: yandex_metrica, counter_id: 43, token: "${T}"}
goals:
  lead: {source: ym, when: {metrica_goal_id: "5"}, send: {same: {target: lead}, other: {target: lead}}}
"""
    (found,) = problems(text, tmp_path, {"T": "t0000000"})
    assert "goals.lead.send.same: counter 42 is where source 'ym' reads these goals from" in found
